namespace Har.Inference.Tests.Models;

/// <summary>
/// A graph exported without dynamic axes (torch.onnx.export's default) has its batch axis fixed at the dummy input's
/// size. tiny-fixed1 and tiny-fixed4 carry tiny-probs' weights with the axis fixed at 1 and 4: served, they must give
/// tiny-probs' outputs for every window whatever the number of windows a call or a batch holds.
/// </summary>
public sealed class FixedBatchAxisTests
{
    [Theory]
    [InlineData("tiny-fixed1-1.0.0.onnx", 1)]
    [InlineData("tiny-fixed4-1.0.0.onnx", 4)]
    public void Load_FixedBatchAxis_ServesWhatTheDynamicGraphServes(string file, int fixedBatch)
    {
        using var reference = HarModel.Load(Fixture.Probs, Fixture.Options(o => o.MaxBatchSize = 16));
        using var logs = new ListLoggerFactory();
        using var model = HarModel.Load(Fixture.Model(file), Fixture.Options(o => o.MaxBatchSize = 16), logs);
        Assert.Equal(fixedBatch, model.Card.FixedBatchSize);
        Assert.Contains(logs.Messages, m => m.Contains($"has a fixed batch axis of {fixedBatch}", StringComparison.Ordinal));

        foreach (var n in new[] { 1, 3, 4, 9 })
        {
            var windows = Fixture.Frames(200 * n, seed: 11 + n);
            var expected = new Prediction[n];
            var actual = new Prediction[n];
            reference.Predict(windows, new float[n * 12], expected);
            model.Predict(windows, new float[n * 12], actual);
            for (var w = 0; w < n; w++)
            {
                for (var k = 0; k < 12; k++)
                {
                    Assert.Equal(expected[w].Probabilities.Span[k], actual[w].Probabilities.Span[k], 5);
                }
            }
        }
    }

    [Fact]
    public async Task PredictAsync_FixedBatchAxis_ConcurrentCallersEachGetTheirOwnWindow()
    {
        using var reference = HarModel.Load(Fixture.Probs, Fixture.Options());
        await using var model = HarModel.Load(Fixture.Model("tiny-fixed4-1.0.0.onnx"), Fixture.Options(o => o.Workers = 1));
        const int callers = 13;
        var windows = Enumerable.Range(0, callers).Select(i => Fixture.Frames(200, seed: 100 + i)).ToArray();

        var results = await Task.WhenAll(windows.Select(w => model.PredictAsync(w).AsTask()));

        for (var i = 0; i < callers; i++)
        {
            var expected = new Prediction[1];
            reference.Predict(windows[i], new float[12], expected);
            Assert.Equal(expected[0].ClassIndex, results[i].ClassIndex);
            Assert.Equal(expected[0].Confidence, results[i].Confidence, 5);
        }
    }

    [Fact]
    public void Load_DynamicBatchAxis_ReportsNoFixedSize()
    {
        Assert.Equal(0, ModelCard.Load(Fixture.Probs).FixedBatchSize);
        Assert.Equal(4, ModelCard.Load(Fixture.Model("tiny-fixed4-1.0.0.onnx")).FixedBatchSize);
    }
}
