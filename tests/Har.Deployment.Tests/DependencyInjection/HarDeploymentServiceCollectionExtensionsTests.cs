using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Inference;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Har.Deployment.Tests.DependencyInjection;

public sealed class HarDeploymentServiceCollectionExtensionsTests
{
    [Fact]
    public async Task AddHarDeployment_WithAddHarAudit_ControllerAuditsToTheRegisteredLog()
    {
        using var env = new TestRegistry();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(env.Time);
        services.AddHarAudit(o =>
        {
            o.Directory = Path.Combine(env.Root, "audit");
            o.EnableMetrics = false;
        });
        var gate = new CountingGate();
        services.AddHarDeployment(o =>
        {
            o.RegistryPath = env.Registry.Root;
            o.Rollouts.MetricsRegistry = Prometheus.Metrics.NewCustomRegistry();
            o.Serving.MetricsRegistry = Prometheus.Metrics.NewCustomRegistry();
            o.Serving.Model.EnableMetrics = false;
            o.Rollouts.BuiltInStrategies.SmokeTest = false;
        }).AddGate(gate);
        await using var provider = services.BuildServiceProvider();

        // The versions were registered without this log; seeding them from the trusted files anchors them in it.
        provider.GetRequiredService<ModelRegistry>().Seed([TestRegistry.ChampionFile, TestRegistry.CandidateFile]);
        var controller = provider.GetRequiredService<RolloutController>();
        var pipeline = provider.GetRequiredService<ServingPipeline>();
        Assert.Equal(TestRegistry.Champion, pipeline.Plan.Stable);
        Assert.Same(provider.GetRequiredService<ModelRegistry>(), controller.Registry);
        var status = await controller.ExecuteAsync(RolloutCommand.Start("1.1.0", "recreate", "di-test", "composition"));
        Assert.Equal(RolloutPhase.Succeeded, status.Phase);

        // The controller steers the pipeline the container hands out: one set of resident models.
        Assert.Equal(TestRegistry.Candidate, pipeline.Plan.Stable);
        var log = provider.GetRequiredService<AuditLog>();
        var page = log.Query(new AuditQuery { EntityId = status.RolloutId });
        Assert.Contains(page.Entries, e => e.EventType == "rollout.transition");
        await controller.DisposeAsync();
    }

    [Fact]
    public async Task RunRolloutLoop_AHostedServiceDrivesACanaryToItsEnd_WithoutACallOfTheHost()
    {
        // Found from outside: nothing AddHarDeployment registered ran the controller's loop, and a started canary stayed
        // at 10 % for good with no warning unless the host wrote a BackgroundService of its own.
        using var env = new TestRegistry();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(env.Time);
        services.AddHarDeployment(o =>
        {
            o.RegistryPath = env.Registry.Root;
            o.Rollouts.MetricsRegistry = Prometheus.Metrics.NewCustomRegistry();
            o.Serving.MetricsRegistry = Prometheus.Metrics.NewCustomRegistry();
            o.Serving.Model.EnableMetrics = false;
            o.Rollouts.BuiltInStrategies.SmokeTest = false;
        }).RunRolloutLoop().RunRolloutLoop();
        await using var provider = services.BuildServiceProvider();
        var loop = Assert.Single(provider.GetServices<Microsoft.Extensions.Hosting.IHostedService>()); // a second call adds nothing
        await loop.StartAsync(TestContext.Current.CancellationToken);
        var controller = provider.GetRequiredService<RolloutController>();
        await controller.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "di-test", "driven by the hosted loop"));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!controller.Status!.Phase.IsTerminal())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), $"the loop did not end the canary: {controller.Status}");
            Traffic.Feed(controller, 400, healthy: true);
            env.Time.Advance(TimeSpan.FromMinutes(1));
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.Equal(RolloutPhase.Succeeded, controller.Status.Phase);
        Assert.True(controller.Status.AnalysesRun > 0);
        await loop.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public void AddHarDeployment_NoRegistryPath_ValidationNamesTheOption()
    {
        var services = new ServiceCollection();
        services.AddHarDeployment();
        using var provider = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<HarDeploymentOptions>>().Value);
        Assert.Contains("RegistryPath", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddHarDeployment_InvalidThreshold_ValidationFails()
    {
        var services = new ServiceCollection();
        services.AddHarDeployment(o =>
        {
            o.RegistryPath = "registry";
            o.Rollouts.Analysis.MaxErrorRate = 1.5;
        });
        using var provider = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<HarDeploymentOptions>>().Value);
        Assert.Contains("MaxErrorRate", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddHarDeployment_ConfigurationSection_BindsNestedOptions()
    {
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Har:Deployment:RegistryPath"] = "registry",
            ["Har:Deployment:Serving:MaxStreams"] = "123",
            ["Har:Deployment:Serving:Model:MaxBatchSize"] = "8",
            ["Har:Deployment:Rollouts:FailureThreshold"] = "3",
            ["Har:Deployment:Rollouts:BuiltInStrategies:AnalysisInterval"] = "00:00:30",
        }).Build();
        var services = new ServiceCollection();
        services.AddHarDeployment(configuration.GetSection("Har:Deployment"));
        using var provider = services.BuildServiceProvider();

        var o = provider.GetRequiredService<IOptions<HarDeploymentOptions>>().Value;

        Assert.Equal(("registry", 123, 8, 3, TimeSpan.FromSeconds(30)), (o.RegistryPath, o.Serving.MaxStreams, o.Serving.Model.MaxBatchSize, o.Rollouts.FailureThreshold, o.Rollouts.BuiltInStrategies.AnalysisInterval));
    }

    [Fact]
    public void AddHarDeployment_ConfigurationWithInvalidValue_ValidationNamesIt()
    {
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["RegistryPath"] = "registry",
            ["Serving:MaxStreams"] = "0",
        }).Build();
        var services = new ServiceCollection();
        services.AddHarDeployment(configuration);
        using var provider = services.BuildServiceProvider();

        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<HarDeploymentOptions>>().Value);
        Assert.Contains("MaxStreams", ex.Message, StringComparison.Ordinal);
    }

    private sealed class CountingGate : IAnalysisGate
    {
        public string Name => "counting";

        public GateResult Evaluate(AnalysisSnapshot snapshot) => new(Name, GateVerdict.Pass, "ok", new Dictionary<string, double>());
    }
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AddHarDeployment_WithAddHarInferenceOfTheSameModel_OneResidentInstanceSharedAndNotDisposedByThePipeline(bool keyedFirst)
    {
        // The host keeps its own copy of the champion's file (as apps do) and registers it by name; the registry holds another copy.
        using var env = new TestRegistry();
        var hostCopy = Path.Combine(env.Root, "host-models", "champion.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(hostCopy)!);
        File.Copy(TestRegistry.ChampionFile, hostCopy);
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(env.Time);
        services.AddHarInference()
            .AddModel("champion", hostCopy, o => o.EnableMetrics = false)
            .AddModel("other", TestRegistry.CandidateFile, o => o.EnableMetrics = false);
        services.AddHarDeployment(o =>
        {
            o.RegistryPath = env.Registry.Root;
            o.Serving.MetricsRegistry = Prometheus.Metrics.NewCustomRegistry();
            o.Serving.Model.EnableMetrics = false;
        });
        var provider = services.BuildServiceProvider();

        var keyed = keyedFirst ? provider.GetRequiredKeyedService<HarModel>("champion") : null;
        var pipeline = provider.GetRequiredService<ServingPipeline>();
        keyed ??= provider.GetRequiredKeyedService<HarModel>("champion");

        // One instance of the champion, from the host's file; serving goes through it.
        var served = pipeline.Models.GetModel(TestRegistry.Champion);
        Assert.Same(keyed, served);
        Assert.Equal(Path.GetFullPath(hostCopy), served.ModelPath);
        var predictions = new Prediction[1];
        await pipeline.PredictAsync("device-1", new float[pipeline.WindowValues], predictions);
        Assert.Equal(TestRegistry.Champion, predictions[0].ModelVersion);

        // The pipeline does not own the shared instance: disposing it leaves the host's model serving.
        await pipeline.DisposeAsync();
        Assert.True(keyed.IsReady);
        Assert.NotNull(keyed.Predict(new float[keyed.WindowValues]).Label);
        await provider.DisposeAsync();
        Assert.False(keyed.IsReady);
    }

    [Fact]
    public async Task AddHarDeployment_WithAddHarInferenceOfOtherFiles_LoadsItsOwnAndResolvesNoneOfTheirs()
    {
        // A registered "model" that cannot even load: resolving it would throw, so the pipeline opening proves it was not resolved.
        using var env = new TestRegistry(registerCandidate: false);
        var unloadable = Path.Combine(env.Root, "not-a-model.onnx");
        await File.WriteAllBytesAsync(unloadable, [1, 2, 3, 4]);
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(env.Time);
        services.AddHarInference().AddModel("broken", unloadable, o => o.EnableMetrics = false);
        services.AddHarDeployment(o =>
        {
            o.RegistryPath = env.Registry.Root;
            o.Serving.MetricsRegistry = Prometheus.Metrics.NewCustomRegistry();
            o.Serving.Model.EnableMetrics = false;
        });
        await using var provider = services.BuildServiceProvider();

        var pipeline = provider.GetRequiredService<ServingPipeline>();

        // The registry's champion is served from the registry's own file (no copy anywhere else).
        var served = pipeline.Models.GetModel(TestRegistry.Champion);
        Assert.Equal(env.Registry.ReadVerified(TestRegistry.Champion, "test").Model.ModelPath, served.ModelPath);
        Assert.Throws<ModelCardException>(() => provider.GetRequiredKeyedService<HarModel>("broken"));
    }
}
