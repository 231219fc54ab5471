using Har.Audit;
using Har.Deployment;
using Prometheus;

namespace Har.Service.Infrastructure;

/// <summary>
/// Takes backups of this service's registry, rollout state and audit log (<see cref="DeploymentBackup"/>), one at a time,
/// into <see cref="BackupSettings.Directory"/>, keeping <see cref="BackupSettings.Keep"/> archives.
/// </summary>
internal sealed class Backups(ModelRegistry registry, AuditLog auditLog, IServiceProvider services, BackupSettings settings, string directory, string signingKeyPath) : IDisposable
{
    private readonly SemaphoreSlim _one = new(1, 1);

    /// <summary>Gets the folder of the archives.</summary>
    public string Directory { get; } = directory;

    /// <inheritdoc/>
    public void Dispose() => _one.Dispose();

    /// <summary>Takes a backup now (waits for one in progress to finish first).</summary>
    public async Task<DeploymentBackupResult> TakeAsync(string actor, string reason, CancellationToken cancellationToken)
    {
        await _one.WaitAsync(cancellationToken);
        try
        {
            using var key = AuditSigningKey.Load(signingKeyPath);
            var result = await DeploymentBackup.CreateAsync(registry, auditLog, services.GetRequiredService<RolloutController>(), Directory, new DeploymentBackupOptions
            {
                SigningKey = key,
                SigningKeyFile = settings.IncludeSigningKey ? signingKeyPath : null,
                Actor = actor,
                Reason = reason,
                Keep = settings.Keep,
            }, cancellationToken);
            BackupMetrics.LastSuccess.SetToCurrentTimeUtc();
            BackupMetrics.LastBytes.Set(result.Bytes);
            return result;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            BackupMetrics.Failures.Inc();
            throw;
        }
        finally
        {
            _one.Release();
        }
    }
}

/// <summary>The backup metrics, exported from the start (0 until the first backup) so alerts on them have a series.</summary>
internal static class BackupMetrics
{
    public static readonly Gauge LastSuccess = Metrics.CreateGauge("har_backup_last_success_timestamp_seconds", "Unix time of the last backup that was written (0: none since the process started).");
    public static readonly Counter Failures = Metrics.CreateCounter("har_backup_failures_total", "Backups that failed (nothing was published).");
    public static readonly Gauge LastBytes = Metrics.CreateGauge("har_backup_last_size_bytes", "Size of the last backup archive.");

    /// <summary>Creates the series (called once at start).</summary>
    public static void Initialize() => Failures.Inc(0);
}
