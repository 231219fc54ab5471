using Har.Inference;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Har.Inference health check.</summary>
public static class HarInferenceHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a health check that is healthy only when every model registered with
    /// <see cref="HarInferenceBuilder.AddModel"/> is loaded, validated and warmed up (it loads them on first use).
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="name">The check's name.</param>
    /// <returns>The builder.</returns>
    public static IHealthChecksBuilder AddHarInference(this IHealthChecksBuilder builder, string name = "har-inference")
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Add(new HealthCheckRegistration(name, sp => new HarInferenceHealthCheck(sp), HealthStatus.Unhealthy, ["ready"]));
    }
}

/// <summary>Healthy when every registered model is loaded and warmed up.</summary>
internal sealed class HarInferenceHealthCheck(IServiceProvider services) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var registry = services.GetService<HarModelRegistry>();
        if (registry is null || registry.Names.Count == 0)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("No Har models are registered; call AddHarInference().AddModel(name, path)."));
        }

        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var name in registry.Names)
        {
            cancellationToken.ThrowIfCancellationRequested();
            HarModel model;
            try
            {
                model = services.GetRequiredKeyedService<HarModel>(name);
            }
            catch (Exception ex) when (ex is ModelCardException or FileNotFoundException or ArgumentException or InvalidOperationException)
            {
                return Task.FromResult(HealthCheckResult.Unhealthy($"Model '{name}' failed to load: {ex.Message}", ex, data));
            }

            if (!model.IsReady)
            {
                return Task.FromResult(HealthCheckResult.Unhealthy($"Model '{name}' ({model}) is not ready (not warmed up, or disposed).", data: data));
            }

            data[name] = model.ToString();
        }

        return Task.FromResult(HealthCheckResult.Healthy($"{data.Count} model(s) loaded and warmed up.", data));
    }
}
