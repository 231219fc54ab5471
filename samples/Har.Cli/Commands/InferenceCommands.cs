using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Har.Inference.Data;
using Har.Inference;
using Spectre.Console;

namespace Har.Cli.Commands;

/// <summary><c>har predict</c> and <c>har eval</c>: score recorded IMU data through Har.Inference.</summary>
internal static class InferenceCommands
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>A difference in points with its sign, 3 decimals; one that rounds to zero (either sign) is "0.000".</summary>
    internal static string SignedPoints(double points) => points.ToString("+0.000;-0.000;0.000", Inv);

    public static Command Predict()
    {
        var model = new Option<FileInfo?>("--model") { Description = "The .onnx model (default: the bundled champion)." };
        var input = new Option<FileInfo>("--input") { Description = "CSV with a header holding ax,ay,az,gx,gy,gz, a file or a pipe such as <(zcat walk.csv.gz) or /dev/stdin (gzip-compressed or not; comma, semicolon or tab separated; quoted fields and, with semicolons or tabs, decimal commas are read); the shared data layout (subject,session,…) gives one stream per session. A stream needs at least one window of frames (the model's window length, e.g. 200): an input with none is exit code 2, saying how many it has; a session shorter than a window beside longer ones is skipped, named on stderr (and under \"skipped\" with --json).", Required = true };
        var segments = new Option<bool>("--segments") { Description = "Print activity segments (smoothed) instead of one line per window." };
        var smoothing = new Option<int>("--smoothing") { Description = "With --segments: windows in the segment majority vote (odd: 1, 3, 5, …).", DefaultValueFactory = _ => 3 };
        smoothing.Validators.Add(result =>
        {
            // Checked here, naming the option, not after the model is loaded ("Smoothing must be an odd number …").
            if (OptionRanges.TryGetValue(result, out int value) && (value < 1 || value % 2 == 0))
            {
                result.AddError(string.Create(Inv, $"--smoothing is {value}; expected an odd number of windows, 1 or more: the vote is centred on each window."));
            }
        });
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("predict", "Predict activities for every window of a recorded IMU stream.") { model, input, segments, smoothing, json };
        command.Needs(smoothing, segments, "it smooths the activity segments; the lines per window are not smoothed");
        command.SetAction(parse =>
        {
            var path = parse.GetValue(model)?.FullName ?? BundledModels.Champion;
            using var harModel = HarModel.Load(path, new HarModelOptions { EnableMetrics = false });
            var inputPath = parse.GetValue(input)!.FullName;
            var streams = ReadStreams(inputPath, harModel.Card);
            var skipped = ShortStreams(inputPath, streams, harModel.Card);
            foreach (var (id, frames) in skipped)
            {
                Console.Error.WriteLine(string.Create(Inv, $"har: skipped {id}: {frames} frames, fewer than the {harModel.Card.WindowLength} of one window"));
            }

            streams.RemoveAll(s => s.Frames.Length / harModel.Card.ChannelCount < harModel.Card.WindowLength);
            var windower = new StreamWindower(harModel.Card, new StreamWindowerOptions { MaxStreams = Math.Max(1, streams.Count) });
            var smoother = new ActivitySmoother(harModel.Card, parse.GetValue(smoothing));
            var asJson = parse.GetValue(json);
            var wantSegments = parse.GetValue(segments);
            var output = new List<object>();
            foreach (var (id, frames) in streams)
            {
                var (predictions, starts) = PredictStream(harModel, windower, id, frames);

                if (wantSegments)
                {
                    foreach (var s in smoother.Segment(predictions, starts))
                    {
                        if (asJson)
                        {
                            output.Add(new { stream = id, label = s.Label, start_frame = s.StartFrame, end_frame = s.EndFrame, start_s = s.Start.TotalSeconds, end_s = s.End.TotalSeconds, mean_confidence = s.MeanConfidence, windows = s.Windows });
                        }
                        else
                        {
                            Console.Out.WriteLine(string.Create(Inv, $"{id}\t{s.Start.TotalSeconds,8:0.00}s – {s.End.TotalSeconds,8:0.00}s\t{s.Label,-20}\tmean confidence {s.MeanConfidence:0.000}\t({s.Windows} windows)"));
                        }
                    }

                    continue;
                }

                for (var i = 0; i < predictions.Length; i++)
                {
                    var p = predictions[i];
                    var start = starts[i] / harModel.Card.SampleRateHz;
                    var end = (starts[i] + harModel.Card.WindowLength) / harModel.Card.SampleRateHz;
                    if (asJson)
                    {
                        output.Add(new { stream = id, window = i, start_s = start, end_s = end, label = p.Label, confidence = p.Confidence, entropy = p.Entropy, uncertain = p.IsUncertain, probabilities = p.Probabilities.ToArray() });
                    }
                    else
                    {
                        Console.Out.WriteLine(string.Create(Inv, $"{id}\t{i,5}\t{start,8:0.00}s – {end,8:0.00}s\t{p.Label,-20}\tconfidence {p.Confidence:0.000}\tentropy {p.Entropy:0.000}{(p.IsUncertain ? "\tuncertain" : string.Empty)}"));
                    }
                }
            }

            if (asJson)
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new { model = harModel.Card.ToString(), kind = wantSegments ? "segments" : "windows", items = output, skipped = skipped.Select(k => new { stream = k.Id, frames = k.Frames }) }, CliJson.Indented));
            }

            return 0;
        });
        return command;
    }

    public static Command Eval()
    {
        var data = new Option<DirectoryInfo?>("--data") { Description = "Dataset folder in the common sample format (default: ../shared/data/uci-hapt found upwards, or $HAR_SHARED)." };
        var file = new Option<string?>("--file") { Description = "Samples file in the folder (default: hapt_raw_50hz.csv.gz, else the folder's only *.csv.gz or *.csv)." };
        var split = new Option<string?>("--split") { Description = "Subjects to score: test, train or all (default: test when the folder has splits.csv, else all)." };
        var model = new Option<FileInfo?>("--model") { Description = "The .onnx model (default: the bundled champion)." };
        var tolerance = new Option<double>("--tolerance") { Description = "Accuracy points below the card's figure that still pass (the verdict; exit code 1 below it): 0 to 100.", DefaultValueFactory = _ => 1.0 }
            .InRange(0, 100, "accuracy points (1 is one percentage point), and a tolerance of more than 100 points would pass any model");
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("eval", "Score a model on a labelled dataset in the common sample format with the training protocol (accuracy, macro-F1, confusion matrix); labels are matched by name, activities the model does not know are excluded and counted. Exit code 1 when the accuracy is below the card's by more than the tolerance; 2 when nothing could be scored (no session, sessions shorter than a window, or every window unlabeled or of activities the model does not know), with the reason.") { data, file, split, model, tolerance, json };
        command.SetAction(parse =>
        {
            var folder = parse.GetValue(data)?.FullName ?? SharedData.FindHapt()
                ?? throw new DirectoryNotFoundException("No dataset folder given and none found (../shared/data/uci-hapt or $HAR_SHARED); pass --data <folder>.");
            var splitName = parse.GetValue(split) ?? (File.Exists(Path.Combine(folder, "splits.csv")) ? "test" : "all");
            var path = parse.GetValue(model)?.FullName ?? BundledModels.Champion;
            using var harModel = HarModel.Load(path, new HarModelOptions { EnableMetrics = false, MaxBatchSize = 64 });
            var result = DatasetEvaluator.Evaluate(harModel, folder, splitName, parse.GetValue(file));
            var report = result.Report;
            if (report.Windows == 0)
            {
                // No verdict: a gate that passed on nothing would pass a model nobody measured.
                throw new InvalidDataException(NothingScored(result, harModel.Card));
            }

            var card = harModel.Card.Metrics;
            var difference = (report.Accuracy - card.Accuracy) * 100;
            var verdict = difference >= -parse.GetValue(tolerance) ? EvalVerdict.Pass : EvalVerdict.BelowCard;
            var verdictLine = verdict switch
            {
                EvalVerdict.Pass => string.Create(Inv, $"verdict: PASS — accuracy {report.Accuracy:0.000000} is within {parse.GetValue(tolerance):0.##} points of the card's {card.Accuracy:0.000000} ({SignedPoints(difference)} points) on {report.Windows} windows"),
                _ => string.Create(Inv, $"verdict: BELOW CARD — accuracy {report.Accuracy:0.000000} is {-difference:0.000} points below the card's {card.Accuracy:0.000000} (tolerance {parse.GetValue(tolerance):0.##}) on {report.Windows} windows"),
            };

            if (parse.GetValue(json))
            {
                var matrix = new int[report.Labels.Count][];
                for (var i = 0; i < matrix.Length; i++)
                {
                    matrix[i] = new int[report.Labels.Count];
                    for (var j = 0; j < matrix.Length; j++)
                    {
                        matrix[i][j] = report.GetConfusion(i, j);
                    }
                }

                Console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    model = report.Model,
                    data = result.SamplesFile,
                    split = result.Split,
                    sessions = result.Sessions,
                    n_windows = report.Windows,
                    excluded_unlabeled_windows = report.ExcludedWindows,
                    excluded_unknown_activities = result.Excluded.Select(e => new { label = e.Label, windows = e.Windows, reason = "not among the model's labels" }),
                    accuracy = report.Accuracy,
                    macro_f1 = report.MacroF1,
                    macro_f1_classes = report.MacroF1Classes,
                    card = new { accuracy = card.Accuracy, macro_f1 = card.MacroF1, n_windows = card.Windows },
                    accuracy_difference_points = difference,
                    verdict,
                    warnings = result.Warnings,
                    per_class = report.PerClass.Select(c => new { name = c.Label, precision = c.Precision, recall = c.Recall, f1 = c.F1, support = c.Support, predicted = c.Predicted, included_in_macro = c.IncludedInMacro }),
                    labels = report.Labels,
                    confusion_matrix = matrix,
                }, EvalJson));
                return verdict == EvalVerdict.BelowCard ? 1 : 0;
            }

            var output = Console.Out;
            output.WriteLine(string.Create(Inv, $"{report.Model} on {Path.GetFileName(result.SamplesFile)} ({result.Split} subjects, {result.Sessions} sessions): {report.Windows} windows scored, {report.ExcludedWindows} unlabeled-majority windows excluded"));
            foreach (var (label, windows) in result.Excluded)
            {
                output.WriteLine(string.Create(Inv, $"excluded {windows} windows of {label}: not among the model's labels"));
            }

            output.WriteLine(string.Create(Inv, $"accuracy  {report.Accuracy:0.000000}   (card: {card.Accuracy:0.000000}, difference {SignedPoints(difference)} points)"));
            output.WriteLine(string.Create(Inv, $"macro-F1  {report.MacroF1:0.000000}   (card: {card.MacroF1:0.000000}; over {report.MacroF1Classes} classes present in labels or predictions)"));
            var rows = report.PerClass.Select(c => new[] { c.Label, c.Precision.ToString("0.000", Inv), c.Recall.ToString("0.000", Inv), c.F1.ToString("0.000", Inv), c.Support.ToString(Inv) }).ToList();
            if (Console.IsOutputRedirected)
            {
                // Piped: plain aligned columns (no box drawing, never wrapped to the terminal's width).
                WritePlainTable(output, ["class", .. ScoreColumns], rows);
            }
            else
            {
                var table = new Table().Border(TableBorder.Rounded);
                table.AddColumn("class");
                foreach (var name in ScoreColumns)
                {
                    table.AddColumn(new TableColumn(name).RightAligned());
                }

                foreach (var row in rows)
                {
                    table.AddRow([Markup.Escape(row[0]), .. row[1..]]);
                }

                AnsiConsole.Write(table);
            }

            output.WriteLine("confusion matrix (rows = true, columns = predicted, order as above):");
            var width = report.Labels.Max(l => l.Length);
            for (var i = 0; i < report.Labels.Count; i++)
            {
                var row = string.Join(' ', Enumerable.Range(0, report.Labels.Count).Select(j => report.GetConfusion(i, j).ToString(Inv).PadLeft(5)));
                output.WriteLine($"{report.Labels[i].PadRight(width)} {row}");
            }

            foreach (var warning in result.Warnings)
            {
                output.WriteLine($"warning: {warning}");
            }

            output.WriteLine(verdictLine);
            return verdict == EvalVerdict.BelowCard ? 1 : 0;
        });
        return command;
    }

    /// <summary>
    /// Every window of one stream with its start frame. The frames are appended in chunks that complete at most
    /// <see cref="WindowsPerChunk"/> windows each: the windower refuses an append that would complete more than
    /// <see cref="StreamWindowerOptions.MaxWindowsPerAppend"/> (1,024) windows.
    /// </summary>
    private static (Prediction[] Predictions, long[] Starts) PredictStream(HarModel model, StreamWindower windower, string id, float[] frames)
    {
        var card = model.Card;
        var chunk = WindowsPerChunk * card.Stride * card.ChannelCount;
        var predictions = new List<Prediction>();
        var starts = new List<long>();
        for (var at = 0; at < frames.Length; at += chunk)
        {
            var windows = windower.Append(id, frames.AsSpan(at, Math.Min(chunk, frames.Length - at)));
            predictions.AddRange(model.Predict(windows));
            for (var i = 0; i < windows.Count; i++)
            {
                starts.Add(windows.GetStartFrame(i));
            }
        }

        return ([.. predictions], [.. starts]);
    }

    /// <summary>The most windows one append of <c>har predict</c> completes (beside the first, which waits for a whole window).</summary>
    private const int WindowsPerChunk = 256;

    /// <summary>
    /// The streams shorter than one window, to skip; when every stream is (or there is none), an
    /// <see cref="InvalidDataException"/> saying how many frames a window needs and how many the input has.
    /// </summary>
    internal static List<(string Id, int Frames)> ShortStreams(string path, List<(string Id, float[] Frames)> streams, ModelCard card)
    {
        var needs = string.Create(Inv, $"{card} needs {card.WindowLength} frames ({card.WindowLength / card.SampleRateHz:0.##} s at {card.SampleRateHz:0.##} Hz) for one window");
        if (streams.Count == 0)
        {
            throw new InvalidDataException($"'{path}' holds no frames (no row after the header); {needs}.");
        }

        var tooShort = streams.Select(s => (s.Id, Frames: s.Frames.Length / card.ChannelCount)).Where(s => s.Frames < card.WindowLength).ToList();
        if (tooShort.Count < streams.Count)
        {
            return tooShort;
        }

        if (streams.Count == 1)
        {
            throw new InvalidDataException(string.Create(Inv, $"'{path}' has {tooShort[0].Frames} frames; {needs}."));
        }

        const int Named = 10;
        var list = string.Join(", ", tooShort.Take(Named).Select(s => string.Create(Inv, $"{s.Id} {s.Frames} frames"))) + (tooShort.Count > Named ? string.Create(Inv, $" and {tooShort.Count - Named} more") : string.Empty);
        throw new InvalidDataException(string.Create(Inv, $"'{path}': none of its {streams.Count} sessions is one window long ({list}); {needs}."));
    }

    /// <summary>The overall outcome of <c>har eval</c>.</summary>
    internal enum EvalVerdict
    {
        /// <summary>Accuracy within the tolerance of the card's.</summary>
        Pass,

        /// <summary>Accuracy below the card's by more than the tolerance.</summary>
        BelowCard,
    }

    /// <summary>Why <c>har eval</c> scored no window: no session, sessions shorter than a window, or every window left out (and why).</summary>
    internal static string NothingScored(DatasetEvaluation result, ModelCard card)
    {
        var report = result.Report;
        var where = string.Create(Inv, $"{Path.GetFileName(result.SamplesFile)} ({result.Split} split)");
        if (result.Sessions == 0)
        {
            return result.Split == "all"
                ? $"Nothing was scored: {where} holds no session (no data rows)."
                : $"Nothing was scored: {where} holds no session of a subject in the {result.Split} split (splits.csv); try --split all.";
        }

        var unknown = result.Excluded.Sum(e => e.Windows);
        if (report.ExcludedWindows + unknown == 0)
        {
            return string.Create(Inv, $"Nothing was scored: none of the {result.Sessions} session(s) of {where} is one window long; {card} needs {card.WindowLength} frames ({card.WindowLength / card.SampleRateHz:0.##} s at {card.SampleRateHz:0.##} Hz).");
        }

        var reasons = new List<string>();
        if (report.ExcludedWindows > 0)
        {
            reasons.Add(string.Create(Inv, $"{report.ExcludedWindows} are mostly unlabeled (label 0)"));
        }

        if (unknown > 0)
        {
            reasons.Add(string.Create(Inv, $"{unknown} are of activities {card} does not know ({string.Join(", ", result.Excluded.Where(e => e.Windows > 0).Select(e => string.Create(Inv, $"{e.Label} {e.Windows}")))}; labels.csv names are matched with the model's labels {string.Join(' ', card.Labels)} by name)"));
        }

        return string.Create(Inv, $"Nothing was scored: all {report.ExcludedWindows + unknown} windows of the {result.Sessions} session(s) of {where} were left out: {string.Join("; ", reasons)}.");
    }

    private static readonly string[] ScoreColumns = ["precision", "recall", "f1", "support"];

    /// <summary>Indented JSON with enums as their names.</summary>
    private static readonly JsonSerializerOptions EvalJson = new(CliJson.Indented) { Converters = { new JsonStringEnumConverter() } };

    private static void WritePlainTable(TextWriter output, string[] header, List<string[]> rows)
    {
        var widths = header.Select((h, c) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[c].Length))).ToArray();
        output.WriteLine(string.Join("  ", header.Select((h, c) => c == 0 ? h.PadRight(widths[c]) : h.PadLeft(widths[c]))));
        foreach (var row in rows)
        {
            output.WriteLine(string.Join("  ", row.Select((v, c) => c == 0 ? v.PadRight(widths[c]) : v.PadLeft(widths[c]))));
        }
    }

    /// <summary>Reads a CSV of frames (<see cref="FrameCsv"/>): columns found by name (the card's channels), one stream per session column value if present.</summary>
    private static List<(string Id, float[] Frames)> ReadStreams(string path, ModelCard card)
    {
        using var csv = FrameCsv.Open(path, $"the columns {string.Join(',', card.Channels)}");
        var columns = card.Channels.Select(csv.Column).ToArray();
        if (columns.Any(c => c < 0))
        {
            throw new InvalidDataException($"'{path}' has the header '{FrameCsv.Printable(string.Join(',', csv.Header))}'; expected columns {string.Join(',', card.Channels)} (and optionally subject,session,t_index,label as in the shared data layout).");
        }

        var sessionColumn = csv.Column("session");
        var streams = new List<(string, List<float>)>();
        string? current = null;
        List<float>? frames = null;
        while (csv.Next())
        {
            var id = sessionColumn >= 0 ? $"session-{csv.Fields[sessionColumn]}" : FrameCsv.RecordingName(path);
            if (id != current)
            {
                current = id;
                frames = [];
                streams.Add((id, frames));
            }

            foreach (var c in columns)
            {
                frames!.Add(csv.Float(c));
            }
        }

        return streams.Select(s => (s.Item1, s.Item2.ToArray())).ToList();
    }
}
