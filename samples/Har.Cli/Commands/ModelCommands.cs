using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Har.Inference;
using Spectre.Console;

namespace Har.Cli.Commands;

/// <summary><c>har model …</c>: inspect model files.</summary>
internal static class ModelCommands
{
    public static Command Create()
    {
        var file = new Argument<FileInfo?>("model")
        {
            Description = "The .onnx file to inspect (default: the bundled champion model).",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var json = new Option<bool>("--json") { Description = "Print the card as JSON." };

        var info = new Command("info", "Print a model's card (the metadata it carries) after validating it against the graph and loading it (probe windows check that its output is what the card says).")
        {
            file,
            json,
        };
        info.SetAction(parse =>
        {
            var path = parse.GetValue(file)?.FullName ?? BundledModels.Champion;

            // Loaded, not only read: the load also runs probe windows through the graph and checks its output is
            // what the card's har.output says (logits under a card saying probabilities are refused here, not served).
            ModelCard card;
            using (var model = HarModel.Load(path, new HarModelOptions { EnableMetrics = false, Workers = 1, MaxBatchSize = 8 }))
            {
                card = model.Card;
            }

            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(ToJson(path, card));
            }
            else
            {
                Render(path, card);
            }

            return 0;
        });

        return new Command("model", "Inspect model files and their cards.") { info };
    }

    internal static string ToJson(string path, ModelCard card)
    {
        var metadata = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in card.Metadata)
        {
            metadata[k] = v;
        }

        var doc = new Dictionary<string, object>
        {
            ["file"] = Path.GetFileName(path),
            ["name"] = card.ModelName,
            ["version"] = card.ModelVersion,
            ["labels"] = card.Labels,
            ["window_length"] = card.WindowLength,
            ["context_frames"] = card.ContextFrames,
            ["batch_axis"] = card.FixedBatchSize > 0 ? card.FixedBatchSize : "dynamic",
            ["stride"] = card.Stride,
            ["sample_rate_hz"] = card.SampleRateHz,
            ["channels"] = card.Channels,
            ["normalization"] = new Dictionary<string, float[]> { ["mean"] = card.NormalizationMean.ToArray(), ["std"] = card.NormalizationStd.ToArray() },
            ["output"] = card.Output == ModelOutputKind.Probabilities ? "probabilities" : "logits",
            ["parameters"] = card.Parameters,
            ["metrics"] = new Dictionary<string, object> { ["accuracy"] = card.Metrics.Accuracy, ["macro_f1"] = card.Metrics.MacroF1, ["n_windows"] = card.Metrics.Windows },
            ["trained_at"] = card.TrainedAt,
            ["metadata"] = metadata,
        };
        return JsonSerializer.Serialize(doc, CliJson.Indented);
    }

    private static void Render(string path, ModelCard card)
    {
        var table = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(card.ToString())}[/]");
        table.AddColumn("field");
        table.AddColumn("value");
        void Row(string k, string v) => table.AddRow(Markup.Escape(k), Markup.Escape(v));
        var inv = CultureInfo.InvariantCulture;
        Row("file", Path.GetFileName(path));
        Row("name", card.ModelName);
        Row("version", card.ModelVersion);
        Row("parameters", card.Parameters.ToString("N0", inv));
        Row("output", card.Output.ToString().ToLowerInvariant());
        Row("window", string.Create(inv, $"{card.WindowLength} samples ({card.WindowLength / card.SampleRateHz:0.##} s), stride {card.Stride}, {card.SampleRateHz} Hz"));
        if (card.ContextFrames > 0)
        {
            Row("context", string.Create(inv, $"the {card.ContextFrames} samples ({card.ContextFrames / card.SampleRateHz:0.##} s) before each window, read too: input {card.InputFrames} samples"));
        }

        Row("batch axis", card.FixedBatchSize > 0
            ? string.Create(inv, $"fixed at {card.FixedBatchSize}: every run holds {card.FixedBatchSize} window(s), padded when fewer wait (export with dynamic_axes to batch by traffic)")
            : "dynamic");
        Row("channels", string.Join(' ', card.Channels));
        Row("mean", string.Join(' ', card.NormalizationMean.ToArray().Select(v => v.ToString("0.0000", inv))));
        Row("std", string.Join(' ', card.NormalizationStd.ToArray().Select(v => v.ToString("0.0000", inv))));
        Row("labels", string.Join(", ", card.Labels));
        Row("test accuracy", card.Metrics.Accuracy.ToString("0.0000", inv));
        Row("test macro-F1", card.Metrics.MacroF1.ToString("0.0000", inv));
        Row("test windows", card.Metrics.Windows.ToString(inv));
        Row("trained at", card.TrainedAt.ToString("u", inv));
        Row("training data", card.TrainingData);
        Row("training command", card.TrainingCommand);
        AnsiConsole.Write(table);
    }
}
