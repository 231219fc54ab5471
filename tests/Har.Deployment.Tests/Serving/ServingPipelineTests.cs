using Har.Deployment.Tests.Support;
using Har.Drift;
using Har.Inference;
using Prometheus;

namespace Har.Deployment.Tests.Serving;

/// <summary>The serving path on the real tiny fixture models: windowing, routing, batching, drift feed.</summary>
public sealed class ServingPipelineTests : IDisposable
{
    private readonly TestRegistry _env = new(registerCandidate: false);
    private readonly ModelCard _card = ModelCard.Load(TestRegistry.ChampionFile);

    public void Dispose() => _env.Dispose();

    [Fact]
    public async Task PredictAsync_Windows_AgreeWithTheModelAndAreObservedForTheServedVersion()
    {
        var pipeline = _env.Pipeline;
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
        var snapshot = pipeline.Observations.TakeSnapshot(TestRegistry.Champion, TestRegistry.Champion, _env.Time.GetUtcNow(), _card.Labels);
        Assert.Equal(5, snapshot.Candidate.Requests);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(-1)]
    public async Task PredictAsync_NotAWholePositiveNumberOfWindows_Throws(int extra)
    {
        var pipeline = _env.Pipeline;
        var values = extra == 0 ? [] : new float[pipeline.WindowValues + extra];

        var error = await Assert.ThrowsAsync<ArgumentException>(async () => await pipeline.PredictAsync("s", values, new Prediction[2]));
        Assert.Contains($"positive multiple of {pipeline.WindowValues}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PredictAsync_OneWindowWithNaN_ThrowsOnlyAfterTheOthersFinished()
    {
        var pipeline = _env.Pipeline;
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
    public async Task PredictAsync_NaNInContextFramesTheServedVersionDoesNotRead_IsRefusedForThatWindowAlone()
    {
        // The pipeline keeps 50 frames before each window; the champion reads none of them. A NaN there was accepted and
        // scored by the champion, while a candidate or mirror reading the context (and the drift monitor) refused it.
        var options = TestRegistry.ServingOptions();
        options.ContextFrames = 50;
        await using var pipeline = ServingPipeline.Open(_env.Registry, options, timeProvider: _env.Time);
        var size = pipeline.Geometry.WindowValues;
        var windows = Signal(3 * size / _card.ChannelCount, seed: 6);
        windows[size + 3] = float.NaN; // window 1, its first context frame
        var predictions = new Prediction[3];

        var error = await Assert.ThrowsAsync<ArgumentException>(async () => await pipeline.PredictAsync("s", windows, predictions));

        Assert.Equal("windows", error.ParamName);
        Assert.Contains("Window 1 holds NaN or infinite values", error.Message, StringComparison.Ordinal);
        Assert.Contains("the 50 frames of context", error.Message, StringComparison.Ordinal);
        Assert.NotNull(predictions[0].Label);
        Assert.Null(predictions[1].Label);
        Assert.NotNull(predictions[2].Label);
    }

    [Fact]
    public async Task PredictAndAppend_AfterDispose_ThrowObjectDisposedNamingThePipeline()
    {
        var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        var size = pipeline.Geometry.WindowValues;
        await pipeline.DisposeAsync();

        // Before: "Model version 1.0.0 is not loaded; loaded: ." (InvalidOperationException), which reads as a registry problem.
        var predict = await Assert.ThrowsAsync<ObjectDisposedException>(async () => await pipeline.PredictAsync("s", new float[size], new Prediction[1]));
        var append = await Assert.ThrowsAsync<ObjectDisposedException>(async () => await pipeline.AppendAsync("s", new float[size]));

        Assert.Equal(typeof(ServingPipeline).FullName, predict.ObjectName);
        Assert.Equal(typeof(ServingPipeline).FullName, append.ObjectName);
    }

    [Fact]
    public async Task AppendAsync_ChunkedStream_ScoresEveryWindowOnceAtItsStartFrame()
    {
        var pipeline = _env.Pipeline;
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
    public async Task AppendAsync_CallerBuffers_ObserversSeeTheRawWindowsInPlaceAndResultsMatchTheModel()
    {
        var observer = new WindowCopyingObserver();
        await using var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), observers: [observer], timeProvider: _env.Time);
        using var model = HarModel.Load(TestRegistry.ChampionFile, new HarModelOptions { EnableMetrics = false });
        var frames = (4 * _card.WindowLength) + 11;
        var stream = Signal(frames, seed: 12);
        var k = _card.ClassCount;
        var predictions = new StreamPrediction[16];
        var probabilities = new float[16 * k];
        var got = new List<(long Start, int Class, float[] Probabilities)>();

        // Short chunks (windows from the stream's buffer) and one longer than a window (windows also in the chunk itself).
        var chunks = new[] { 13, _card.Stride, (2 * _card.WindowLength) + 5, 1 };
        var offset = 0;
        for (var c = 0; offset < frames; c++)
        {
            var n = Math.Min(chunks[c % chunks.Length], frames - offset);
            var count = await pipeline.AppendAsync("device-9", stream.AsMemory(offset * _card.ChannelCount, n * _card.ChannelCount), predictions, probabilities);
            for (var i = 0; i < count; i++)
            {
                got.Add((predictions[i].StartFrame, predictions[i].Prediction.ClassIndex, predictions[i].Prediction.Probabilities.ToArray()));
                Assert.Equal(probabilities.AsMemory(i * k, k), predictions[i].Prediction.Probabilities);
            }

            offset += n;
        }

        Assert.Equal(((frames - _card.WindowLength) / _card.Stride) + 1, got.Count);
        Assert.Equal(got.Count, observer.Windows.Count);
        for (var i = 0; i < got.Count; i++)
        {
            var expectedWindow = stream.AsSpan((int)got[i].Start * _card.ChannelCount, pipeline.WindowValues);
            Assert.Equal(got[i].Start, observer.Windows[i].Start);
            Assert.True(expectedWindow.SequenceEqual(observer.Windows[i].Values), $"window {i} as the observers saw it differs from the frames sent");
            var expected = model.Predict(expectedWindow);
            Assert.Equal(expected.ClassIndex, got[i].Class);
            Assert.Equal(expected.Probabilities.ToArray(), got[i].Probabilities, new FloatTolerance(1e-5f));
        }
    }

    [Fact]
    public async Task AppendAsync_CallerBuffersTooSmall_ThrowsAndTheFramesAreNotAppended()
    {
        var pipeline = _env.Pipeline;
        var frames = Signal(_card.WindowLength + (2 * _card.Stride), seed: 13);

        var error = await Assert.ThrowsAsync<ArgumentException>(async () => await pipeline.AppendAsync("device-3", frames, new StreamPrediction[2], new float[3 * _card.ClassCount]));
        Assert.Contains("complete 3 windows", error.Message, StringComparison.Ordinal);

        // The refused frames were not kept: the same frames again complete the same three windows, from frame 0.
        var predictions = new StreamPrediction[3];
        Assert.Equal(3, await pipeline.AppendAsync("device-3", frames, predictions, new float[3 * _card.ClassCount]));
        Assert.Equal([0L, _card.Stride, 2L * _card.Stride], predictions.Select(p => p.StartFrame));
    }

    [Fact]
    public async Task AppendAsync_OneStreamFromManyCallersAtOnce_EachAppendWaitsItsTurnAndEveryWindowIsScoredOnce()
    {
        var options = TestRegistry.ServingOptions();
        options.Model.MaxBatchWait = TimeSpan.FromMilliseconds(1);
        await using var pipeline = ServingPipeline.Open(_env.Registry, options);
        var chunk = Signal(_card.Stride, seed: 14);
        const int Callers = 24;

        var results = await Task.WhenAll(Enumerable.Range(0, Callers).Select(_ => Task.Run(async () => await pipeline.AppendAsync("shared", chunk))));

        var starts = results.SelectMany(r => r).Select(p => p.StartFrame).Order().ToArray();
        var expected = ((Callers * _card.Stride) - _card.WindowLength) / _card.Stride + 1;
        Assert.Equal(Enumerable.Range(0, expected).Select(i => (long)i * _card.Stride), starts);
    }

    private sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(float obj) => 0;
    }

    private sealed class WindowCopyingObserver : IServingObserver
    {
        public List<(long Start, float[] Values)> Windows { get; } = [];

        public void OnPredictions(in ServedPredictions p)
        {
            for (var i = 0; i < p.Predictions.Length; i++)
            {
                Windows.Add((p.StartFrames[i], p.GetWindow(i).ToArray()));
            }
        }
    }

    [Fact]
    public async Task Drift_StreamAndWholeWindows_PerDeviceMonitorFlagsOnlyTheStuckDevice()
    {
        var profile = new ReferenceProfileBuilder([.. _card.Channels]).AddRecording("reference", Signal(6000, seed: 1)).Build("test");
        using var drift = new DeviceDriftMonitor(profile, new DriftMonitorOptions { WindowLength = 600, MetricsRegistry = Metrics.NewCustomRegistry() }, _env.Time);
        await using var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), drift, timeProvider: _env.Time);

        // Device "healthy" streams a plausible signal; device "stuck" the same with ax frozen; "windows" posts whole windows.
        var healthy = Signal(700, seed: 2);
        var stuck = Signal(700, seed: 2);
        for (var t = 0; t < 700; t++)
        {
            stuck[t * _card.ChannelCount] = 0.97f;
        }

        for (var offset = 0; offset < 700; offset += 100)
        {
            await pipeline.AppendAsync("healthy", healthy.AsMemory(offset * _card.ChannelCount, 100 * _card.ChannelCount));
            await pipeline.AppendAsync("stuck", stuck.AsMemory(offset * _card.ChannelCount, 100 * _card.ChannelCount));
        }

        await pipeline.PredictAsync("windows", Signal(3 * _card.WindowLength, seed: 6), new Prediction[3]);

        Assert.Equal(3, drift.DeviceCount);
        var stuckReport = drift.ScoreNow("stuck")!;
        var healthyReport = drift.ScoreNow("healthy")!;
        Assert.Contains(stuckReport.Findings, f => f.Kind == SensorFindingKind.Flatline && f.Channel == "ax");
        Assert.DoesNotContain(healthyReport.Findings, f => f.Kind == SensorFindingKind.Flatline);
    }

    [Fact]
    public async Task Drift_ProfileOfTheSameChannelsInAnotherOrder_IsFedTheWindowsByChannelName()
    {
        // A profile built gyroscope first (the same recording, columns reordered) against a model served accelerometer
        // first: the monitor must read each window's channels by name. Read by position, every healthy device's gx
        // would be compared with the reference's ax and so on.
        string[] gyroFirst = ["gx", "gy", "gz", "ax", "ay", "az"];
        var map = gyroFirst.Select(c => _card.Channels.ToList().IndexOf(c)).ToArray();
        var profile = new ReferenceProfileBuilder(gyroFirst).AddRecording("reference", Permute(Signal(6000, seed: 1), map)).Build("test");
        using var drift = new DeviceDriftMonitor(profile, new DriftMonitorOptions { WindowLength = 600, MetricsRegistry = Metrics.NewCustomRegistry() }, _env.Time);
        await using var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), drift, timeProvider: _env.Time);

        var healthy = Signal(700, seed: 2);
        var stuck = Signal(700, seed: 2);
        for (var t = 0; t < 700; t++)
        {
            stuck[t * _card.ChannelCount] = 0.97f; // ax, in the served order
        }

        for (var offset = 0; offset < 700; offset += 100)
        {
            await pipeline.AppendAsync("healthy", healthy.AsMemory(offset * _card.ChannelCount, 100 * _card.ChannelCount));
            await pipeline.AppendAsync("stuck", stuck.AsMemory(offset * _card.ChannelCount, 100 * _card.ChannelCount));
        }

        var stuckReport = drift.ScoreNow("stuck")!;
        var healthyReport = drift.ScoreNow("healthy")!;
        Assert.Contains(stuckReport.Findings, f => f.Kind == SensorFindingKind.Flatline && f.Channel == "ax");
        Assert.DoesNotContain(healthyReport.Findings, f => f.Kind == SensorFindingKind.Flatline);
        Assert.Equal(healthyReport.Channels.Select(c => c.Channel), gyroFirst);
        Assert.All(healthyReport.Channels, c => Assert.NotEqual(DriftVerdict.Drifted, c.Verdict));
    }

    [Fact]
    public void Drift_ProfileOfOtherChannels_RefusedAtOpenNamingBoth()
    {
        var profile = new ReferenceProfileBuilder(["ax", "ay", "az"]).AddRecording("reference", Signal(2000, seed: 1).Where((_, i) => i % 6 < 3).ToArray()).Build("test");
        using var drift = new DeviceDriftMonitor(profile, new DriftMonitorOptions { MetricsRegistry = Metrics.NewCustomRegistry() }, _env.Time);

        var error = Assert.Throws<ArgumentException>(() => ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), drift, timeProvider: _env.Time));

        Assert.Equal("drift", error.ParamName);
        Assert.Contains("reads channels ax ay az, but the current version 1.0.0 is served windows of ax ay az gx gy gz", error.Message, StringComparison.Ordinal);
    }

    private static float[] Permute(float[] frames, int[] map)
    {
        var result = new float[frames.Length];
        for (var f = 0; f < frames.Length; f += map.Length)
        {
            for (var c = 0; c < map.Length; c++)
            {
                result[f + c] = frames[f + map[c]];
            }
        }

        return result;
    }

    [Fact]
    public async Task Observers_StreamAndWholeWindows_SeeEverySampleAndPredictionOnce()
    {
        var observer = new RecordingObserver();
        await using var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), observers: [observer], timeProvider: _env.Time);

        var streamed = await pipeline.AppendAsync("device-1", Signal(_card.WindowLength + _card.Stride, seed: 8));
        await pipeline.PredictAsync(null, Signal(3 * _card.WindowLength, seed: 9), new Prediction[3]);

        Assert.Equal(2, streamed.Length);
        Assert.Equal([("device-1", _card.WindowLength + _card.Stride), (null, 3 * _card.WindowLength)], observer.Samples);
        Assert.Equal([("device-1", PredictionRole.Served, 2), (null, PredictionRole.Served, 3)], observer.Predictions.Select(p => (p.StreamId, p.Role, p.Count)));
        Assert.All(observer.Predictions, p => Assert.Equal(TestRegistry.Champion, p.Version));
        Assert.Equal(streamed.Select(p => p.Prediction.ClassIndex), observer.Predictions[0].Classes);
    }

    [Fact]
    public async Task Observers_OneThrows_PredictionStillServedAndOthersStillCalled()
    {
        var after = new RecordingObserver();
        await using var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), observers: [new ThrowingObserver(), after], timeProvider: _env.Time);

        var predictions = new Prediction[1];
        await pipeline.PredictAsync("d", Signal(_card.WindowLength, seed: 1), predictions);

        Assert.Equal(TestRegistry.Champion, predictions[0].ModelVersion);
        Assert.Single(after.Predictions);
    }

    [Fact]
    public void AnalysisObserver_MirroredRunsOfTheChampion_CountAsItsRunsNotItsRequests()
    {
        // What the error-rate gate compares the candidate with when every stream is on it: the champion's mirrored runs,
        // failed ones included; its served requests stay the ones it answered callers.
        var o = new RolloutObservations();
        var observer = new RolloutObservationsObserver(o, new ClassOrder(_ => null));
        var served = new Prediction[2];
        var mirrored = new Prediction[2];
        var geometry = WindowGeometry.From(_card);
        observer.OnPredictions(new ServedPredictions("d", "s", PredictionRole.Mirror, geometry, new float[geometry.WindowValues * 2], default, mirrored, served, TimeSpan.FromMilliseconds(3), TimeSpan.FromMilliseconds(1)));
        observer.OnError("d", "s", PredictionRole.Mirror, 3, TimeSpan.FromMilliseconds(2), new InvalidOperationException("mirror failed"));
        var stable = o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, ["a", "b"]).Stable;
        Assert.Equal((0L, 0L), (stable.Requests, stable.Errors));
        Assert.Equal((5L, 3L), (stable.MirrorRuns, stable.MirrorErrors));
    }

    [Fact]
    public async Task ServiceTime_ClockThatNeverAdvances_IsPositiveWhileLatencyIsZero()
    {
        // The fake clock is never advanced: every latency read from the TimeProvider is zero, the model's run time is not.
        var observer = new TimingObserver();
        await using var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), observers: [observer], timeProvider: _env.Time);

        var streamed = await pipeline.AppendAsync("device-1", Signal(_card.WindowLength + _card.Stride, seed: 8));
        var whole = new Prediction[3];
        await pipeline.PredictAsync(null, Signal(3 * _card.WindowLength, seed: 9), whole);

        Assert.Equal(2, observer.Calls.Count);
        Assert.All(observer.Calls, c => Assert.Equal(TimeSpan.Zero, c.Latency));
        Assert.All(observer.Calls, c => Assert.True(c.ServiceTime > TimeSpan.Zero, $"service time {c.ServiceTime} for {c.Windows} windows"));
        Assert.All(streamed, p => Assert.True(p.Prediction.ServiceTime > TimeSpan.Zero));
        Assert.All(whole, p => Assert.True(p.ServiceTime > TimeSpan.Zero));

        // The call's service time is the sum of its windows' shares.
        Assert.Equal(streamed[0].Prediction.ServiceTime + streamed[1].Prediction.ServiceTime, observer.Calls[0].ServiceTime);
        Assert.Equal(whole[0].ServiceTime + whole[1].ServiceTime + whole[2].ServiceTime, observer.Calls[1].ServiceTime);
    }

    [Fact]
    public async Task ServiceTime_RealClockWithConcurrentStreams_IsPositiveAndAtMostTheLatency()
    {
        // Real clock, many streams at once (so calls queue behind each other's batches); each append completes one window.
        var observer = new TimingObserver();
        var options = TestRegistry.ServingOptions();
        options.Model.MaxBatchWait = TimeSpan.FromMilliseconds(2);
        await using var pipeline = ServingPipeline.Open(_env.Registry, options, observers: [observer]);
        var frames = Signal(_card.WindowLength, seed: 4);

        var calls = Enumerable.Range(0, 16).Select(i => pipeline.AppendAsync($"device-{i}", frames).AsTask()).ToArray();
        await Task.WhenAll(calls);

        Assert.Equal(16, observer.Calls.Count);
        Assert.All(observer.Calls, c =>
        {
            Assert.Equal(1, c.Windows);
            Assert.True(c.ServiceTime > TimeSpan.Zero);
            Assert.True(c.ServiceTime <= c.Latency, $"service time {c.ServiceTime} > latency {c.Latency}");
        });
    }

    private sealed class TimingObserver : IServingObserver
    {
        public List<(int Windows, TimeSpan Latency, TimeSpan ServiceTime)> Calls { get; } = [];

        public void OnPredictions(in ServedPredictions p)
        {
            lock (Calls)
            {
                Calls.Add((p.Predictions.Length, p.Latency, p.ServiceTime));
            }
        }
    }

    private sealed class RecordingObserver : IServingObserver
    {
        public List<(string? StreamId, int Frames)> Samples { get; } = [];

        public List<(string? StreamId, string Version, PredictionRole Role, int Count, int[] Classes)> Predictions { get; } = [];

        public void OnSamples(string? streamId, ReadOnlySpan<float> frames) => Samples.Add((streamId, frames.Length / 6));

        public void OnPredictions(in ServedPredictions p)
        {
            var classes = new int[p.Predictions.Length];
            for (var i = 0; i < classes.Length; i++)
            {
                classes[i] = p.Predictions[i].ClassIndex;
            }

            for (var i = 0; i < p.Predictions.Length; i++)
            {
                Assert.Equal(p.WindowLength * p.Channels, p.GetWindow(i).Length);
            }

            Predictions.Add((p.StreamId, p.Version, p.Role, p.Predictions.Length, classes));
        }
    }

    private sealed class ThrowingObserver : IServingObserver
    {
        public void OnSamples(string? streamId, ReadOnlySpan<float> frames) => throw new InvalidOperationException("observer bug");

        public void OnPredictions(in ServedPredictions predictions) => throw new InvalidOperationException("observer bug");
    }

    [Fact]
    public async Task AppendAsync_EmptyStreamIdOrPartialFrame_Throws()
    {
        var pipeline = _env.Pipeline;

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
