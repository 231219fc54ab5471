using Har.Inference.Data;
using Har.Testing;

namespace Har.Inference.Tests.Models;

/// <summary>The committed models on the real UCI HAPT data (skipped when either is absent).</summary>
public sealed class CommittedModelTests
{
    public static TheoryData<string> CommittedModels => new() { "har-cnn-bilstm-1.0.0.onnx", "har-cnn-bilstm-1.1.0.onnx", "har-cnn-bilstm-1.2.0.onnx" };

    private static string RequireModel(string file)
    {
        var path = Path.Combine(TestPaths.Models, file);
        if (!File.Exists(path))
        {
            Assert.Skip($"Skipped: the committed model models/{file} is not in this build.");
        }

        return path;
    }

    private static readonly Lazy<(List<SensorSession> Sessions, string[] Names)> TestSplit = new(() =>
    {
        var folder = TestPaths.RequireSharedData();
        return (SensorDataset.Load(folder, "test"), SensorDataset.LoadLabelNames(folder));
    });

    private static (List<SensorSession> Sessions, string[] Names) LoadTestSplit()
    {
        TestPaths.RequireSharedData();
        return TestSplit.Value;
    }

    [Theory]
    [MemberData(nameof(CommittedModels))]
    public void Evaluate_TestSubjects_ReproducesTheCardAccuracyWithinPointTwoPoints(string file)
    {
        var path = RequireModel(file);
        var (sessions, names) = LoadTestSplit();
        using var model = HarModel.Load(path, Fixture.Options(o => o.MaxBatchSize = 64));

        var report = ModelEvaluator.Evaluate(model, sessions.Select(s => ToRecording(s, names, model.Card)));

        Assert.Equal(model.Card.Metrics.Windows, report.Windows);
        Assert.InRange(report.Accuracy, model.Card.Metrics.Accuracy - 0.002, model.Card.Metrics.Accuracy + 0.002);
        Assert.InRange(report.MacroF1, model.Card.Metrics.MacroF1 - 0.005, model.Card.Metrics.MacroF1 + 0.005);
    }

    [Theory]
    [MemberData(nameof(CommittedModels))]
    public async Task PredictAsync_RealWalkingWindow_IsConfidentWalkingLike(string file)
    {
        var path = RequireModel(file);
        var (sessions, names) = LoadTestSplit();
        using var model = HarModel.Load(path, Fixture.Options());
        var session = sessions[0];
        var walking = Array.IndexOf(names, "WALKING");

        // The first window whose 200 samples are all WALKING (and, for a model that reads context, has its context in the session).
        var context = model.Card.ContextFrames;
        var start = Enumerable.Range(0, session.Length / 100).Select(i => i * 100)
            .First(s => s >= context && s + 200 <= session.Length && session.Labels.AsSpan(s, 200).IndexOfAnyExcept((byte)walking) < 0);
        var window = session.Samples.AsMemory((start - context) * 6, (context + 200) * 6);

        var prediction = await model.PredictAsync(window);

        Assert.StartsWith("WALKING", prediction.Label, StringComparison.Ordinal);
        Assert.Equal(1.0, prediction.Probabilities.ToArray().Sum(), 4);
        Assert.InRange(prediction.Entropy, 0, Math.Log(12));
    }

    internal static LabeledRecording ToRecording(SensorSession session, string[] datasetNames, ModelCard card)
    {
        var map = datasetNames.Select(n => card.Labels.ToList().IndexOf(n)).ToArray(); // UNLABELED -> -1
        var labels = new int[session.Length];
        for (var i = 0; i < labels.Length; i++)
        {
            labels[i] = map[session.Labels[i]];
        }

        return new LabeledRecording(session.Samples, labels);
    }
}
