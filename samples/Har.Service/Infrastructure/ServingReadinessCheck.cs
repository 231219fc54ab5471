using Har.Deployment;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Har.Service.Infrastructure;

/// <summary>Ready when the serving versions are loaded and warmed up (predictions can be served).</summary>
internal sealed class ServingReadinessCheck(IServiceProvider services) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var controller = services.GetRequiredService<RolloutController>();
            var pipeline = services.GetRequiredService<ServingPipeline>();
            return Task.FromResult(controller.Fault is { } fault
                ? HealthCheckResult.Degraded($"serving {pipeline}; the rollout controller's loop is failing and retrying: {fault}")
                : HealthCheckResult.Healthy($"serving {pipeline}"));
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException or Har.Inference.ModelCardException or ModelIntegrityException or Microsoft.Extensions.Options.OptionsValidationException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"not serving: {ex.GetType().Name}"));
        }
    }
}
