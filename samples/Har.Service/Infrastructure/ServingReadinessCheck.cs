using Har.Deployment;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Har.Service.Infrastructure;

/// <summary>
/// Ready when the serving versions are loaded and warmed up (predictions can be served). A pipeline that serves while
/// the rollout controller waits for the audit log to open for writing (a full or read-only disk) is Degraded, not
/// Unhealthy: predictions flow, and model and rollout changes wait (the <c>operations</c> check says why).
/// </summary>
internal sealed class ServingReadinessCheck(IServiceProvider services) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ServingPipeline pipeline;
        try
        {
            pipeline = services.GetRequiredService<ServingPipeline>();
        }
        catch (Exception ex) when (IsStartFailure(ex))
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"not serving: {ex.GetType().Name}"));
        }

        try
        {
            var controller = services.GetRequiredService<RolloutController>();
            return Task.FromResult(controller.Fault is { } fault
                ? HealthCheckResult.Degraded($"serving {pipeline}; the rollout controller's loop is failing and retrying: {fault}")
                : HealthCheckResult.Healthy($"serving {pipeline}"));
        }
        catch (Har.Audit.AuditLogUnavailableException)
        {
            return Task.FromResult(HealthCheckResult.Degraded($"serving {pipeline}; the rollout controller waits for the audit log to open for writing (see operations)"));
        }
        catch (Exception ex) when (IsStartFailure(ex))
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"not serving: {ex.GetType().Name}"));
        }
    }

    private static bool IsStartFailure(Exception ex) =>
        ex is InvalidOperationException or IOException or UnauthorizedAccessException or Har.Inference.ModelCardException or ModelIntegrityException or Microsoft.Extensions.Options.OptionsValidationException;
}
