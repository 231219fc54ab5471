using Har.Deployment.Tests.Support;
using Har.Drift;
using Har.Inference;
using Prometheus;

namespace Har.Deployment.Tests.Serving;

/// <summary>The serving path on the real tiny fixture models: windowing, routing, batching, drift feed.</summary>
public sealed class StreamPredictionPipelineTests : IDisposable
{
    private readonly TestRegistry _env = new(registerCandidate: false);
    private readonly ModelCard _card = ModelCard.Load(TestRegistry.ChampionFile);

    public void Dispose() => _env.Dispose();

    [Fact]
    public async Task PredictAsync_Windows_AgreeWithTheModelAndAreObservedForTheServedVersion()
    {
        await using var controller = await _env.OpenAsync();
        var pipeline = new StreamPredictionPipeline(controller, new StreamWindower(_card));
        using var model = HarModel.Load(TestRegistry.ChampionFile, new HarModelOptions { EnableMetrics = false });
        var windows = Signal(5 * pipeline.WindowValues / _card.ChannelCount, seed: 3);
        var predictions = new Prediction[7]; // larger than needed: only the first 5 are written

        await pipeline.PredictAsync(null, windows, predictions);

        for (var i = 0; i < 5; i++)
        {
            var expected = model.Predict(windows.AsSpan(i * pipeline.WindowValues, pipeline.WindowValues));
            Assert.Equal(expected.ClassIndex, predictions[i].ClassIndex);
            Assert.Equal(expected.Confidence, predictions[i].Confidence, 5);
            Assert.Equal(TestRegistry.Champion, predictions[i].ModelVersion);
        }

        Assert.Null(predictions[5].Label);
        var snapshot = controller.Observations.TakeSnapshot(TestRegistry.Champion, TestRegistry.Champion, _env.Time.GetUtcNow(), _card.Labels);
        Assert.Equal(5, snapshot.Candidate.Requests);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(-1)]
    public async Task PredictAsync_NotAWholePositiveNumberOfWindows_Throws(int extra)
    {
        await using var controller = await _env.OpenAsync();
        var pipeline = new StreamPredictionPipeline(controller, new StreamWindower(_card));
        var values = extra == 0 ? [] : new float[pipeline.WindowValues + extra];

        var error = await Assert.ThrowsAsync<ArgumentException>(async () => await pipeline.PredictAsync("s", values, new Prediction[2]));
        Assert.Contains($"positive multiple of {pipeline.WindowValues}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PredictAsync_OneWindowWithNaN_ThrowsOnlyAfterTheOthersFinished()
    {
        await using var controller = await _env.OpenAsync();
        var pipeline = new StreamPredictionPipeline(controller, new StreamWindower(_card));
        var windows = Signal(3 * pipeline.WindowValues / _card.ChannelCount, seed: 5);
        windows[pipeline.WindowValues + 17] = float.NaN;
        var predictions = new Prediction[3];

        await Assert.ThrowsAsync<ArgumentException>(async () => await pipeline.PredictAsync("s", windows, predictions));

        // The windows before and after the bad one were scored (awaited) before the call returned.
        Assert.NotNull(predictions[0].Label);
        Assert.NotNull(predictions[2].Label);
        Assert.Null(predictions[1].Label);
    }

    [Fact]
    public async Task AppendAsync_ChunkedStream_ScoresEveryWindowOnceAtItsStartFrame()
    {
        await using var controller = await _env.OpenAsync();
        var pipeline = new StreamPredictionPipeline(controller, new StreamWindower(_card));
        using var model = HarModel.Load(TestRegistry.ChampionFile, new HarModelOptions { EnableMetrics = false });
        var frames = (3 * _card.WindowLength) + 37;
        var stream = Signal(frames, seed: 11);
        var got = new List<StreamPrediction>();

        // Odd chunk sizes: windows straddle chunks, some chunks complete none, one completes several.
        var chunks = new[] { 1, 150, 49, 333, 7 };
        var offset = 0;
        for (var c = 0; offset < frames; c++)
        {
            var n = Math.Min(chunks[c % chunks.Length], frames - offset);
            got.AddRange(await pipeline.AppendAsync("device-7", stream.AsMemory(offset * _card.ChannelCount, n * _card.ChannelCount)));
            offset += n;
        }

        var expectedCount = ((frames - _card.WindowLength) / _card.Stride) + 1;
        Assert.Equal(expectedCount, got.Count);
        for (var i = 0; i < got.Count; i++)
        {
            Assert.Equal((long)i * _card.Stride, got[i].StartFrame);
            var window = stream.AsSpan((int)got[i].StartFrame * _card.ChannelCount, pipeline.WindowValues);
            var expected = model.Predict(window);
            Assert.Equal(expected.ClassIndex, got[i].Prediction.ClassIndex);
            Assert.Equal(expected.Confidence, got[i].Prediction.Confidence, 5);
        }
    }

    [Fact]
    public async Task AppendAsync_FeedsEveryFrameToTheDriftMonitor()
    {
        await using var controller = await _env.OpenAsync();
        var profile = new ReferenceProfileBuilder([.. _card.Channels]).AddRecording("reference", Signal(6000, seed: 1)).Build("test");
        using var drift = new DriftMonitor(profile, new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = Metrics.NewCustomRegistry() }, _env.Time);
        var pipeline = new StreamPredictionPipeline(controller, new StreamWindower(_card), drift);

        var first = await pipeline.AppendAsync("s", Signal(120, seed: 2));
        var second = await pipeline.AppendAsync("s", Signal(90, seed: 4));

        Assert.Empty(first);
        Assert.Single(second);
        Assert.Equal(210, drift.BufferedFrames);
    }

    [Fact]
    public async Task AppendAsync_EmptyStreamIdOrPartialFrame_Throws()
    {
        await using var controller = await _env.OpenAsync();
        var pipeline = new StreamPredictionPipeline(controller, new StreamWindower(_card));

        await Assert.ThrowsAsync<ArgumentException>(async () => await pipeline.AppendAsync("", new float[6]));
        await Assert.ThrowsAsync<ArgumentException>(async () => await pipeline.AppendAsync("s", new float[7]));
    }

    /// <summary>Plausible IMU-like frames: gravity on ax plus channel-specific oscillations.</summary>
    private float[] Signal(int frames, int seed)
    {
        var random = new Random(seed);
        var channels = _card.ChannelCount;
        var values = new float[frames * channels];
        for (var t = 0; t < frames; t++)
        {
            for (var c = 0; c < channels; c++)
            {
                values[(t * channels) + c] = (c == 0 ? 1f : 0f) + (0.3f * MathF.Sin((t * 0.07f * (c + 1)) + seed)) + (0.05f * (float)(random.NextDouble() - 0.5));
            }
        }

        return values;
    }
}
