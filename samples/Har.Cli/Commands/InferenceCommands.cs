using System.CommandLine;
using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using Har.Inference.Data;
using Har.Inference;
using Spectre.Console;

namespace Har.Cli.Commands;

/// <summary><c>har predict</c> and <c>har eval</c>: score recorded IMU data through Har.Inference.</summary>
internal static class InferenceCommands
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Predict()
    {
        var model = new Option<FileInfo?>("--model") { Description = "The .onnx model (default: the bundled champion)." };
        var input = new Option<FileInfo>("--input") { Description = "CSV (or .csv.gz) with a header holding ax,ay,az,gx,gy,gz; the shared data layout (subject,session,…) gives one stream per session.", Required = true };
        var segments = new Option<bool>("--segments") { Description = "Print activity segments (smoothed) instead of one line per window." };
        var smoothing = new Option<int>("--smoothing") { Description = "Windows in the segment majority vote (odd).", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("predict", "Predict activities for every window of a recorded IMU stream.") { model, input, segments, smoothing, json };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(model)?.FullName ?? BundledModels.Champion;
            using var harModel = HarModel.Load(path, new HarModelOptions { EnableMetrics = false });
            var streams = ReadStreams(parse.GetValue(input)!.FullName, harModel.Card);
            var windower = new StreamWindower(harModel.Card, new StreamWindowerOptions { MaxStreams = Math.Max(1, streams.Count) });
            var smoother = new ActivitySmoother(harModel.Card, parse.GetValue(smoothing));
            var asJson = parse.GetValue(json);
            var wantSegments = parse.GetValue(segments);
            var output = new List<object>();
            foreach (var (id, frames) in streams)
            {
                var windows = windower.Append(id, frames);
                var predictions = harModel.Predict(windows);
                var starts = new long[windows.Count];
                for (var i = 0; i < starts.Length; i++)
                {
                    starts[i] = windows.GetStartFrame(i);
                }

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
                Console.Out.WriteLine(JsonSerializer.Serialize(new { model = harModel.Card.ToString(), kind = wantSegments ? "segments" : "windows", items = output }, CliJson.Indented));
            }

            return 0;
        });
        return command;
    }

    public static Command Eval()
    {
        var data = new Option<DirectoryInfo?>("--data") { Description = "UCI HAPT folder (default: ../shared/data/uci-hapt found upwards, or $HAR_SHARED)." };
        var split = new Option<string>("--split") { Description = "Subjects to score: test or train.", DefaultValueFactory = _ => "test" };
        var model = new Option<FileInfo?>("--model") { Description = "The .onnx model (default: the bundled champion)." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("eval", "Score a model on the UCI HAPT layout with the training protocol (accuracy, macro-F1, confusion matrix).") { data, split, model, json };
        command.SetAction(parse =>
        {
            var folder = parse.GetValue(data)?.FullName ?? SharedData.FindHapt()
                ?? throw new DirectoryNotFoundException("No UCI HAPT folder given and none found (../shared/data/uci-hapt or $HAR_SHARED); pass --data <folder>.");
            var splitName = parse.GetValue(split)!;
            var path = parse.GetValue(model)?.FullName ?? BundledModels.Champion;
            using var harModel = HarModel.Load(path, new HarModelOptions { EnableMetrics = false, MaxBatchSize = 64 });
            var names = SensorDataset.LoadLabelNames(folder);
            var map = LabelMap(names, harModel.Card);
            var sessions = SensorDataset.Load(folder, splitName);
            var report = ModelEvaluator.Evaluate(harModel, sessions.Select(s => ToRecording(s, map)));
            var card = harModel.Card.Metrics;

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
                    split = splitName,
                    sessions = sessions.Count,
                    n_windows = report.Windows,
                    excluded_unlabeled_windows = report.ExcludedWindows,
                    accuracy = report.Accuracy,
                    macro_f1 = report.MacroF1,
                    macro_f1_classes = report.MacroF1Classes,
                    card = new { accuracy = card.Accuracy, macro_f1 = card.MacroF1, n_windows = card.Windows },
                    accuracy_difference_points = (report.Accuracy - card.Accuracy) * 100,
                    per_class = report.PerClass.Select(c => new { name = c.Label, precision = c.Precision, recall = c.Recall, f1 = c.F1, support = c.Support, predicted = c.Predicted, included_in_macro = c.IncludedInMacro }),
                    labels = report.Labels,
                    confusion_matrix = matrix,
                }, CliJson.Indented));
                return 0;
            }

            Console.Out.WriteLine(string.Create(Inv, $"{report.Model} on the {splitName} subjects: {report.Windows} windows ({report.ExcludedWindows} unlabeled-majority windows excluded) from {sessions.Count} sessions"));
            Console.Out.WriteLine(string.Create(Inv, $"accuracy  {report.Accuracy:0.000000}   (card: {card.Accuracy:0.000000}, difference {(report.Accuracy - card.Accuracy) * 100:+0.000;-0.000} points)"));
            Console.Out.WriteLine(string.Create(Inv, $"macro-F1  {report.MacroF1:0.000000}   (card: {card.MacroF1:0.000000}; over {report.MacroF1Classes} classes present in labels or predictions)"));
            var table = new Table().Border(TableBorder.Rounded);
            table.AddColumn("class");
            table.AddColumn(new TableColumn("precision").RightAligned());
            table.AddColumn(new TableColumn("recall").RightAligned());
            table.AddColumn(new TableColumn("f1").RightAligned());
            table.AddColumn(new TableColumn("support").RightAligned());
            foreach (var c in report.PerClass)
            {
                table.AddRow(Markup.Escape(c.Label), c.Precision.ToString("0.000", Inv), c.Recall.ToString("0.000", Inv), c.F1.ToString("0.000", Inv), c.Support.ToString(Inv));
            }

            AnsiConsole.Write(table);
            Console.Out.WriteLine("confusion matrix (rows = true, columns = predicted, order as above):");
            for (var i = 0; i < report.Labels.Count; i++)
            {
                var row = string.Join(' ', Enumerable.Range(0, report.Labels.Count).Select(j => report.GetConfusion(i, j).ToString(Inv).PadLeft(4)));
                Console.Out.WriteLine($"{report.Labels[i],-20} {row}");
            }

            return 0;
        });
        return command;
    }

    /// <summary>Dataset label id → card class index by name; the dataset's unlabeled id (0) → -1.</summary>
    internal static int[] LabelMap(string[] datasetNames, ModelCard card)
    {
        var map = new int[datasetNames.Length];
        for (var id = 0; id < datasetNames.Length; id++)
        {
            var name = datasetNames[id];
            var index = name is null ? -1 : card.Labels.ToList().IndexOf(name);
            if (index < 0 && id != 0 && name is not null)
            {
                throw new InvalidDataException($"Dataset label {id} '{name}' is not among the model's labels ({string.Join(", ", card.Labels)}); expected the model to be trained on this label set.");
            }

            map[id] = id == 0 ? -1 : index;
        }

        return map;
    }

    private static LabeledRecording ToRecording(SensorSession session, int[] map)
    {
        var labels = new int[session.Length];
        for (var i = 0; i < labels.Length; i++)
        {
            labels[i] = map[session.Labels[i]];
        }

        return new LabeledRecording(session.Samples, labels);
    }

    /// <summary>Reads a CSV of frames: columns found by name (the card's channels), one stream per session column value if present.</summary>
    private static List<(string Id, float[] Frames)> ReadStreams(string path, ModelCard card)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Input '{path}' does not exist.", path);
        }

        using var file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new StreamReader(stream);
        var header = (reader.ReadLine() ?? string.Empty).Split(',').Select(h => h.Trim()).ToArray();
        var columns = card.Channels.Select(c => Array.IndexOf(header, c)).ToArray();
        if (columns.Any(c => c < 0))
        {
            throw new InvalidDataException($"'{path}' has the header '{string.Join(',', header)}'; expected columns {string.Join(',', card.Channels)} (and optionally subject,session,t_index,label as in the shared data layout).");
        }

        var sessionColumn = Array.IndexOf(header, "session");
        var streams = new List<(string, List<float>)>();
        string? current = null;
        List<float>? frames = null;
        var lineNo = 1;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNo++;
            if (line.Length == 0)
            {
                continue;
            }

            var parts = line.Split(',');
            if (parts.Length != header.Length)
            {
                throw new InvalidDataException($"'{path}' line {lineNo} has {parts.Length} fields; expected {header.Length} as in the header.");
            }

            var id = sessionColumn >= 0 ? $"session-{parts[sessionColumn]}" : Path.GetFileNameWithoutExtension(path);
            if (id != current)
            {
                current = id;
                frames = [];
                streams.Add((id, frames));
            }

            foreach (var c in columns)
            {
                if (!float.TryParse(parts[c], NumberStyles.Float, Inv, out var v))
                {
                    throw new InvalidDataException($"'{path}' line {lineNo} column '{header[c]}' is '{parts[c]}'; expected a number.");
                }

                frames!.Add(v);
            }
        }

        return streams.Select(s => (s.Item1, s.Item2.ToArray())).ToList();
    }
}
