using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Har.Drift;
using Har.Inference;
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

    /// <summary>The shortest window <c>har drift profile</c> accepts: the drift tests' minimum of finite samples per channel.</summary>
    private const int MinWindow = 500;

    private static Command Profile()
    {
        var data = new Option<DirectoryInfo?>("--data") { Description = "Dataset folder in the common sample format (samples CSV.gz, labels.csv, splits.csv; default: ../shared/data/uci-hapt found from here)." };
        var split = SplitOption("train");
        var output = new Option<FileInfo>("--output", "-o") { Description = "Where to write the profile JSON.", Required = true };
        var window = new Option<int>("--window") { Description = "Samples per reference window (use the window length you will check): 500 (10 s at 50 Hz) to 10,000,000.", DefaultValueFactory = _ => 3000 }
            .InRange(MinWindow, ReferenceProfileChecks.MaxSegmentLength, "the drift tests score a window only when it holds 500 samples per channel, so a shorter window never gives a verdict");
        var model = ModelOption("Also attach the model's outputs on the data's windows (class mix, confidence, entropy) for output drift; windows of activities the model does not know (matched by name with labels.csv) are left out and counted.");
        var accuracySubjects = new Option<int[]>("--accuracy-subjects")
        {
            Description = "With --model: subjects the model was not trained on (e.g. 28 29 30, the bundled models' validation subjects), whose labelled windows measure the model's accuracy per confidence bin (the accuracy estimate) and under each standard input fault (unit errors, sign flips, axis swaps, 40 Hz fed as 50 Hz, stuck channels), so that a device whose alarm names such a fault is estimated with the accuracy measured under it.",
            AllowMultipleArgumentsPerToken = true,
        };
        var cmd = new Command("profile", "Build a reference profile (channel summaries, window sketches, calibrated floors) from the subjects of a dataset in the common sample format; each subject is a group for the calibration.") { data, split, output, window, model, accuracySubjects };
        cmd.Needs(accuracySubjects, model, "it measures the model's accuracy; pass the model with --model <model.onnx>");
        cmd.SetAction(parse =>
        {
            // What can be checked without the data is checked before it is read (the HAPT data takes a minute to load).
            var path = parse.GetValue(output)!.FullName;
            if (Path.GetDirectoryName(path) is { } folder && !Directory.Exists(folder))
            {
                throw new DirectoryNotFoundException($"--output '{path}': the folder '{folder}' does not exist.");
            }

            if (Directory.Exists(path))
            {
                // Found after the data had been read and the profile built ("Is a directory : '<path>'").
                throw new IOException($"--output '{path}' is a folder; expected the path of the profile file to write, e.g. {Path.Combine(path, "profile.json")}.");
            }

            if (parse.GetValue(model) is { Exists: false } missing)
            {
                throw new FileNotFoundException($"--model '{missing.FullName}' does not exist; expected an ONNX model with its card (e.g. models/har-cnn-bilstm-1.0.0.onnx).", missing.FullName);
            }

            // With --model the profile reads the model's channels, in its order: the service's drift monitor is fed the
            // windows the model is served (found from outside: a gyro-first card was refused, and a profile in the data's
            // order would have read its gx as ax).
            var channels = parse.GetValue(model) is { } card ? ModelCard.Load(card.FullName).Channels.ToArray() : Channels;
            var which = parse.GetValue(split)!;
            var sessions = LoadSessions(parse.GetValue(data), which);
            var builder = new ReferenceProfileBuilder(channels, new ReferenceProfileOptions { SegmentLength = parse.GetValue(window) });
            foreach (var s in sessions)
            {
                builder.AddRecording(string.Create(CultureInfo.InvariantCulture, $"subject-{s.Subject}"), Columns(s.Samples, Channels, channels, "the model"));
            }

            ReferenceProfile profile;
            try
            {
                profile = builder.Build(string.Create(CultureInfo.InvariantCulture, $"{which} split: {sessions.Select(s => s.Subject).Distinct().Count()} subjects, {sessions.Count} sessions, raw 50 Hz"));
            }
            catch (InvalidOperationException ex)
            {
                // The data cannot make a profile (e.g. every session shorter than half a window): a problem of the input, not of the program.
                var longest = sessions.Max(s => s.Samples.Length / Channels.Length);
                throw new InvalidDataException($"{ex.Message} The {which} split's {sessions.Count} session(s) are at most {longest} frames long; record longer sessions or pass a smaller --window (now {parse.GetValue(window)}).", ex);
            }

            if (parse.GetValue(model) is { } modelFile)
            {
                var labelNames = SensorDataset.LoadLabelNames(DataFolder(parse.GetValue(data)));
                var run = RunModel(modelFile.FullName, sessions.Select(s => (s.Session.ToString(CultureInfo.InvariantCulture), s.Samples, (byte[]?)s.Labels)), labelNames, Channels);
                var outputs = OutputReference.FromPredictions(run.Labels, run.Classes.ToArray(), run.Confidence.ToArray(), run.Entropy.ToArray());
                Console.Out.WriteLine(run.Describe());
                if (parse.GetValue(accuracySubjects) is { Length: > 0 } subjects)
                {
                    outputs = WithAccuracy(outputs, modelFile.FullName, channels, LoadSessions(parse.GetValue(data), "all").Where(s => subjects.Contains(s.Subject)).ToList(), labelNames, profile.SampleRateHz, subjects);
                }

                profile = profile.WithOutputs(outputs);
            }

            profile.Save(path);
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {path}: {profile}"));
            return 0;
        });
        return cmd;
    }

    private static Command Check()
    {
        var profileOpt = new Option<FileInfo>("--profile") { Description = "Reference profile JSON (from 'har drift profile').", Required = true };
        var input = new Option<FileInfo?>("--input") { Description = "One device's recording: a CSV with a header naming the profile's channels (extra columns ignored; an optional t_ms column enables the sample-rate check). Gzip-compressed or not; comma, semicolon or tab separated; quoted fields and, with semicolons or tabs, decimal commas are read." };
        var data = new Option<DirectoryInfo?>("--data") { Description = "A dataset folder in the common sample format instead of --input: every session is scored as one device." };
        var split = SplitOption("all", "With --data: ");
        var json = new Option<bool>("--json") { Description = "Print the overall verdict and the full reports (with evidence) as JSON; enums as names." };
        var model = ModelOption("Also score the model's outputs on all devices' windows (pooled) against the profile's outputs (a profile built with --model).");
        var cmd = new Command("check", "Score recordings against a reference profile, one window (the profile's window length) at a time and one device at a time; the physics checks also use the device's earlier windows. Prints the overall verdict first. With a profile whose device alarm is calibrated (a 6-axis IMU profile of several people), the verdict and exit code 1 come from the devices' alarms and the outputs: a window flagged by a single-window check is evidence the alarm weighs, listed but not a verdict. Without one, exit code 1 when anything is flagged.") { profileOpt, input, data, split, json, model };
        cmd.ExactlyOne(input, data, "--input is one device's recording, --data a folder whose every session is a device; check them one at a time", "Pass --input <recording.csv> (one device) or --data <dataset folder> (every session a device).");
        cmd.Needs(split, data, "it selects the sessions of a --data folder; an --input recording has no split");
        cmd.SetAction(parse =>
        {
            var profile = ReferenceProfile.Load(parse.GetValue(profileOpt)!.FullName);
            if (parse.GetValue(model) is { } wanted)
            {
                // Found before the data is read and scored, not after.
                if (profile.Outputs is null)
                {
                    throw new InvalidDataException("The profile has no model outputs to compare with; build it with 'har drift profile --model <model.onnx>'.");
                }

                if (!wanted.Exists)
                {
                    throw new FileNotFoundException($"--model '{wanted.FullName}' does not exist; expected an ONNX model with its card (e.g. models/har-cnn-bilstm-1.0.0.onnx).", wanted.FullName);
                }
            }

            var devices = new List<(string Device, float[] Frames, long[]? Stamps)>();
            if (parse.GetValue(input) is { } file)
            {
                var (frames, stamps) = ReadCsv(file.FullName, profile.ChannelNames);
                devices.Add((FrameCsv.RecordingName(file.Name), frames, stamps));
            }
            else if (parse.GetValue(data) is { } folder)
            {
                foreach (var s in LoadSessions(folder, parse.GetValue(split)!))
                {
                    devices.Add((string.Create(CultureInfo.InvariantCulture, $"subject-{s.Subject}/session-{s.Session}"), Columns(s.Samples, Channels, profile.ChannelNames, "the profile"), null));
                }
            }

            var windows = Score(profile, devices);
            OutputVerdict? outputs = null;
            if (parse.GetValue(model) is { } modelFile)
            {
                var run = RunModel(modelFile.FullName, devices.Select(d => (d.Device, d.Frames, (byte[]?)null)), null, profile.ChannelNames);

                // Each prediction with its device's alarm as it stood when the window was complete: a named input fault
                // conditions the accuracy estimate (the reference's accuracy under that fault, when it holds one).
                var alarmsAt = new List<DriftAlarm?>(run.Classes.Count);
                foreach (var (device, end) in run.Windows)
                {
                    DriftAlarm? alarm = null;
                    foreach (var w in windows)
                    {
                        if (w.Device == device && w.Start + profile.SegmentLength <= end)
                        {
                            alarm = w.Report.Alarm;
                        }
                    }

                    alarmsAt.Add(alarm);
                }

                outputs = new DriftScorer(profile).ScoreOutputs(run.Classes.ToArray(), run.Confidence.ToArray(), run.Entropy.ToArray(), alarmsAt);
            }

            var flagged = windows.Count(w => Flagged(w.Report));
            var drifted = windows.Count(w => w.Report.AnyDrifted);
            var withFindings = windows.Count(w => w.Report.Findings.Count > 0);
            var alarms = windows.Where(w => w.Report.Alarm is { Raised: true }).GroupBy(w => w.Device).Select(g => (Device: g.Key, First: g.First())).ToList();
            // With a calibrated alarm, a device is judged by its alarm (calibrated for the false-alarm budget), not by single
            // windows: 6 % of clean HAPT test minutes flag a window, and a verdict on those would cry wolf (issue 15).
            var calibrated = profile.Alarms is not null;
            var verdict = alarms.Count > 0 || (!calibrated && drifted > 0) || outputs is { Verdict: DriftVerdict.Drifted } ? DriftVerdict.Drifted : windows.All(w => w.Report.Verdict == DriftVerdict.Insufficient) ? DriftVerdict.Insufficient : DriftVerdict.Stable;
            var causes = string.Join(", ", alarms.GroupBy(a => a.First.Report.Alarm!.Cause).Select(g => string.Create(CultureInfo.InvariantCulture, $"{g.Key} {g.Count()}")));
            var windowPart = calibrated
                ? string.Create(CultureInfo.InvariantCulture, $"single-window checks flagged {flagged} of {windows.Count} windows ({drifted} drifted, {withFindings} with sensor findings: evidence the alarms weigh, not alarms)")
                : string.Create(CultureInfo.InvariantCulture, $"{flagged} of {windows.Count} windows flagged ({drifted} drifted, {withFindings} with sensor findings)");
            var summary = string.Create(CultureInfo.InvariantCulture, $"{verdict}: {alarms.Count} of {devices.Count} device{(devices.Count == 1 ? string.Empty : "s")} alarmed{(alarms.Count > 0 ? $" ({causes})" : string.Empty)}; {windowPart}{(outputs is null ? string.Empty : $", outputs {outputs.Verdict}")}; reference {profile.Hash[..12]}, windows of {profile.SegmentLength} samples every {Math.Max(1, profile.SegmentLength / 2)}");
            if (parse.GetValue(json))
            {
                var doc = new
                {
                    verdict,
                    summary,
                    reference = profile.Hash,
                    windows = windows.Count,
                    flagged,
                    alarm_calibrated = calibrated,
                    alarms = alarms.Select(a => new { device = a.Device, start_frame = a.First.Start, alarm = a.First.Report.Alarm }),
                    outputs,
                    reports = windows.Select(w => new { device = w.Device, start_frame = w.Start, report = w.Report }),
                };
                Console.Out.WriteLine(JsonSerializer.Serialize(doc, CliJson.Indented));
            }
            else
            {
                Console.Out.WriteLine(summary);
                if (outputs is not null)
                {
                    Console.Out.WriteLine(outputs);
                }

                foreach (var (device, (_, start, report)) in alarms)
                {
                    Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{device} from frame {start}: {report.Alarm}"));
                }

                if (calibrated && flagged > 0)
                {
                    Console.Out.WriteLine("Windows flagged by single-window checks (evidence the device alarms weigh; a window flagged alone is not an alarm):");
                }

                foreach (var (device, start, report) in windows)
                {
                    if (Flagged(report))
                    {
                        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{device} @ frame {start}: {report}"));
                    }
                }
            }

            return verdict == DriftVerdict.Drifted || (!calibrated && flagged > 0) ? 1 : 0;
        });
        return cmd;
    }

    /// <summary>
    /// Measures the model's accuracy on the labelled windows of subjects it was not trained on, clean (per confidence bin)
    /// and under each standard input fault, and returns the output reference that holds them.
    /// </summary>
    private static OutputReference WithAccuracy(OutputReference outputs, string modelPath, string[] channels, List<SensorSession> labelled, string[] labelNames, double sampleRateHz, int[] subjects)
    {
        if (labelled.Count == 0)
        {
            throw new InvalidDataException($"The data has no sessions of subjects {string.Join(' ', subjects)} (--accuracy-subjects).");
        }

        var clean = RunModel(modelPath, labelled.Select(s => (s.Session.ToString(CultureInfo.InvariantCulture), s.Samples, (byte[]?)s.Labels)), labelNames, Channels).Labelled();
        outputs = outputs.WithAccuracy(clean.Classes, clean.Confidence, clean.True);
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"accuracy on {clean.True.Length} labelled windows of subjects {string.Join(' ', subjects)}: {Accuracy(clean.Classes, clean.True):F3}; under each standard input fault:"));
        // The faults are named by the profile's channels (the model's), so they are applied to frames in that order.
        foreach (var fault in InputFault.Standard(channels, sampleRateHz))
        {
            var run = RunModel(modelPath, labelled.Select(s => (s.Session.ToString(CultureInfo.InvariantCulture), fault.Apply(Columns(s.Samples, Channels, channels, "the model"), channels.Length), (byte[]?)Resample(s.Labels, fault.SourceFramesPerFrame))), labelNames, channels).Labelled();
            outputs = outputs.WithFaultAccuracy(fault, run.Classes, run.True);
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {fault}: {Accuracy(run.Classes, run.True):F3} ({run.True.Length} windows)"));
        }

        return outputs;
    }

    /// <summary>The labels of the faulty stream's frames (each frame covers <paramref name="ratio"/> frames of the recording).</summary>
    private static byte[] Resample(byte[] labels, double ratio)
    {
        if (ratio == 1)
        {
            return labels;
        }

        var frames = Math.Max(0, (int)Math.Floor(((labels.Length - 1) / ratio) + 1));
        var result = new byte[frames];
        for (var f = 0; f < frames; f++)
        {
            result[f] = labels[Math.Min(labels.Length - 1, (int)Math.Round(f * ratio))];
        }

        return result;
    }

    private static double Accuracy(int[] predicted, int[] truth)
    {
        var right = 0;
        for (var i = 0; i < predicted.Length; i++)
        {
            right += predicted[i] == truth[i] ? 1 : 0;
        }

        return predicted.Length == 0 ? double.NaN : (double)right / predicted.Length;
    }

    /// <summary>A window needs attention: a channel drifted or a sensor check failed.</summary>
    private static bool Flagged(DriftReport report) => report.AnyDrifted || report.Findings.Count > 0;

    /// <summary>Scores each device's frames with a monitor of its own (physics history and alarm per device): the last window every half window, as the serving monitor does.</summary>
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
            var step = Math.Max(1, len / 2);
            for (var start = 0; start < total; start += step)
            {
                var count = Math.Min(step, total - start);
                monitor.Append(frames.AsSpan(start * c, count * c), stamps is null ? default : stamps.AsSpan(start, count));
                if (start + count < len && start + count < total)
                {
                    continue;
                }

                // A short last window is scored with the end of the one before it, so that it is a whole window too.
                result.Add((device, Math.Max(0, start + count - len), monitor.ScoreNow()));
            }
        }

        return result;
    }

    private static Option<string> SplitOption(string defaultValue, string prefix = "")
    {
        var split = new Option<string>("--split") { Description = prefix + "Subjects to use (splits.csv): train, test or all.", DefaultValueFactory = _ => defaultValue };
        split.AcceptOnlyFromAmong("train", "test", "all");
        return split;
    }

    private static Option<FileInfo?> ModelOption(string description) => new("--model") { Description = $"An ONNX model with its card (e.g. models/har-cnn-bilstm-1.0.0.onnx). {description}" };

    /// <summary>
    /// Runs the model on every window of every recording (the model's window geometry, through the package windower).
    /// With per-sample labels, a window whose centre sample is labelled with an activity the model does not know (by
    /// name; UNLABELED is kept) is left out and counted.
    /// </summary>
    private static ModelRun RunModel(string modelPath, IEnumerable<(string Id, float[] Frames, byte[]? Labels)> recordings, string[]? labelNames, IReadOnlyList<string> frameChannels)
    {
        using var model = HarModel.Load(modelPath, new HarModelOptions { EnableMetrics = false });
        var card = model.Card;
        recordings = recordings.Select(r => (r.Id, Columns(r.Frames, frameChannels, card.Channels, $"model {card}"), r.Labels));

        var known = new HashSet<string>(card.Labels, StringComparer.OrdinalIgnoreCase);
        var run = new ModelRun([.. card.Labels], card.ToString());
        var windower = new StreamWindower(card);
        const int Chunk = 1024;
        foreach (var (id, frames, labels) in recordings)
        {
            long produced = 0;
            var total = frames.Length / card.ChannelCount;
            for (var start = 0; start < total; start += Chunk)
            {
                var count = Math.Min(Chunk, total - start);
                var windows = windower.Append(id, frames.AsSpan(start * card.ChannelCount, count * card.ChannelCount));
                if (windows.Count == 0)
                {
                    continue;
                }

                foreach (var p in model.Predict(windows))
                {
                    var centre = (produced++ * card.Stride) + (card.WindowLength / 2);
                    var activity = labels is not null && labelNames is not null && centre < labels.Length && labels[centre] < labelNames.Length ? labelNames[labels[centre]] : null;
                    if (activity is not null && labels![centre] != 0 && !known.Contains(activity))
                    {
                        run.Excluded[activity] = run.Excluded.GetValueOrDefault(activity) + 1;
                        continue;
                    }

                    run.Classes.Add(p.ClassIndex);
                    run.Confidence.Add(p.Confidence);
                    run.Entropy.Add(p.Entropy);
                    run.Windows.Add((id, centre - (card.WindowLength / 2) + card.WindowLength));
                    run.True.Add(activity is not null && labels![centre] != 0 ? card.Labels.ToList().FindIndex(l => string.Equals(l, activity, StringComparison.OrdinalIgnoreCase)) : -1);
                }
            }

            windower.Remove(id);
        }

        if (run.Classes.Count == 0)
        {
            throw new InvalidDataException($"Model {card} produced no windows ({card.WindowLength} samples each) on the data, or all of them were of activities it does not know.");
        }

        return run;
    }

    private static string DataFolder(DirectoryInfo? data) => data?.FullName ?? SharedData.FindHapt()
        ?? throw new DirectoryNotFoundException("No --data folder given and no ../shared/data/uci-hapt found; pass --data <dataset folder in the common sample format>.");

    /// <summary>
    /// Interleaved frames of channels <paramref name="from"/> as frames of channels <paramref name="to"/>, taken by name (the
    /// same array when the orders are the same). A channel <paramref name="to"/> names that <paramref name="from"/> lacks
    /// is refused, naming <paramref name="who"/> needs it.
    /// </summary>
    internal static float[] Columns(float[] frames, IReadOnlyList<string> from, IReadOnlyList<string> to, string who)
    {
        if (from.SequenceEqual(to))
        {
            return frames;
        }

        var map = to.Select(c => from.ToList().IndexOf(c)).ToArray();
        if (Array.IndexOf(map, -1) is var missing and >= 0)
        {
            throw new InvalidDataException($"{char.ToUpperInvariant(who[0])}{who[1..]} reads channel {to[missing]} ({string.Join(' ', to)}); the data has {string.Join(' ', from)}.");
        }

        var count = frames.Length / from.Count;
        var result = new float[count * to.Count];
        for (var f = 0; f < count; f++)
        {
            for (var c = 0; c < map.Length; c++)
            {
                result[(f * map.Length) + c] = frames[(f * from.Count) + map[c]];
            }
        }

        return result;
    }

    private static List<SensorSession> LoadSessions(DirectoryInfo? data, string split)
    {
        var folder = DataFolder(data);
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
            var x = ReadNumbers(parse.GetValue(a)!.FullName);
            var y = ReadNumbers(parse.GetValue(b)!.FullName);
            var r = KolmogorovSmirnov.Test(x, y, alt, m);
            var doc = new Dictionary<string, object>
            {
                ["statistic"] = r.Statistic,
                ["pvalue"] = r.PValue,
                ["method"] = r.Method == KsMethod.Exact ? "exact" : "asymp",
                ["n"] = x.Length,
                ["m"] = y.Length,
            };
            Print(doc, parse.GetValue(json));
            return 0;
        });
        return cmd;
    }

    /// <summary>The fewest and most quantile bins <c>har drift psi</c> accepts.</summary>
    private const int MinBins = 2, MaxBins = 10_000;

    private static Command Psi()
    {
        var a = new Argument<FileInfo>("reference") { Description = "Reference sample: one number per line." };
        var b = new Argument<FileInfo>("current") { Description = "Current sample: one number per line." };
        var bins = new Option<int>("--bins") { Description = "Number of quantile bins of the reference: 2 to 10,000.", DefaultValueFactory = _ => 10 }
            .InRange(MinBins, MaxBins, "PSI needs two bins, and each bin holds a share of the reference (far fewer values than bins leave most of them empty)");
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

    /// <summary>The sample of <c>har drift ks</c> and <c>psi</c>: one finite number per line (NaN and infinities are refused, as the tests would count them in a bin or refuse them without naming the line).</summary>
    private static double[] ReadNumbers(string path)
    {
        var values = new List<double>();
        foreach (var (lineNo, line) in FrameCsv.ReadLines(path, "a sample file, one number per line"))
        {
            var t = line.Trim();
            if (t.Length == 0)
            {
                continue;
            }

            if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            {
                throw new FormatException($"'{path}' line {lineNo} is '{FrameCsv.Printable(t)}'; expected one number per line.");
            }

            if (!double.IsFinite(v))
            {
                throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"'{path}' line {lineNo} is '{FrameCsv.Printable(t)}'; expected a finite number (NaN and infinities, or values beyond ±1.8e308, are not samples)."));
            }

            values.Add(v);
        }

        return [.. values];
    }

    private static (float[] Frames, long[]? Stamps) ReadCsv(string path, IReadOnlyList<string> channels)
    {
        using var csv = FrameCsv.Open(path, $"the channels {string.Join(',', channels)}");
        var idx = channels.Select(csv.Column).ToArray();
        var missing = channels.Where((_, i) => idx[i] < 0).ToArray();
        if (missing.Length > 0)
        {
            throw new InvalidDataException($"'{path}' has no column(s) {string.Join(", ", missing)}; the profile expects {string.Join(',', channels)}.");
        }

        var tIdx = csv.Column("t_ms");
        var frames = new List<float>();
        var stamps = tIdx >= 0 ? new List<long>() : null;
        while (csv.Next())
        {
            foreach (var i in idx)
            {
                frames.Add(csv.Float(i));
            }

            stamps?.Add(csv.Integer(tIdx, "whole milliseconds"));
        }

        return ([.. frames], stamps?.ToArray());
    }

    /// <summary>The model's outputs on a dataset's windows, and the windows left out by activity.</summary>
    private sealed record ModelRun(string[] Labels, string Model)
    {
        public List<int> Classes { get; } = [];

        public List<float> Confidence { get; } = [];

        public List<float> Entropy { get; } = [];

        /// <summary>Gets the recording and the end frame of each window.</summary>
        public List<(string Id, long End)> Windows { get; } = [];

        /// <summary>Gets the true class per window (model order) from the centre sample's label, or -1 when unlabelled.</summary>
        public List<int> True { get; } = [];

        /// <summary>The windows with a true class: predicted class, confidence and true class.</summary>
        public (int[] Classes, float[] Confidence, int[] True) Labelled()
        {
            var keep = Enumerable.Range(0, True.Count).Where(i => True[i] >= 0).ToArray();
            if (keep.Length == 0)
            {
                throw new InvalidDataException($"{Model} produced no window with a labelled activity it knows on the --accuracy-subjects' data.");
            }

            return ([.. keep.Select(i => Classes[i])], [.. keep.Select(i => Confidence[i])], [.. keep.Select(i => True[i])]);
        }

        public SortedDictionary<string, int> Excluded { get; } = new(StringComparer.Ordinal);

        public string Describe() => string.Create(
            CultureInfo.InvariantCulture,
            $"model outputs from {Model}: {Classes.Count} windows; {(Excluded.Count == 0 ? "none left out" : $"left out {Excluded.Values.Sum()} windows of activities the model does not know: {string.Join(", ", Excluded.Select(e => $"{e.Key} {e.Value}"))}")}");
    }
}
