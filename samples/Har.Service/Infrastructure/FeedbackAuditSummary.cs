using System.Globalization;
using System.Text.Json;
using Har.Audit;
using Microsoft.Extensions.Options;

namespace Har.Service.Infrastructure;

/// <summary>
/// Audits feedback requests (<c>POST /v1/feedback</c>, <c>POST /v1/streams/{id}/feedback</c>) as one <c>http.feedback</c>
/// entry per labeller key per <see cref="ServiceOptions.FeedbackAuditInterval"/> (and at shutdown): how many requests, by
/// status, and how many labels, streams and labelled windows they carried. Labels steer a rollout's accuracy gate, so who
/// sent how many is on the record; one entry per request was most of the log, though (found from outside: 88 % of the
/// entries of a 48-minute run with a labeller posting every 2 s, about 1.5 million a month, and a restart's time grows
/// with the log). The labels themselves are kept in the feedback journal.
/// </summary>
internal sealed class FeedbackAuditSummary(
    IServiceProvider services,
    TimeProvider time,
    IOptions<ServiceOptions> options,
    ILogger<FeedbackAuditSummary> logger) : PeriodicAuditSummary(time, options.Value.FeedbackAuditInterval)
{
    public const string EventType = "http.feedback";

    /// <summary>Actors kept apart in one interval; more (only keys with the labeller role get here) share one entry.</summary>
    public const int MaxActors = 1000;

    private const string OtherActors = "(other keys)";

    private readonly Lock _gate = new();
    private Dictionary<string, Totals> _byActor = new(StringComparer.Ordinal);
    private DateTimeOffset _since = time.GetUtcNow();

    /// <summary>Counts one feedback request that got past authentication and authorization, with what its endpoint added.</summary>
    public void Add(string actor, int status, IReadOnlyDictionary<string, object>? details)
    {
        lock (_gate)
        {
            if (!_byActor.TryGetValue(actor, out var totals))
            {
                if (_byActor.Count >= MaxActors)
                {
                    actor = OtherActors;
                }

                totals = _byActor.TryGetValue(actor, out var other) ? other : _byActor[actor] = new Totals();
            }

            totals.Requests++;
            totals.ByStatus[status] = totals.ByStatus.GetValueOrDefault(status) + 1;
            totals.Labels += Number(details, "labels");
            totals.Streams += Number(details, "streams");
            totals.LabelledWindows += Number(details, "labelled_windows");
        }
    }

    protected override async Task FlushAsync(CancellationToken ct)
    {
        Dictionary<string, Totals> drained;
        var now = Time.GetUtcNow();
        DateTimeOffset since;
        lock (_gate)
        {
            drained = _byActor;
            _byActor = new(StringComparer.Ordinal);
            since = _since;
            _since = now;
        }

        foreach (var (actor, totals) in drained.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var record = new AuditEvent
            {
                EventType = EventType,
                EntityType = "endpoint",
                EntityId = "feedback",
                Severity = totals.ByStatus.Keys.Any(s => s >= 500) ? AuditSeverity.Error : totals.ByStatus.Keys.Any(s => s >= 400) ? AuditSeverity.Warning : AuditSeverity.Info,
                ActionDetails = JsonSerializer.SerializeToElement(new Dictionary<string, object>
                {
                    ["from"] = since,
                    ["to"] = now,
                    ["requests"] = totals.Requests,
                    ["by_status"] = totals.ByStatus.OrderBy(kv => kv.Key).ToDictionary(kv => kv.Key.ToString(CultureInfo.InvariantCulture), kv => kv.Value),
                    ["labels"] = totals.Labels,
                    ["streams"] = totals.Streams,
                    ["labelled_windows"] = totals.LabelledWindows,
                }),
                Actor = actor,
                Timestamp = now,
            };

            try
            {
                await services.GetRequiredService<AuditLog>().AppendAsync(record, ct);
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or UnauthorizedAccessException or OperationCanceledException)
            {
                Log.FeedbackAuditFailed(logger, ex, actor, totals.Requests);
            }
        }
    }

    private static long Number(IReadOnlyDictionary<string, object>? details, string name) =>
        details is not null && details.TryGetValue(name, out var value) && value is int or long ? Convert.ToInt64(value, CultureInfo.InvariantCulture) : 0;

    private sealed class Totals
    {
        public long Requests { get; set; }

        public SortedDictionary<int, long> ByStatus { get; } = [];

        public long Labels { get; set; }

        public long Streams { get; set; }

        public long LabelledWindows { get; set; }
    }
}
