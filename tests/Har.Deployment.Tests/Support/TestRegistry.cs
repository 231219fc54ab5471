using Har.Inference;
using Microsoft.Extensions.Time.Testing;
using Prometheus;

namespace Har.Deployment.Tests.Support;

/// <summary>A registry in a fresh temp folder with the tiny real fixture models registered (champion 1.0.0, candidate 1.1.0).</summary>
internal sealed class TestRegistry : IDisposable
{
    public const string Champion = "1.0.0";
    public const string Candidate = "1.1.0";

    private ServingPipeline? _pipeline;

    public TestRegistry(bool registerCandidate = true)
    {
        Root = Directory.CreateTempSubdirectory("har-deploy-test-").FullName;
        Time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 15, 10, 30, 0, TimeSpan.Zero));
        Registry = new ModelRegistry(Path.Combine(Root, "registry"), timeProvider: Time);
        Audit = new MemoryAuditSink();
        Registry.Audit = Audit;
        Registry.Register(ChampionFile, new ModelRegistrationOptions { Deployer = "tester" });
        if (registerCandidate)
        {
            Registry.Register(CandidateFile, new ModelRegistrationOptions { Deployer = "tester" });
        }
    }

    public static string ChampionFile => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny-probs-1.0.0.onnx");

    public static string CandidateFile => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny-logits-1.1.0.onnx");

    public string Root { get; }

    public FakeTimeProvider Time { get; }

    public ModelRegistry Registry { get; }

    public MemoryAuditSink Audit { get; }

    /// <summary>Gets the serving pipeline on the registry (opened on first use, on the current version).</summary>
    public ServingPipeline Pipeline => _pipeline ??= ServingPipeline.Open(Registry, ServingOptions(), timeProvider: Time);

    /// <summary>Opens the pipeline with <paramref name="options"/> instead of <see cref="ServingOptions()"/> (before its first use).</summary>
    public void UsePipeline(ServingOptions options)
    {
        Assert.Null(_pipeline);
        _pipeline = ServingPipeline.Open(Registry, options, timeProvider: Time);
    }

    public static ServingOptions ServingOptions()
    {
        var o = new ServingOptions { MetricsRegistry = Metrics.NewCustomRegistry() };
        o.Model.EnableMetrics = false;
        o.Model.MaxBatchWait = TimeSpan.Zero;
        return o;
    }

    /// <summary>Serves one window through the pipeline (as <c>/v1/predict</c> does).</summary>
    public async Task<Prediction> PredictAsync(string streamId, float[] window)
    {
        var predictions = new Prediction[1];
        await Pipeline.PredictAsync(streamId, window, predictions);
        return predictions[0];
    }

    public static RolloutControllerOptions Options(Action<RolloutControllerOptions>? configure = null)
    {
        var o = new RolloutControllerOptions
        {
            MetricsRegistry = Metrics.NewCustomRegistry(),
        };
        o.BuiltInStrategies.AnalysisInterval = TimeSpan.FromMinutes(1);

        // Tiny fixture models run in microseconds, so their warm-up baselines are noise; the inflation check has its own tests.
        o.Analysis.MaxLatencyInflation = null;
        configure?.Invoke(o);
        return o;
    }

    public Task<RolloutController> OpenAsync(RolloutControllerOptions? options = null)
    {
        options ??= Options();
        return RolloutController.OpenAsync(Registry, options, Pipeline, Audit, DriftClassMixTest.Instance, null, Time, CancellationToken.None);
    }

    public void Dispose()
    {
        _pipeline?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
