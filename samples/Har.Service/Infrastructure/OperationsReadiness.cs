using System.Text.Json;
using Har.Audit;
using Har.Deployment;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Har.Service.Infrastructure;

/// <summary>
/// Readiness of operations (model registration, rollouts, audit appends), which all need the audit log to
/// be writable: a probe write with fsync in the log's folder (at most once per second) and the log itself.
/// When either fails the check is <see cref="HealthStatus.Degraded"/>: <c>/ready</c> stays 200 so the pod
/// keeps receiving predictions (they never touch the log), and says that operations are unavailable;
/// operations are then refused with 503 and Retry-After. It turns healthy by itself once the disk is writable.
/// </summary>
internal sealed class OperationsReadinessCheck(IServiceProvider services, AuditDirectory directory, AuditWriteStatus writes, TimeProvider time) : IHealthCheck
{
    private static readonly TimeSpan ProbeSpacing = TimeSpan.FromSeconds(1);
    private readonly Lock _gate = new();
    private (DateTimeOffset At, string? Problem) _last = (DateTimeOffset.MinValue, null);

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var problem = Probe() ?? (writes.Failing ? "the last audit record could not be written" : null);
        if (problem is null)
        {
            try
            {
                var log = services.GetRequiredService<AuditLog>();
                return Task.FromResult(HealthCheckResult.Healthy($"operations available; audit log at {log.Count} entries"));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or InvalidDataException)
            {
                problem = $"the audit log cannot be opened ({ex.GetType().Name})";
            }
        }

        return Task.FromResult(new HealthCheckResult(
            context.Registration.FailureStatus,
            $"operations unavailable: {problem}; operations are refused with 503 until the audit log can be written again (predictions: see the serving check)"));
    }

    /// <summary>Null when a file can be created, written, fsynced and removed in the audit folder.</summary>
    private string? Probe()
    {
        lock (_gate)
        {
            var now = time.GetUtcNow();
            if (now - _last.At < ProbeSpacing)
            {
                return _last.Problem;
            }

            string? problem = null;
            var path = Path.Combine(directory.Path, $".ready-probe-{Environment.ProcessId}");
            try
            {
                Directory.CreateDirectory(directory.Path);
                using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None))
                {
                    file.WriteByte(1);
                    file.Flush(flushToDisk: true);
                }

                File.Delete(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                problem = $"the audit folder is not writable ({ex.GetType().Name}: {ex.Message.Replace(directory.Path, "<audit>", StringComparison.Ordinal)})";
            }

            _last = (now, problem);
            return problem;
        }
    }
}

/// <summary>
/// Whether the latest audit append of an operation failed (set by <see cref="OperationAuditMiddleware"/>, which
/// appends after every operation): a log that failed a write may refuse appends after the folder is writable
/// again, until it has recovered; the first successful append clears it.
/// </summary>
internal sealed class AuditWriteStatus
{
    private int _failing;

    public bool Failing => Volatile.Read(ref _failing) == 1;

    public void Succeeded() => Volatile.Write(ref _failing, 0);

    public void Failed() => Volatile.Write(ref _failing, 1);
}

/// <summary>The audit log's folder (for the readiness probe).</summary>
internal sealed record AuditDirectory(string Path);

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
                ? HealthCheckResult.Degraded($"serving {pipeline.Plan}; the rollout controller's loop is failing and retrying: {fault}")
                : HealthCheckResult.Healthy($"serving {pipeline.Plan}"));
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException or Har.Inference.ModelCardException or ModelIntegrityException or Microsoft.Extensions.Options.OptionsValidationException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"not serving: {ex.GetType().Name}"));
        }
    }
}

/// <summary>The body of <c>/ready</c>: the overall status and each check's status and description.</summary>
internal static class ReadinessResponse
{
    public static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        var body = new Dictionary<string, object>
        {
            ["status"] = report.Status.ToString(),
            ["checks"] = report.Entries.ToDictionary(e => e.Key, e => new Dictionary<string, object?>
            {
                ["status"] = e.Value.Status.ToString(),
                ["description"] = e.Value.Description,
            }),
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body));
    }
}
