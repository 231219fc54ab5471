using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Har.Inference.Tests.DependencyInjection;

public sealed class HarInferenceServiceCollectionExtensionsTests
{
    private static ServiceProvider Build(Action<HarInferenceBuilder> models)
    {
        var services = new ServiceCollection();
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        models(services.AddHarInference());
        services.AddHealthChecks().AddHarInference();
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task AddModel_TwoNamedModels_ResolveAsKeyedServicesAndHealthIsHealthy()
    {
        await using var sp = Build(b => b
            .AddModel("champion", Fixture.Probs, o => o.EnableMetrics = false)
            .AddModel("candidate", Fixture.Logits, o => o.EnableMetrics = false));

        var champion = sp.GetRequiredKeyedService<HarModel>("champion");
        var candidate = sp.GetRequiredKeyedService<HarModel>("candidate");
        var health = await sp.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        Assert.Equal("1.0.0", champion.Version);
        Assert.Equal("1.1.0", candidate.Version);
        Assert.Same(champion, sp.GetRequiredKeyedService<HarModel>("champion"));
        Assert.Equal(HealthStatus.Healthy, health.Status);
    }

    [Fact]
    public async Task HealthCheck_ModelThatCannotLoad_IsUnhealthyNamingIt()
    {
        await using var sp = Build(b => b.AddModel("broken", Fixture.Model("bad-zero-std.onnx"), o => o.EnableMetrics = false));

        var health = await sp.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        Assert.Equal(HealthStatus.Unhealthy, health.Status);
        Assert.Contains("Model 'broken' failed to load", health.Entries["har-inference"].Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AddModel_InvalidOptions_FailValidation()
    {
        await using var sp = Build(b => b.AddModel("m", Fixture.Probs, o => o.MaxBatchSize = 0));

        var ex = Assert.Throws<OptionsValidationException>(() => sp.GetRequiredService<IOptionsMonitor<HarModelOptions>>().Get("m"));
        Assert.Contains("MaxBatchSize", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddModel_DuplicateName_Throws()
    {
        var services = new ServiceCollection();
        var builder = services.AddHarInference().AddModel("m", Fixture.Probs);
        var ex = Assert.Throws<ArgumentException>(() => builder.AddModel("m", Fixture.Logits));
        Assert.Contains("already registered", ex.Message, StringComparison.Ordinal);
    }
}
