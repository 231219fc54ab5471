using Har.Inference;
using Microsoft.Extensions.Time.Testing;
using Prometheus;

namespace Har.Deployment.Tests.Support;

/// <summary>A registry in a fresh temp folder with the tiny real fixture models registered (champion 1.0.0, candidate 1.1.0).</summary>
internal sealed class TestRegistry : IDisposable
{
    public const string Champion = "1.0.0";
    public const string Candidate = "1.1.0";

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

    public static RolloutControllerOptions Options(Action<RolloutControllerOptions>? configure = null)
    {
        var o = new RolloutControllerOptions
        {
            MetricsRegistry = Metrics.NewCustomRegistry(),
            ModelOptions = () => new HarModelOptions { EnableMetrics = false, MaxBatchWait = TimeSpan.Zero },
        };
        o.Canary.AnalysisInterval = TimeSpan.FromMinutes(1);

        // Tiny fixture models run in microseconds, so their warm-up baselines are noise; the inflation check has its own tests.
        o.Analysis.MaxLatencyInflation = null;
        configure?.Invoke(o);
        return o;
    }

    public Task<RolloutController> OpenAsync(RolloutControllerOptions? options = null)
    {
        options ??= Options();
        return RolloutController.OpenAsync(Registry, options, RolloutController.CreateDefaultHost(options, null, Time), ownsHost: true, Audit, DriftClassMixTest.Instance, null, Time, CancellationToken.None);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
