using System.Text.Json;
using Har.Inference;

namespace Har.Cli.Tests.Commands;

[Collection(ConsoleTests.Name)]
public sealed class ModelCommandsTests
{
    public static TheoryData<string> Models()
    {
        var data = new TheoryData<string> { DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx"), DemoFixtures.FixtureModel("tiny-logits-1.1.0.onnx") };
        foreach (var bundled in new[] { TestPaths.ChampionModel, TestPaths.CandidateModel })
        {
            if (File.Exists(bundled))
            {
                data.Add(bundled);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Models))]
    public async Task Info_Json_PrintsTheCardAsLoadedByHarInference(string model)
    {
        var (code, stdout, _) = await ConsoleCapture.RunAsync("model", "info", model, "--json");

        Assert.Equal(0, code);
        var card = ModelCard.Load(model);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal(Path.GetFileName(model), root.GetProperty("file").GetString());
        Assert.Equal(card.ModelName, root.GetProperty("name").GetString());
        Assert.Equal(card.ModelVersion, root.GetProperty("version").GetString());
        Assert.Equal(card.Labels, root.GetProperty("labels").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(card.WindowLength, root.GetProperty("window_length").GetInt32());
        Assert.Equal(card.Stride, root.GetProperty("stride").GetInt32());
        Assert.Equal(card.Channels, root.GetProperty("channels").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(card.NormalizationStd.ToArray(), root.GetProperty("normalization").GetProperty("std").EnumerateArray().Select(e => e.GetSingle()).ToArray());
        Assert.Equal(card.Parameters, root.GetProperty("parameters").GetInt64());
        Assert.Equal(card.Metrics.Accuracy, root.GetProperty("metrics").GetProperty("accuracy").GetDouble());
    }

    [Fact]
    public async Task Info_Fixture_MatchesTheFixtureScriptsCard()
    {
        // make_fixtures.py: tiny-probs 1.0.0, softmax output, 200-sample windows at stride 100, 12 HAPT labels.
        var (code, stdout, _) = await ConsoleCapture.RunAsync("model", "info", DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx"), "--json");

        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal("tiny-probs", root.GetProperty("name").GetString());
        Assert.Equal("1.0.0", root.GetProperty("version").GetString());
        Assert.Equal("probabilities", root.GetProperty("output").GetString());
        Assert.Equal(200, root.GetProperty("window_length").GetInt32());
        Assert.Equal(100, root.GetProperty("stride").GetInt32());
        Assert.Equal(12, root.GetProperty("labels").GetArrayLength());
        Assert.Equal("WALKING", root.GetProperty("labels")[0].GetString());
    }

    [Fact]
    public async Task Info_MissingFile_ExitCode2AndOneLineError()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-model-{Guid.NewGuid():N}.onnx");

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("model", "info", missing);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith("har: ", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }
}
