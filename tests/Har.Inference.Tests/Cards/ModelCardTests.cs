using System.Text.Json;
using Har.Testing;
using Microsoft.ML.OnnxRuntime;

namespace Har.Inference.Tests.Cards;

public sealed class ModelCardTests
{
    public static TheoryData<string> CommittedModels => new() { "har-cnn-bilstm-1.0.0.onnx", "har-cnn-bilstm-1.1.0.onnx", "har-cnn-bilstm-1.2.0.onnx" };

    [Theory]
    [MemberData(nameof(CommittedModels))]
    public void Load_CommittedModel_CarriesEveryKeyAndParses(string file)
    {
        var path = RequireModel(file);

        var card = ModelCard.Load(path);

        foreach (var key in ModelCardKeys.All)
        {
            Assert.True(card.Metadata.ContainsKey(key), $"{file} lacks {key}");
        }

        Assert.Equal(200, card.WindowLength);
        Assert.Equal(100, card.Stride);
        Assert.Equal(50.0, card.SampleRateHz);
        Assert.Equal(["ax", "ay", "az", "gx", "gy", "gz"], card.Channels);
        Assert.Equal(12, card.ClassCount);
        Assert.Equal("WALKING", card.Labels[0]);
        Assert.Equal("LIE_TO_STAND", card.Labels[11]);
        Assert.All(card.NormalizationStd.ToArray(), s => Assert.True(s > 0));
        Assert.InRange(card.Metrics.Accuracy, 0.5, 1.0);
        Assert.True(card.Metrics.Windows > 1000, "the test subjects give thousands of windows");

        using var trainingData = JsonDocument.Parse(card.TrainingData);
        Assert.Equal("uci-hapt", trainingData.RootElement.GetProperty("dataset").GetString());
    }

    [Fact]
    public void Load_CommittedModels_AreTwoDifferentVersions()
    {
        var champion = ModelCard.Load(RequireModel(Path.GetFileName(TestPaths.ChampionModel)));
        var candidate = ModelCard.Load(RequireModel(Path.GetFileName(TestPaths.CandidateModel)));

        Assert.Equal("1.0.0", champion.ModelVersion);
        Assert.Equal("1.2.0", candidate.ModelVersion);
        Assert.Equal(ModelOutputKind.Probabilities, champion.Output);
        Assert.NotEqual(champion.Parameters, candidate.Parameters);

        // The candidate reads the 4 s before each window as well; the champion reads single windows.
        Assert.Equal(0, champion.ContextFrames);
        Assert.Equal(200, candidate.ContextFrames);

        // More accurate on the test subjects by both figures its card reports.
        Assert.True(candidate.Metrics.Accuracy > champion.Metrics.Accuracy, $"{candidate.Metrics.Accuracy} vs {champion.Metrics.Accuracy}");
        Assert.True(candidate.Metrics.MacroF1 > champion.Metrics.MacroF1, $"{candidate.Metrics.MacroF1} vs {champion.Metrics.MacroF1}");
    }

    [Theory]
    [MemberData(nameof(CommittedModels))]
    public void Load_CommittedModel_MetricsEqualTheTrainingReport(string file)
    {
        // The training script writes its test-set report beside the model; the card must say the same.
        var modelPath = RequireModel(file);
        var report = Path.Combine(TestPaths.RepoRoot, "models", Path.ChangeExtension(file, ".metrics.json"));
        using var doc = JsonDocument.Parse(File.ReadAllText(report));

        var card = ModelCard.Load(modelPath);

        var test = doc.RootElement.GetProperty("test");
        Assert.Equal(test.GetProperty("accuracy").GetDouble(), card.Metrics.Accuracy, 12);
        Assert.Equal(test.GetProperty("macro_f1").GetDouble(), card.Metrics.MacroF1, 12);
        Assert.Equal(test.GetProperty("n_windows").GetInt32(), card.Metrics.Windows);

        // The training log printed the same figures (the card is not a second, unlogged source).
        var log = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "models", Path.ChangeExtension(file, ".train.log")));
        Assert.Contains(test.GetProperty("accuracy").GetDouble().ToString("0.000000", System.Globalization.CultureInfo.InvariantCulture), log, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(CommittedModels))]
    public void CommittedModel_RunsInOnnxRuntime_WithABatchOfThree(string file)
    {
        var card = ModelCard.Load(RequireModel(file));
        using var session = new InferenceSession(Path.Combine(TestPaths.Models, file));
        var frames = card.ContextFrames + card.WindowLength;
        var input = new float[3 * frames * card.ChannelCount];
        for (var i = 0; i < input.Length; i++)
        {
            input[i] = MathF.Sin(i * 0.01f);
        }

        using var value = OrtValue.CreateTensorValueFromMemory(input, [3, frames, card.ChannelCount]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, [session.InputNames[0]], [value], [session.OutputNames[0]]);

        var shape = outputs[0].GetTensorTypeAndShape().Shape;
        Assert.Equal([3L, card.ClassCount], shape);
        var scores = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        Assert.All(scores, s => Assert.True(float.IsFinite(s)));
        if (card.Output == ModelOutputKind.Probabilities)
        {
            for (var row = 0; row < 3; row++)
            {
                Assert.Equal(1.0, scores.AsSpan(row * card.ClassCount, card.ClassCount).ToArray().Sum(), 4);
            }
        }
    }

    [Fact]
    public void Load_MissingFile_ThrowsFileNotFound()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => ModelCard.Load(Path.Combine(Path.GetTempPath(), "no-such-model.onnx")));
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CorruptFile_ThrowsModelCardException()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, [0x08, 0x07, 0x12, 0xff, 0x00, 0x42, 0x13]);
            var ex = Assert.Throws<ModelCardException>(() => ModelCard.Load(path));
            Assert.Contains("not a loadable ONNX model", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void FromMetadata_ValidCard_Parses()
    {
        var card = ModelCard.FromMetadata(ValidMetadata());

        Assert.Equal("test-model@2.3.4", card.ToString());
        Assert.Equal(ModelOutputKind.Logits, card.Output);
        Assert.Equal(2.0f, card.NormalizationStd[1]);
    }

    [Theory]
    [MemberData(nameof(KeyNames))]
    public void FromMetadata_MissingKey_NamesTheKey(string key)
    {
        var metadata = ValidMetadata();
        metadata.Remove(key);

        var ex = Assert.Throws<ModelCardException>(() => ModelCard.FromMetadata(metadata));

        Assert.Equal(key, ex.Key);
        Assert.Contains($"'{key}' is missing", ex.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string> KeyNames => [.. ModelCardKeys.All];

    [Theory]
    [InlineData(ModelCardKeys.NormalizationStd, "[1,2,0,1,1,1]", "expected a finite number > 0")]
    [InlineData(ModelCardKeys.NormalizationStd, "[1,2,-1,1,1,1]", "expected a finite number > 0")]
    [InlineData(ModelCardKeys.NormalizationStd, "[1,2,1,1,1]", "has 5 values; expected 6")]
    [InlineData(ModelCardKeys.NormalizationMean, "[0,0,0,0,0,\"x\"]", "expected a number")]
    [InlineData(ModelCardKeys.NormalizationMean, "[0,0,0", "not valid JSON")]
    [InlineData(ModelCardKeys.ModelVersion, "v1", "expected a semantic version")]
    [InlineData(ModelCardKeys.WindowLength, "-200", "expected a positive integer")]
    [InlineData(ModelCardKeys.Stride, "0", "expected a positive integer")]
    [InlineData(ModelCardKeys.Output, "softmax", "expected 'probabilities' or 'logits'")]
    [InlineData(ModelCardKeys.Labels, "[\"only-one\"]", "expected at least 2")]
    [InlineData(ModelCardKeys.Labels, "{\"a\":1}", "expected a JSON Array")]
    [InlineData(ModelCardKeys.Metrics, "{\"accuracy\":1.5,\"macro_f1\":0.9,\"n_windows\":10}", "expected fractions in [0, 1]")]
    [InlineData(ModelCardKeys.Metrics, "{\"accuracy\":0.9}", "lacks a numeric 'macro_f1'")]
    [InlineData(ModelCardKeys.SampleRateHz, "0", "expected a positive, finite rate")]
    [InlineData(ModelCardKeys.TrainedAt, "yesterday", "expected an ISO-8601 timestamp")]
    [InlineData(ModelCardKeys.Parameters, "many", "expected a positive integer parameter count")]
    [InlineData(ModelCardKeys.Labels, "[\"WALKING\",\"SITTING\",\"walking\"]", "names 'walking' twice (items 0 and 2, compared ignoring case); expected each name once")]
    [InlineData(ModelCardKeys.Labels, "[\"WALKING\",\"  \"]", "item 1 is a blank string; expected a non-empty string")]
    [InlineData(ModelCardKeys.Channels, "[\"ax\",\"ax\",\"ax\",\"ax\",\"ax\",\"ax\"]", "names 'ax' twice (items 0 and 1")]
    public void FromMetadata_MalformedValue_SaysWhatWasExpected(string key, string value, string expected)
    {
        var metadata = ValidMetadata();
        metadata[key] = value;

        var ex = Assert.Throws<ModelCardException>(() => ModelCard.FromMetadata(metadata));

        Assert.Equal(key, ex.Key);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromMetadata_NoContextKey_ReadsNoContext()
    {
        var card = ModelCard.FromMetadata(ValidMetadata());

        Assert.Equal(0, card.ContextFrames);
        Assert.Equal(card.WindowLength, card.InputFrames);
    }

    [Fact]
    public void FromMetadata_ContextKey_AddsItsFramesBeforeTheWindow()
    {
        var metadata = ValidMetadata();
        metadata[ModelCardKeys.ContextFrames] = "150";

        var card = ModelCard.FromMetadata(metadata);

        Assert.Equal(150, card.ContextFrames);
        Assert.Equal(200, card.WindowLength);
        Assert.Equal(350, card.InputFrames);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("many")]
    [InlineData("")]
    [InlineData("1048577")]
    public void FromMetadata_MalformedContext_SaysWhatWasExpected(string value)
    {
        var metadata = ValidMetadata();
        metadata[ModelCardKeys.ContextFrames] = value;

        var ex = Assert.Throws<ModelCardException>(() => ModelCard.FromMetadata(metadata));

        Assert.Equal(ModelCardKeys.ContextFrames, ex.Key);
        Assert.Contains("expected a whole number of frames from 0 to 1048576", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromMetadata_NaNStd_IsRefused()
    {
        var metadata = ValidMetadata();
        metadata[ModelCardKeys.NormalizationStd] = "[1,1,1,1,1,1e999]";

        var ex = Assert.Throws<ModelCardException>(() => ModelCard.FromMetadata(metadata));

        Assert.Contains("channel 'gz'", ex.Message, StringComparison.Ordinal);
    }

    internal static Dictionary<string, string> ValidMetadata() => new()
    {
        [ModelCardKeys.ModelName] = "test-model",
        [ModelCardKeys.ModelVersion] = "2.3.4",
        [ModelCardKeys.Labels] = "[\"A\",\"B\",\"C\"]",
        [ModelCardKeys.WindowLength] = "200",
        [ModelCardKeys.Stride] = "100",
        [ModelCardKeys.SampleRateHz] = "50",
        [ModelCardKeys.Channels] = "[\"ax\",\"ay\",\"az\",\"gx\",\"gy\",\"gz\"]",
        [ModelCardKeys.NormalizationMean] = "[0,0,0,0,0,0]",
        [ModelCardKeys.NormalizationStd] = "[1,2,1,1,1,1]",
        [ModelCardKeys.Output] = "logits",
        [ModelCardKeys.Parameters] = "1234",
        [ModelCardKeys.TrainingData] = "{\"dataset\":\"synthetic\"}",
        [ModelCardKeys.Metrics] = "{\"accuracy\":0.9,\"macro_f1\":0.8,\"n_windows\":100}",
        [ModelCardKeys.TrainedAt] = "2026-01-15T10:30:00Z",
        [ModelCardKeys.TrainingCommand] = "train.py",
    };

    /// <summary>The committed model's path, or skips the test while the model is not yet in models/ (it is trained separately).</summary>
    private static string RequireModel(string file)
    {
        var path = Path.Combine(TestPaths.Models, file);
        if (!File.Exists(path))
        {
            Assert.Skip($"Skipped: models/{file} is not in this build yet (the sample models are trained and committed separately).");
        }

        return path;
    }
}
