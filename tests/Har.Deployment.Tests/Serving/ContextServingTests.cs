using Har.Deployment.Tests.Support;
using Har.Inference;
using Har.Testing;

namespace Har.Deployment.Tests.Serving;

/// <summary>
/// Versions that also read the frames before each window (<see cref="ModelCard.ContextFrames"/>): the pipeline serves
/// one as it serves any model, its windows cut at the same frames, and a rollout refuses a candidate whose context
/// differs from what the pipeline serves (versions run side by side on the same windows).
/// </summary>
public sealed class ContextServingTests : IDisposable
{
    private readonly TestRegistry _env = new(registerCandidate: false);

    public void Dispose() => _env.Dispose();

    private static string ContextFixture => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny-context-1.0.0.onnx");

    /// <summary>The analytic context fixture as version <paramref name="version"/> (its card otherwise unchanged).</summary>
    private string ContextModel(string version)
    {
        var bytes = OnnxModelEditor.Rewrite(File.ReadAllBytes(ContextFixture), new Dictionary<string, string> { ["har.model_version"] = version }, inputTimeDimension: null);
        var path = Path.Combine(_env.Root, $"tiny-context-{version}.onnx");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public async Task Start_CandidateReadingContextThePipelineDoesNotServe_IsRefusedNamingIt()
    {
        _env.Registry.Register(ContextModel("1.2.0"), new ModelRegistrationOptions { Deployer = "tester" });
        await using var c = await _env.OpenAsync();

        var ex = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Start("1.2.0", "canary", "alice", "try")));

        Assert.Contains("windows of 200 frames after 200 frames of context", ex.Message, StringComparison.Ordinal);
        Assert.Contains("open it with ServingOptions.ContextFrames = 200", ex.Message, StringComparison.Ordinal);
        Assert.Null(c.Status);
    }

    [Fact]
    public async Task AppendAsync_ContextChampion_ServesTheContextThenTheWindowAtThePlainWindowsFrames()
    {
        _env.Registry.Register(ContextModel("2.0.0"), new ModelRegistrationOptions { Deployer = "tester" });
        _env.Registry.SetCurrent("2.0.0");
        var observer = new Recorder();
        await using var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), observers: [observer], timeProvider: _env.Time);
        Assert.Equal(200, pipeline.Geometry.ContextFrames);
        Assert.Equal(400 * 6, pipeline.Geometry.WindowValues);

        // ax a ramp, so every frame is told apart; appended in uneven chunks.
        const int Frames = 1190;
        var stream = new float[Frames * 6];
        for (var f = 0; f < Frames; f++)
        {
            stream[f * 6] = 0.5f + (0.001f * f);
        }

        var starts = new List<long>();
        var predictions = new StreamPrediction[16];
        var probabilities = new float[16 * 12];
        var offset = 0;
        foreach (var n in new[] { 1000, 60, 1, 129 }) // the first long enough for windows that are views of the chunk itself
        {
            var count = await pipeline.AppendAsync("device-1", stream.AsMemory(offset * 6, n * 6), predictions, probabilities);
            for (var i = 0; i < count; i++)
            {
                starts.Add(predictions[i].StartFrame);
                Assert.Equal("2.0.0", predictions[i].Prediction.ModelVersion);
            }

            offset += n;
        }

        // The windows a 200-frame model without context gets: starts 0, 100 … 900.
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i * 100L), starts);
        Assert.Equal(starts, observer.Windows.Select(w => w.Start));
        foreach (var (start, values) in observer.Windows)
        {
            Assert.Equal(400 * 6, values.Length);
            for (var t = 0; t < 400; t++)
            {
                var frame = (int)Math.Max(0, start - 200 + t);
                Assert.Equal(stream[frame * 6], values[t * 6]);
            }
        }
    }

    [Fact]
    public async Task ContextCandidateBesideAChampionWithout_EachReadsItsOwnPartOfTheSameWindows()
    {
        // The champion (tiny-probs 1.0.0) reads 200-frame windows; the candidate the 200 frames before them too.
        _env.Registry.Register(ContextModel("1.2.0"), new ModelRegistrationOptions { Deployer = "tester" });
        var options = TestRegistry.ServingOptions();
        options.ContextFrames = 200;
        var observer = new Recorder();
        await using var pipeline = ServingPipeline.Open(_env.Registry, options, observers: [observer], timeProvider: _env.Time);
        Assert.Equal(200, pipeline.Geometry.ContextFrames);
        await using var controller = await RolloutController.OpenAsync(_env.Registry, TestRegistry.Options(), pipeline, _env.Audit, DriftClassMixTest.Instance, null, _env.Time, CancellationToken.None);
        Assert.Equal(RolloutPhase.Progressing, (await controller.ExecuteAsync(RolloutCommand.Start("1.2.0", "canary", "alice", "try"))).Phase);

        // Half the devices to the candidate, each of its windows mirrored to the champion (paired comparison).
        ((IServingControl)pipeline).Publish(new TrafficPlan(TestRegistry.Champion, "1.2.0", 5_000, salt: 7, mirrorCandidateToStable: true));
        using var champion = HarModel.Load(TestRegistry.ChampionFile, new HarModelOptions { EnableMetrics = false });
        using var candidate = HarModel.Load(ContextFixture, new HarModelOptions { EnableMetrics = false });

        const int Frames = 700;
        var streams = new Dictionary<string, float[]>();
        var predictions = new StreamPrediction[16];
        var probabilities = new float[16 * 12];
        var served = new Dictionary<(string Device, long Start), (string Version, float[] Probabilities)>();
        for (var d = 0; d < 12; d++)
        {
            var device = $"device-{d}";
            var stream = new float[Frames * 6];
            var rng = new Random(d);
            for (var i = 0; i < stream.Length; i++)
            {
                stream[i] = (float)(rng.NextDouble() * 2) - 1;
            }

            streams[device] = stream;
            var offset = 0;
            foreach (var n in new[] { 530, 170 })
            {
                var count = await pipeline.AppendAsync(device, stream.AsMemory(offset * 6, n * 6), predictions, probabilities);
                for (var i = 0; i < count; i++)
                {
                    served[(device, predictions[i].StartFrame)] = (predictions[i].Prediction.ModelVersion, predictions[i].Prediction.Probabilities.ToArray());
                }

                offset += n;
            }
        }

        // Whole windows (as /v1/predict): 400 frames each, the champion reads the last 200.
        var whole = new float[3 * 400 * 6];
        for (var i = 0; i < whole.Length; i++)
        {
            whole[i] = (float)Math.Sin(i * 0.01);
        }

        // Under keys until both versions served whole windows (half the keys go to each; bounded).
        var wholeRuns = new List<Prediction[]>();
        for (var k = 0; k < 40 && wholeRuns.Select(r => r[0].ModelVersion).Distinct().Count() < 2; k++)
        {
            var wholePredictions = new Prediction[3];
            await pipeline.PredictAsync($"whole-{k}", whole, wholePredictions);
            wholeRuns.Add(wholePredictions);
        }

        Assert.Equal(2, wholeRuns.Select(r => r[0].ModelVersion).Distinct().Count());

        // Mirror runs are off the caller's path: wait (bounded) until each candidate window's champion run arrived.
        var candidateWindows = served.Count(kv => kv.Value.Version == "1.2.0");
        Assert.InRange(candidateWindows, 1, served.Count - 1);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (observer.Snapshot().Count(e => e.Role == PredictionRole.Mirror && streams.ContainsKey(e.Device ?? string.Empty)) < candidateWindows && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        var events = observer.Snapshot();
        Assert.Equal(candidateWindows, events.Count(e => e.Role == PredictionRole.Mirror && streams.ContainsKey(e.Device ?? string.Empty)));
        foreach (var e in events.Where(e => streams.ContainsKey(e.Device ?? string.Empty)))
        {
            var stream = streams[e.Device!];
            Assert.Equal(400 * 6, e.Values.Length);
            for (var t = 0; t < 400; t++)
            {
                Assert.Equal(stream[(int)Math.Max(0, e.Start - 200 + t) * 6], e.Values[t * 6]); // the pipeline's windows: context, then the window
            }

            // Each version's answer is its own model's on its own part of the window.
            var model = e.Version == "1.2.0" ? candidate : champion;
            var expected = model.Predict(e.Values.AsSpan(e.Values.Length - model.WindowValues));
            Assert.Equal(expected.Probabilities.ToArray(), e.Probabilities, new FloatTolerance(1e-5f));
            if (e.Role == PredictionRole.Served)
            {
                Assert.Equal(e.Version, served[(e.Device!, e.Start)].Version);
                Assert.Equal(expected.Probabilities.ToArray(), served[(e.Device!, e.Start)].Probabilities, new FloatTolerance(1e-5f));
            }
        }

        foreach (var e in events.Where(e => e.Device?.StartsWith("whole-", StringComparison.Ordinal) == true))
        {
            var model = e.Version == "1.2.0" ? candidate : champion; // served or mirrored, on the 400-frame windows sent
            Assert.Equal(400 * 6, e.Values.Length);
            Assert.Equal(model.Predict(e.Values.AsSpan(e.Values.Length - model.WindowValues)).Probabilities.ToArray(), e.Probabilities, new FloatTolerance(1e-5f));
        }

        foreach (var run in wholeRuns)
        {
            for (var w = 0; w < 3; w++)
            {
                var model = run[w].ModelVersion == "1.2.0" ? candidate : champion;
                var window = whole.AsSpan(w * 2400, 2400);
                Assert.Equal(model.Predict(window[^model.WindowValues..]).Probabilities.ToArray(), run[w].Probabilities.ToArray(), new FloatTolerance(1e-5f));
            }
        }
    }

    [Fact]
    public async Task SmokeTestWindows_AreThePipelinesWindows_EachVersionReadsItsPart()
    {
        _env.Registry.Register(ContextModel("1.2.0"), new ModelRegistrationOptions { Deployer = "tester" });
        var serving = TestRegistry.ServingOptions();
        serving.ContextFrames = 200;
        await using var pipeline = ServingPipeline.Open(_env.Registry, serving, timeProvider: _env.Time);

        // A champion-sized window (200 frames) is not one of this pipeline's (400): refused when the controller opens.
        var wrong = TestRegistry.Options(o => o.SmokeTestWindows.Add(new float[200 * 6]));
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => RolloutController.OpenAsync(_env.Registry, wrong, pipeline, _env.Audit, DriftClassMixTest.Instance, null, _env.Time, CancellationToken.None));
        Assert.Contains("SmokeTestWindows[0] holds 1200 values", ex.Message, StringComparison.Ordinal);
        Assert.Contains("expected 2400 values per window", ex.Message, StringComparison.Ordinal);

        // The pipeline's windows: the smoke test runs the champion on their last 200 frames and the candidate on all 400.
        var options = TestRegistry.Options(o =>
        {
            o.SmokeTestMinAgreement = 0;
            for (var w = 0; w < 4; w++)
            {
                var window = new float[400 * 6];
                for (var i = 0; i < window.Length; i++)
                {
                    window[i] = (float)Math.Sin((i + w) * 0.013);
                }

                o.SmokeTestWindows.Add(window);
            }
        });
        await using var controller = await RolloutController.OpenAsync(_env.Registry, options, pipeline, _env.Audit, DriftClassMixTest.Instance, null, _env.Time, CancellationToken.None);
        var status = await controller.ExecuteAsync(RolloutCommand.Start("1.2.0", "canary", "alice", "try"));
        Assert.Equal(RolloutPhase.Progressing, status.Phase);
        Assert.True(status.StepIndex > 0, status.Message);
    }

    [Fact]
    public void Open_ContextFramesBelowTheCurrentVersions_IsRefusedSayingWhatIsNeeded()
    {
        _env.Registry.Register(ContextModel("2.0.0"), new ModelRegistrationOptions { Deployer = "tester" });
        _env.Registry.SetCurrent("2.0.0");
        var options = TestRegistry.ServingOptions();
        options.ContextFrames = 100;

        var ex = Assert.Throws<ArgumentException>(() => ServingPipeline.Open(_env.Registry, options, timeProvider: _env.Time));

        Assert.Contains("ServingOptions.ContextFrames is 100, but the current version 2.0.0 reads 200 frames before each window; expected at least 200", ex.Message, StringComparison.Ordinal);
    }

    private sealed class Recorder : IServingObserver
    {
        private readonly Lock _gate = new();
        private readonly List<(string? Device, string Version, PredictionRole Role, long Start, float[] Values, float[] Probabilities)> _events = [];

        public List<(long Start, float[] Values)> Windows
        {
            get
            {
                lock (_gate)
                {
                    return [.. _events.Where(e => e.Role == PredictionRole.Served).Select(e => (e.Start, e.Values))];
                }
            }
        }

        public List<(string? Device, string Version, PredictionRole Role, long Start, float[] Values, float[] Probabilities)> Snapshot()
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }

        public void OnPredictions(in ServedPredictions p)
        {
            lock (_gate)
            {
                for (var i = 0; i < p.Predictions.Length; i++)
                {
                    _events.Add((p.StreamId, p.Version, p.Role, p.StartFrames.IsEmpty ? -1 : p.StartFrames[i], p.GetWindow(i).ToArray(), p.Predictions[i].Probabilities.ToArray()));
                }
            }
        }
    }

    private sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(float obj) => 0;
    }
}
