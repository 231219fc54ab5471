using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
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

    [Fact]
    public async Task AddHarInference_ConfigurationSection_BindsWindowingAndModelsAndRegistersTheWindower()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Har:Windowing:MaxStreams"] = "7",
            ["Har:Windowing:MaxWindowsPerAppend"] = "5",
            ["Har:Models:champion:Path"] = Fixture.Probs,
            ["Har:Models:champion:MaxBatchSize"] = "4",
            ["Har:Models:champion:EnableMetrics"] = "false",
            ["Har:Models:candidate:Path"] = Fixture.Logits,
            ["Har:Models:candidate:EnableMetrics"] = "false",
        }).Build();
        var services = new ServiceCollection();
        services.AddHarInference(configuration.GetSection("Har"));
        await using var sp = services.BuildServiceProvider();

        Assert.Equal(7, sp.GetRequiredService<IOptions<StreamWindowerOptions>>().Value.MaxStreams);
        Assert.Equal(4, sp.GetRequiredService<IOptionsMonitor<HarModelOptions>>().Get("champion").MaxBatchSize);
        Assert.Equal("1.1.0", sp.GetRequiredKeyedService<HarModel>("candidate").Version);

        // The windower the docs mention is registered, with the geometry of the first model.
        var windower = sp.GetRequiredService<StreamWindower>();
        var champion = sp.GetRequiredKeyedService<HarModel>("champion");
        Assert.Equal(champion.Card.WindowLength, windower.WindowLength);
        Assert.Equal(champion.Card.Stride, windower.Stride);
        Assert.Throws<WindowLimitExceededException>(() => windower.Append("s", new float[champion.WindowValues * 4]));
    }

    [Fact]
    public async Task AddHarInference_InvalidConfiguration_FailsWhenTheHostStarts()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Har:Windowing:MaxStreams"] = "0",
            ["Har:Models:m:Path"] = Fixture.Probs,
            ["Har:Models:m:EnableMetrics"] = "false",
        });
        builder.Services.AddHarInference(builder.Configuration.GetSection("Har"));
        using var host = builder.Build();

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("MaxStreams", ex.Message, StringComparison.Ordinal);

        var missing = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Har:Models:m:MaxBatchSize"] = "4" }).Build();
        var noPath = Assert.Throws<ArgumentException>(() => new ServiceCollection().AddHarInference(missing.GetSection("Har")));
        Assert.Contains("has no 'Path'", noPath.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AddHarInference_UserRegisteredWindower_Wins()
    {
        var services = new ServiceCollection();
        using var mine = new StreamWindower(4, 2, 1);
        services.AddSingleton(mine);
        services.AddHarInference().AddModel("m", Fixture.Probs, o => o.EnableMetrics = false);
        await using var sp = services.BuildServiceProvider();

        Assert.Same(mine, sp.GetRequiredService<StreamWindower>());
    }
}
