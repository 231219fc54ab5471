using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Har.Drift;
using Har.Inference.Data;

namespace Har.Cli.Commands;

/// <summary><c>har drift …</c>: build reference profiles, check data against them, and run the raw tests.</summary>
internal static class DriftCommands
{
    private static readonly string[] Channels = ["ax", "ay", "az", "gx", "gy", "gz"];

    public static Command Create() => new("drift", "Drift monitoring: reference profiles, verdicts, and the raw KS / PSI tests.")
    {
        Profile(),
        Check(),
        Ks(),
        Psi(),
    };

    private static Command Profile()
    {
        var data = new Option<DirectoryInfo?>("--data") { Description = "Dataset folder in the common sample format (samples CSV.gz, labels.csv, splits.csv; default: ../shared/data/uci-hapt found from here)." };
        var split = SplitOption("train");
        var output = new Option<FileInfo>("--output", "-o") { Description = "Where to write the profile JSON.", Required = true };
        var window = new Option<int>("--window") { Description = "Samples per reference window (use the window length you will check).", DefaultValueFactory = _ => 3000 };
        var cmd = new Command("profile", "Build a reference profile (channel summaries, window sketches, calibrated floors) from the subjects of a dataset in the common sample format; each subject is a group for the calibration.") { data, split, output, window };
        cmd.SetAction(parse =>
        {
            var which = parse.GetValue(split)!;
            var sessions = LoadSessions(parse.GetValue(data), which);
            var builder = new ReferenceProfileBuilder(Channels, new ReferenceProfileOptions { SegmentLength = parse.GetValue(window) });
            foreach (var s in sessions)
            {
                builder.AddRecording(string.Create(CultureInfo.InvariantCulture, $"subject-{s.Subject}"), s.Samples);
            }

            var profile = builder.Build(string.Create(CultureInfo.InvariantCulture, $"{which} split: {sessions.Select(s => s.Subject).Distinct().Count()} subjects, {sessions.Count} sessions, raw 50 Hz"));
            var path = parse.GetValue(output)!.FullName;
            profile.Save(path);
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {path}: {profile}"));
            return 0;
        });
        return cmd;
    }

    private static Command Check()
    {
        var profileOpt = new Option<FileInfo>("--profile") { Description = "Reference profile JSON (from 'har drift profile').", Required = true };
        var input = new Option<FileInfo?>("--input") { Description = "One device's recording: a CSV with a header naming the profile's channels (extra columns ignored; an optional t_ms column enables the sample-rate check)." };
        var data = new Option<DirectoryInfo?>("--data") { Description = "A dataset folder in the common sample format instead of --input: every session is scored as one device." };
        var split = SplitOption("all");
        var json = new Option<bool>("--json") { Description = "Print the overall verdict and the full reports (with evidence) as JSON; enums as names." };
        var cmd = new Command("check", "Score recordings against a reference profile, one window (the profile's window length) at a time and one device at a time; the physics checks also use the device's earlier windows. Prints the overall verdict first; exit code 1 when anything is flagged.") { profileOpt, input, data, split, json };
        cmd.SetAction(parse =>
        {
            var profile = ReferenceProfile.Load(parse.GetValue(profileOpt)!.FullName);
            var devices = new List<(string Device, float[] Frames, long[]? Stamps)>();
            if (parse.GetValue(input) is { } file)
            {
                var (frames, stamps) = ReadCsv(file.FullName, profile.ChannelNames);
                devices.Add((Path.GetFileNameWithoutExtension(file.Name), frames, stamps));
            }
            else if (parse.GetValue(data) is { } folder)
            {
                if (!profile.ChannelNames.SequenceEqual(Channels))
                {
                    throw new InvalidDataException($"The profile's channels are {string.Join(' ', profile.ChannelNames)}; a dataset in the common sample format has {string.Join(' ', Channels)}.");
                }

                foreach (var s in LoadSessions(folder, parse.GetValue(split)!))
                {
                    devices.Add((string.Create(CultureInfo.InvariantCulture, $"subject-{s.Subject}/session-{s.Session}"), s.Samples, null));
                }
            }
            else
            {
                throw new ArgumentException("Pass --input <recording.csv> (one device) or --data <dataset folder> (every session a device).");
            }

            var windows = Score(profile, devices);
            var flagged = windows.Count(w => w.Report.Flagged);
            var drifted = windows.Count(w => w.Report.AnyDrifted);
            var withFindings = windows.Count(w => w.Report.Findings.Count > 0);
            var verdict = drifted > 0 ? DriftVerdict.Drifted : windows.All(w => w.Report.Verdict == DriftVerdict.Insufficient) ? DriftVerdict.Insufficient : DriftVerdict.Stable;
            var summary = string.Create(CultureInfo.InvariantCulture, $"{verdict}: {flagged} of {windows.Count} windows flagged ({drifted} drifted, {withFindings} with sensor findings) over {devices.Count} device{(devices.Count == 1 ? string.Empty : "s")}; reference {profile.Hash[..12]}, windows of {profile.SegmentLength} samples");
            if (parse.GetValue(json))
            {
                var doc = new
                {
                    verdict,
                    summary,
                    reference = profile.Hash,
                    windows = windows.Count,
                    flagged,
                    reports = windows.Select(w => new { device = w.Device, start_frame = w.Start, report = w.Report }),
                };
                Console.Out.WriteLine(JsonSerializer.Serialize(doc, CliJson.Indented));
            }
            else
            {
                Console.Out.WriteLine(summary);
                foreach (var (device, start, report) in windows)
                {
                    if (report.Flagged)
                    {
                        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{device} @ frame {start}: {report}"));
                    }
                }
            }

            return flagged > 0 ? 1 : 0;
        });
        return cmd;
    }

    /// <summary>Scores each device's frames window by window with a monitor of its own (physics history per device).</summary>
    private static List<(string Device, long Start, DriftReport Report)> Score(ReferenceProfile profile, List<(string Device, float[] Frames, long[]? Stamps)> devices)
    {
        var c = profile.ChannelNames.Count;
        var len = profile.SegmentLength;
        var result = new List<(string, long, DriftReport)>();
        var registry = Prometheus.Metrics.NewCustomRegistry();
        foreach (var (device, frames, stamps) in devices)
        {
            using var monitor = new DriftMonitor(profile, new DriftMonitorOptions { WindowLength = len, MetricsRegistry = registry });
            var total = frames.Length / c;
            for (var start = 0; start < total; start += len)
            {
                var count = Math.Min(len, total - start);
                monitor.Append(frames.AsSpan(start * c, count * c), stamps is null ? default : stamps.AsSpan(start, count));

                // A short last window is scored with the end of the one before it, so that it is a whole window too.
                result.Add((device, start + count - monitor.BufferedFrames, monitor.ScoreNow()));
            }
        }

        return result;
    }

    private static Option<string> SplitOption(string defaultValue)
    {
        var split = new Option<string>("--split") { Description = "Subjects to use (splits.csv): train, test or all.", DefaultValueFactory = _ => defaultValue };
        split.AcceptOnlyFromAmong("train", "test", "all");
        return split;
    }

    private static List<SensorSession> LoadSessions(DirectoryInfo? data, string split)
    {
        var folder = data?.FullName ?? SharedData.FindHapt()
            ?? throw new DirectoryNotFoundException("No --data folder given and no ../shared/data/uci-hapt found; pass --data <dataset folder in the common sample format>.");
        var sessions = SensorDataset.Load(folder, split == "all" ? null : split);
        if (sessions.Count == 0)
        {
            throw new InvalidDataException($"'{folder}' has no sessions in the {split} split.");
        }

        return sessions;
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
