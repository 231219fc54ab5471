namespace Har.Service.Infrastructure;

/// <summary>
/// A tally written to the audit log once per interval and once at shutdown (what was counted since the last flush), so
/// the log grows with time, not with traffic: <see cref="Security.RefusalSummaryService"/>, <see cref="FeedbackAuditSummary"/>.
/// </summary>
internal abstract class PeriodicAuditSummary(TimeProvider time, TimeSpan interval) : BackgroundService
{
    /// <summary>Gets the clock the intervals are read from.</summary>
    protected TimeProvider Time => time;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync(CancellationToken.None);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await FlushAsync(cancellationToken);
    }

    /// <summary>Writes what was counted since the last flush (nothing when nothing was); never throws for the log's failures.</summary>
    protected abstract Task FlushAsync(CancellationToken ct);
}
