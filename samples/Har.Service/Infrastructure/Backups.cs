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
            BackupMetrics.Succeeded(result.ArchivePath);
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

/// <summary>
/// The backup metrics, exported from the start so alerts on them have a series: when the newest archive was taken (set at
/// start from the backup folder, then by every backup), its size, the failures, and whether backups are scheduled
/// (<see cref="BackupSettings.Scheduled"/>: it arms the staleness alerts of deploy/prometheus/har-rules.yml).
/// </summary>
internal static class BackupMetrics
{
    public static readonly Gauge LastSuccess = Metrics.CreateGauge("har_backup_last_success_timestamp_seconds", "Unix time the newest backup archive in the backup folder was taken (at start, from the folder; then set by each backup); 0: there is none.");
    public static readonly Counter Failures = Metrics.CreateCounter("har_backup_failures_total", "Backups that failed (nothing was published).");
    public static readonly Gauge LastBytes = Metrics.CreateGauge("har_backup_last_size_bytes", "Size of the newest backup archive.");
    public static readonly Gauge Scheduled = Metrics.CreateGauge("har_backup_scheduled", "1 when backups are taken on a schedule (Har:Service:Backup:Scheduled), which arms the backup staleness alerts; 0 otherwise.");

    /// <summary>Creates the series (called once at start) and reads the newest archive already in <paramref name="directory"/>.</summary>
    public static void Initialize(BackupSettings settings, string directory)
    {
        Failures.Inc(0);
        Scheduled.Set(settings.Scheduled ? 1 : 0);
        foreach (var archive in DeploymentBackup.List(directory))
        {
            if (DeploymentBackup.TryGetCreatedAt(archive.Name, out _))
            {
                Succeeded(archive.FullName);
                break;
            }
        }
    }

    /// <summary>The archive <paramref name="archivePath"/> was written: its time (from its name) and size.</summary>
    public static void Succeeded(string archivePath)
    {
        if (DeploymentBackup.TryGetCreatedAt(archivePath, out var createdAt))
        {
            LastSuccess.Set(createdAt.ToUnixTimeMilliseconds() / 1000.0);
        }

        LastBytes.Set(new FileInfo(archivePath).Length);
    }
}
