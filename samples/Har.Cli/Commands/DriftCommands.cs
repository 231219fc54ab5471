using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Har.Inference.Data;
using Har.Drift;
using Spectre.Console;

namespace Har.Cli.Commands;

/// <summary><c>har drift …</c>: build reference profiles, check data against them, and run the raw tests.</summary>
internal static class DriftCommands
{
    private static readonly string[] HaptChannels = ["ax", "ay", "az", "gx", "gy", "gz"];

    public static Command Create() => new("drift", "Drift monitoring: reference profiles, verdicts, and the raw KS / PSI tests.")
    {
        Profile(),
        Check(),
        Ks(),
        Psi(),
    };

    private static Command Profile()
    {
        var data = new Option<DirectoryInfo?>("--data") { Description = "Folder in the UCI HAPT layout (default: ../shared/data/uci-hapt found from here)." };
        var split = new Option<string>("--split") { Description = "Subjects to use: train or test.", DefaultValueFactory = _ => "train" };
        split.AcceptOnlyFromAmong("train", "test");
        var output = new Option<FileInfo>("--output", "-o") { Description = "Where to write the profile JSON.", Required = true };
        var window = new Option<int>("--window") { Description = "Samples per reference window (use the window length you will check).", DefaultValueFactory = _ => 3000 };
        var cmd = new Command("profile", "Build a reference profile (channel summaries, window sketches, calibrated floors) from HAPT subjects.") { data, split, output, window };
        cmd.SetAction(parse =>
        {
            var folder = parse.GetValue(data)?.FullName ?? SharedData.FindHapt()
                ?? throw new DirectoryNotFoundException("No --data folder given and no ../shared/data/uci-hapt found; pass --data <folder in the UCI HAPT layout>.");
            var which = parse.GetValue(split)!;
            var sessions = SensorDataset.Load(folder, which);
            var builder = new ReferenceProfileBuilder(HaptChannels, new ReferenceProfileOptions { SegmentLength = parse.GetValue(window) });
            foreach (var s in sessions)
            {
                builder.AddRecording(string.Create(CultureInfo.InvariantCulture, $"subject-{s.Subject}"), s.Samples);
            }

            var profile = builder.Build(string.Create(CultureInfo.InvariantCulture, $"UCI HAPT {which} split: {sessions.Select(s => s.Subject).Distinct().Count()} subjects, {sessions.Count} sessions, raw 50 Hz"));
            var path = parse.GetValue(output)!.FullName;
            profile.Save(path);
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {path}: {profile.Channels.Count} channels, {profile.Segments.Count} reference windows, sha256 {profile.Hash}"));
            return 0;
        });
        return cmd;
    }

    private static Command Check()
    {
        var profileOpt = new Option<FileInfo>("--profile") { Description = "Reference profile JSON (from 'har drift profile').", Required = true };
        var input = new Option<FileInfo>("--input") { Description = "CSV with a header naming the profile's channels (extra columns ignored; an optional t_ms column enables the sample-rate check).", Required = true };
        var json = new Option<bool>("--json") { Description = "Print the full reports (with evidence) as JSON." };
        var cmd = new Command("check", "Score a recording (one device) against a reference profile, one window (the profile's window length) at a time; the physics checks also use the device's earlier windows.") { profileOpt, input, json };
        cmd.SetAction(parse =>
        {
            var profile = ReferenceProfile.Load(parse.GetValue(profileOpt)!.FullName);
            var (frames, stamps) = ReadCsv(parse.GetValue(input)!.FullName, profile.ChannelNames);
            var scorer = new DriftScorer(profile);
            var c = profile.Channels.Count;
            var total = frames.Length / c;
            var len = profile.SegmentLength;
            var reports = new List<DriftReport>();
            var history = new DeviceHistory();
            for (var start = 0; start < total; start += len)
            {
                var count = Math.Min(len, total - start);
                reports.Add(scorer.Score(frames.AsSpan(start * c, count * c), history, stamps is null ? default : stamps.AsSpan(start, count)));
            }

            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(reports, CliJson.Indented));
            }
            else
            {
                Render(reports, len);
            }

            return reports.Any(r => r.Flagged) ? 1 : 0;
        });
        return cmd;
    }

    private static Command Ks()
    {
        var a = new Argument<FileInfo>("fileA") { Description = "First sample: one number per line." };
        var b = new Argument<FileInfo>("fileB") { Description = "Second sample: one number per line." };
        var alternative = new Option<string>("--alternative") { Description = "two-sided, less or greater (SciPy's meaning).", DefaultValueFactory = _ => "two-sided" };
        alternative.AcceptOnlyFromAmong("two-sided", "less", "greater");
        var method = new Option<string>("--method") { Description = "auto, exact or asymp (SciPy's meaning).", DefaultValueFactory = _ => "auto" };
        method.AcceptOnlyFromAmong("auto", "exact", "asymp");
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var cmd = new Command("ks", "Two-sample Kolmogorov–Smirnov test with SciPy's ks_2samp semantics.") { a, b, alternative, method, json };
        cmd.SetAction(parse =>
        {
            var alt = parse.GetValue(alternative) switch { "less" => KsAlternative.Less, "greater" => KsAlternative.Greater, _ => KsAlternative.TwoSided };
            var m = parse.GetValue(method) switch { "exact" => KsMethod.Exact, "asymp" => KsMethod.Asymptotic, _ => KsMethod.Auto };
            var r = KolmogorovSmirnov.Test(ReadNumbers(parse.GetValue(a)!.FullName), ReadNumbers(parse.GetValue(b)!.FullName), alt, m);
            var doc = new Dictionary<string, object>
            {
                ["statistic"] = r.Statistic,
                ["pvalue"] = r.PValue,
                ["statistic_location"] = r.Location,
                ["statistic_sign"] = r.Sign,
                ["method"] = r.Method == KsMethod.Exact ? "exact" : "asymp",
                ["n"] = r.N,
                ["m"] = r.M,
            };
            Print(doc, parse.GetValue(json));
            return 0;
        });
        return cmd;
    }

    private static Command Psi()
    {
        var a = new Argument<FileInfo>("reference") { Description = "Reference sample: one number per line." };
        var b = new Argument<FileInfo>("current") { Description = "Current sample: one number per line." };
        var bins = new Option<int>("--bins") { Description = "Number of quantile bins of the reference.", DefaultValueFactory = _ => PopulationStabilityIndex.DefaultBins };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var cmd = new Command("psi", "Population Stability Index with quantile bins of the reference (NumPy type-7, left-closed, 1e-4 for empty bins).") { a, b, bins, json };
        cmd.SetAction(parse =>
        {
            var r = PopulationStabilityIndex.Compute(ReadNumbers(parse.GetValue(a)!.FullName), ReadNumbers(parse.GetValue(b)!.FullName), parse.GetValue(bins));
            var doc = new Dictionary<string, object>
            {
                ["psi"] = r.Value,
                ["inner_edges"] = r.InnerEdges,
                ["ref_counts"] = r.ReferenceCounts,
                ["cur_counts"] = r.CurrentCounts,
            };
            Print(doc, parse.GetValue(json));
            return 0;
        });
        return cmd;
    }

    private static void Print(Dictionary<string, object> doc, bool json)
    {
        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(doc, CliJson.Indented));
            return;
        }

        foreach (var (k, v) in doc)
        {
            var text = v switch
            {
                double d => d.ToString("R", CultureInfo.InvariantCulture),
                double[] arr => string.Join(' ', arr.Select(x => x.ToString("R", CultureInfo.InvariantCulture))),
                long[] arr => string.Join(' ', arr),
                _ => Convert.ToString(v, CultureInfo.InvariantCulture),
            };
            Console.Out.WriteLine($"{k}: {text}");
        }
    }

    private static void Render(List<DriftReport> reports, int len)
    {
        var table = new Table().Border(TableBorder.Rounded).Title(reports.Count > 0 ? $"[bold]reference {reports[0].ReferenceHash[..12]}…[/]" : "no data");
        table.AddColumn("window");
        table.AddColumn("channel");
        table.AddColumn("verdict");
        table.AddColumn("KS D (floor)");
        table.AddColumn("PSI (floor)");
        table.AddColumn("adj. p (KS / PSI)");
        table.AddColumn("n / n_eff");
        var inv = CultureInfo.InvariantCulture;
        for (var w = 0; w < reports.Count; w++)
        {
            foreach (var c in reports[w].Channels)
            {
                var verdict = c.Verdict switch
                {
                    DriftVerdict.Drifted => "[red]Drifted[/]",
                    DriftVerdict.Stable => "[green]Stable[/]",
                    _ => "[grey]Insufficient[/]",
                };
                table.AddRow(
                    (w * len).ToString(inv),
                    c.Channel,
                    verdict,
                    c.Ks is null ? "-" : string.Create(inv, $"{c.Ks.Statistic:F3} ({c.Ks.Floor:F3})"),
                    c.Psi is null ? "-" : string.Create(inv, $"{c.Psi.Statistic:F3} ({c.Psi.Floor:F3})"),
                    c.Ks is null ? "-" : string.Create(inv, $"{c.Ks.AdjustedPValue:G3} / {c.Psi!.AdjustedPValue:G3}"),
                    string.Create(inv, $"{c.N} / {c.EffectiveN:F0}"));
            }

            foreach (var f in reports[w].Findings)
            {
                table.AddRow((w * len).ToString(inv), Markup.Escape(f.Channel ?? "device"), $"[yellow]{f.Kind}[/]", Markup.Escape(f.Message), string.Empty, string.Empty, string.Empty);
            }
        }

        AnsiConsole.Write(table);
    }

    private static double[] ReadNumbers(string path)
    {
        var values = new List<double>();
        var lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            var t = line.Trim();
            if (t.Length == 0)
            {
                continue;
            }

            if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            {
                throw new FormatException($"'{path}' line {lineNo} is '{t}'; expected one number per line.");
            }

            values.Add(v);
        }

        return [.. values];
    }

    private static (float[] Frames, long[]? Stamps) ReadCsv(string path, IReadOnlyList<string> channels)
    {
        using var reader = new StreamReader(path);
        var header = reader.ReadLine() ?? throw new InvalidDataException($"'{path}' is empty; expected a CSV header naming the channels {string.Join(',', channels)}.");
        var cols = header.Split(',').Select(h => h.Trim()).ToList();
        var idx = channels.Select(c => cols.IndexOf(c)).ToArray();
        var missing = channels.Where((_, i) => idx[i] < 0).ToArray();
        if (missing.Length > 0)
        {
            throw new InvalidDataException($"'{path}' has no column(s) {string.Join(", ", missing)}; the profile expects {string.Join(',', channels)}.");
        }

        var tIdx = cols.IndexOf("t_ms");
        var frames = new List<float>();
        var stamps = tIdx >= 0 ? new List<long>() : null;
        string? line;
        var lineNo = 1;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNo++;
            if (line.Length == 0)
            {
                continue;
            }

            var parts = line.Split(',');
            foreach (var i in idx)
            {
                frames.Add(float.Parse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture));
            }

            stamps?.Add(long.Parse(parts[tIdx], CultureInfo.InvariantCulture));
        }

        return ([.. frames], stamps?.ToArray());
    }
}
