using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Har.Audit.Health;

/// <summary>
/// Signs a checkpoint at start when the log grew since its latest one (the entries a crashed process appended after
/// its last checkpoint), every <see cref="AuditLogOptions.CheckpointInterval"/> in which the log grew, and at shutdown
/// (see <c>HarAuditBuilder.AddCheckpointSigning</c>). Verifies before signing; never signs over a bad log.
/// </summary>
internal sealed class CheckpointSigner(IServiceProvider services, IOptions<AuditLogOptions> options, ILoggerFactory? loggers = null, TimeProvider? time = null)
    : BackgroundService
{
    /// <summary>How often the whole log (not only the entries a checkpoint adds) is verified before signing.</summary>
    internal static readonly TimeSpan FullVerificationInterval = TimeSpan.FromHours(1);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ILogger _logger = loggers?.CreateLogger<CheckpointSigner>() ?? NullLogger<CheckpointSigner>.Instance;
    private readonly Lock _signLock = new();
    private AuditSigningKey? _key;
    private DateTimeOffset? _lastFull;
    private PeriodicTimer? _timer;
    private volatile bool _failing;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Before the first interval, within the host's start (before requests are served): a process that crashes sooner
        // than one interval after its start (a crash loop, frequent kills) would otherwise never sign, and the entries
        // appended since the last checkpoint could be cut off the log unnoticed.
        SignIfGrown(incremental: true);

        // The interval starts now, not when ExecuteAsync gets a thread (it runs on the thread pool): a tick that falls due
        // before then is kept by the timer, not lost.
        _timer ??= new PeriodicTimer(options.Value.CheckpointInterval, _time);
        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        SignIfGrown();
    }

    public override void Dispose()
    {
        _timer?.Dispose();
        _key?.Dispose();
        base.Dispose();
    }

    /// <summary>Signs a checkpoint if the log grew since the latest one; returns the size signed, or null.</summary>
    /// <param name="incremental">Verify only the entries the checkpoint adds: the pass at start (so a large log does not hold up the host's start) and the retries after an I/O failure. The interval's passes verify the whole log, the first one and then hourly.</param>
    internal long? SignIfGrown(bool incremental = false)
    {
        lock (_signLock)
        {
            AuditLog log;
            try
            {
                log = services.GetRequiredService<AuditLog>();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                Log.CheckpointRefused(_logger, options.Value.Directory, $"the log cannot be opened: {ex.Message}");
                _failing = true;
                return null;
            }

            try
            {
                var latest = log.LatestCheckpoint;
                if (log.Count == 0 || (latest is not null && latest.TreeSize == log.Count))
                {
                    log.SignerProblem = null;
                    _failing = false;
                    return null;
                }

                _key ??= AuditSigningKey.Load(options.Value.SigningKeyPath!);
                var now = _time.GetUtcNow();
                var full = !incremental && (_lastFull is null || now - _lastFull.Value >= FullVerificationInterval);
                var checkpoint = log.CreateVerifiedCheckpoint(_key, full);
                if (full)
                {
                    _lastFull = now;
                }

                log.SignerProblem = null;
                _failing = false;
                return checkpoint.TreeSize;
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException or FormatException or InvalidOperationException)
            {
                log.SignerProblem = ex.Message;
                _failing = ex is IOException or UnauthorizedAccessException; // a disk or a key file: may clear soon; damage does not
                log.CheckpointFailed();
                Log.CheckpointRefused(_logger, log.Directory, ex.Message);
                return null;
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var timer = _timer ??= new PeriodicTimer(options.Value.CheckpointInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                SignIfGrown();

                // A pass that failed on I/O (a full or read-only disk, an unreadable key) is retried from the log's retry
                // interval on, doubling up to the checkpoint interval, not only a whole interval later: found from outside,
                // /ready kept saying "checkpoints are not being signed" for up to a minute after the disk was freed and
                // appends had resumed. Retries verify only what they add (the hourly full verification stays on the ticks).
                var wait = options.Value.RetryInterval;
                while (_failing && wait < options.Value.CheckpointInterval)
                {
                    await Task.Delay(wait, _time, stoppingToken).ConfigureAwait(false);
                    SignIfGrown(incremental: true);
                    wait *= 2;
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down: StopAsync signs once more
        }
    }
}
