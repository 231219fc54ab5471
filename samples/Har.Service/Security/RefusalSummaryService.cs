using System.Text.Json;
using Har.Audit;
using Har.Service.Infrastructure;
using Microsoft.Extensions.Options;

namespace Har.Service.Security;

/// <summary>
/// Writes at most one audit entry per <see cref="ServiceOptions.RefusalSummaryInterval"/> (and one at shutdown)
/// summarizing the refused requests of that interval: totals by status and the <see cref="TopClients"/> clients
/// with the most refusals. Its size is bounded whatever the traffic.
/// </summary>
internal sealed class RefusalSummaryService(
    RefusalTracker tracker,
    IServiceProvider services,
    TimeProvider time,
    IOptions<ServiceOptions> options,
    ILogger<RefusalSummaryService> logger) : PeriodicAuditSummary(time, options.Value.RefusalSummaryInterval)
{
    public const int TopClients = 20;
    public const string EventType = "http.refusals";

    private DateTimeOffset _since = time.GetUtcNow();

    protected override async Task FlushAsync(CancellationToken ct)
    {
        var clients = tracker.Drain();
        var now = Time.GetUtcNow();
        var since = _since;
        _since = now;
        if (clients.Count == 0)
        {
            return;
        }

        var byStatus = new SortedDictionary<int, long>();
        long total = 0;
        foreach (var (_, n, statuses) in clients)
        {
            total += n;
            foreach (var (status, count) in statuses)
            {
                byStatus[status] = byStatus.GetValueOrDefault(status) + count;
            }
        }

        var details = JsonSerializer.SerializeToElement(new Dictionary<string, object>
        {
            ["from"] = since,
            ["to"] = now,
            ["total"] = total,
            ["by_status"] = byStatus.ToDictionary(kv => kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => kv.Value),
            ["clients"] = clients.Count,
            ["top_clients"] = clients.Take(TopClients).Select(c => new Dictionary<string, object>
            {
                ["client"] = c.Client,
                ["total"] = c.Total,
                ["by_status"] = c.ByStatus.ToDictionary(kv => kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => kv.Value),
            }).ToArray(),
        });
        var record = new AuditEvent
        {
            EventType = EventType,
            EntityType = "service",
            EntityId = "refused-requests",
            Severity = AuditSeverity.Warning,
            ActionDetails = details,
            Actor = "har-service",
            Timestamp = now,
        };

        try
        {
            await services.GetRequiredService<AuditLog>().AppendAsync(record, ct);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or UnauthorizedAccessException or OperationCanceledException)
        {
            Log.RefusalSummaryFailed(logger, ex, total);
        }
    }
}
