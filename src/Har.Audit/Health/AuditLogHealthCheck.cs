using System.Globalization;
using Har.Audit.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Har.Audit;

/// <summary>
/// Reports whether the <see cref="AuditLog"/> registered by <c>AddHarAudit</c> can record operations. Register it with
/// <c>services.AddHealthChecks().AddCheck&lt;AuditLogHealthCheck&gt;("audit", failureStatus: HealthStatus.Degraded, tags: ["ready"])</c>.
/// <list type="bullet">
/// <item>The log cannot be opened or is <see cref="AuditLogState.Unavailable"/> (read-only or full disk, damaged log): the
/// registration's failure status (pass <c>Degraded</c> to keep serving reads and predictions while operations are refused).</item>
/// <item>A repair removed entries (<c>quarantine/</c>), or the checkpoint signer could not sign: <c>Degraded</c>.</item>
/// <item>Otherwise <c>Healthy</c>.</item>
/// </list>
/// A log in PostgreSQL is read on the thread pool, so a <c>timeout</c> given to <c>AddCheck</c> bounds the check when the
/// database does not answer (the health check service then reports the failure status, "a timeout occurred").
/// </summary>
/// <param name="services">Resolves the log lazily, so a log that cannot be opened yet is reported rather than thrown.</param>
public sealed class AuditLogHealthCheck(IServiceProvider services) : IHealthCheck
{
    private readonly IServiceProvider _services = services ?? throw new ArgumentNullException(nameof(services));

    /// <inheritdoc/>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        AuditLog log;
        try
        {
            log = _services.GetRequiredService<AuditLog>();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or OptionsValidationException)
        {
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, $"audit log unavailable: operations that must be audited are refused ({ex.Message})", ex));
        }

        // A log in PostgreSQL is read over the network: run on the thread pool so that the registration's timeout can give
        // up on a database that does not answer (found from outside: with its connection blackholed, /ready took 15-30 s).
        return log.IsDatabase
            ? Task.Run(() => Check(context, log), CancellationToken.None).WaitAsync(cancellationToken)
            : Task.FromResult(Check(context, log));
    }

    private static HealthCheckResult Check(HealthCheckContext context, AuditLog log)
    {
        var summary = log.IsDatabase ? default : QuarantineSummary.Read(log.Directory);
        var checkpoint = SafeCheckpointSize(log);
        var data = new Dictionary<string, object>
        {
            ["state"] = log.State.ToString(),
            ["entries"] = log.Count,
            ["quarantined_entries"] = summary.EntriesRemoved,
            ["checkpoint_size"] = checkpoint,
        };
        if (log.State != AuditLogState.Writable)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"audit log unavailable: operations that must be audited are refused until the {(log.IsDatabase ? "database answers" : "folder is writable")} again ({log.UnavailableReason})", data: data);
        }

        if (summary.Repairs > 0)
        {
            return HealthCheckResult.Degraded(string.Create(CultureInfo.InvariantCulture, $"audit log repaired: {Messages.Count(summary.Repairs, "repair", "repairs")} removed at least {Messages.Entries(summary.EntriesRemoved)}, kept in quarantine/ ({summary.Latest}); `har audit verify` fails until they are restored"), data: data);
        }

        if (log.SignerProblem is { } problem)
        {
            return HealthCheckResult.Degraded($"audit checkpoints are not being signed: {problem}", data: data);
        }

        return HealthCheckResult.Healthy(string.Create(CultureInfo.InvariantCulture, $"audit log writable: {Messages.Entries(log.Count)}, latest checkpoint at {checkpoint}"), data);
    }

    private static long SafeCheckpointSize(AuditLog log)
    {
        try
        {
            return log.LatestCheckpoint?.TreeSize ?? 0;
        }
        catch (FormatException)
        {
            return -1;
        }
    }
}
