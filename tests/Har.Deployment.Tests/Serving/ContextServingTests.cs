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

    private sealed class Recorder : IServingObserver
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
}
