using System.Text.Json;
using Har.Audit;
using Prometheus;

namespace Har.Service.Infrastructure;

/// <summary>
/// Delivery metrics (deployment frequency, lead time, change failure rate, time to restore), derived from the audit
/// log, the durable record of every registration and rollout: on start the whole log is read, then each new entry
/// once (every <see cref="ScanInterval"/>), so the counters are the registry's whole history and agree after a restart.
/// <list type="bullet">
/// <item><c>har_delivery_deployments_total</c>: candidates promoted to all traffic (a <c>rollout.transition</c> to Succeeded).</item>
/// <item><c>har_delivery_changes_total</c> / <c>har_delivery_change_failures_total</c>: rollouts that ended (succeeded,
/// rolled back or failed; an abort withdraws a change and is not counted) / rollouts rolled back or failed, including
/// a rollback after promotion; each rollout counts at most once in each.</item>
/// <item><c>har_delivery_rollouts_total{outcome}</c>: terminal transitions by outcome (aborted included).</item>
/// <item><c>har_delivery_lead_time_seconds</c>: the version's deployment record (registration) to its promotion.</item>
/// <item><c>har_delivery_time_to_restore_seconds</c>: failure detected (the <c>rollout.rollback</c> event: the failing
/// analysis, or the operator's command) to the champion serving alone (the transition to RolledBack).</item>
/// </list>
/// </summary>
internal sealed class DeliveryMetrics(IServiceProvider services, TimeProvider time, ILogger<DeliveryMetrics> logger) : BackgroundService
{
    public static readonly TimeSpan ScanInterval = TimeSpan.FromSeconds(2);

    private const string TransitionEvent = "rollout.transition";
    private const string RollbackEvent = "rollout.rollback";

    private static readonly string[] OutcomeNames = ["succeeded", "rolled_back", "aborted", "failed"];

    private static readonly Counter Deployments = Metrics.CreateCounter(
        "har_delivery_deployments_total", "Candidates promoted to serve all traffic (deployment frequency), from the audit log.", Hidden());

    private static readonly Counter Changes = Metrics.CreateCounter(
        "har_delivery_changes_total", "Rollouts that ended succeeded, rolled back or failed (aborted ones are withdrawn changes), from the audit log.", Hidden());

    private static readonly Counter ChangeFailures = Metrics.CreateCounter(
        "har_delivery_change_failures_total", "Rollouts rolled back (also after promotion) or failed: the numerator of the change failure rate.", Hidden());

    private static readonly Counter Outcomes = Metrics.CreateCounter(
        "har_delivery_rollouts_total", "Rollouts reaching a terminal phase, by outcome (succeeded, rolled_back, aborted, failed).", Hidden("outcome"));

    private static readonly Histogram LeadTime = Metrics.CreateHistogram(
        "har_delivery_lead_time_seconds",
        "Lead time of a change: the version's registration (deployment record) to its promotion to all traffic.",
        new HistogramConfiguration { SuppressInitialValue = true, Buckets = [60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400] });

    private static readonly Histogram TimeToRestore = Metrics.CreateHistogram(
        "har_delivery_time_to_restore_seconds",
        "Time to restore: a failure detected (the rollback decision: failing analysis or operator command) to the champion serving alone.",
        new HistogramConfiguration { SuppressInitialValue = true, Buckets = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600] });

    private readonly Dictionary<string, DateTimeOffset> _registeredAt = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Rollout> _rollouts = new(StringComparer.Ordinal);
    private long _next;
    private bool _published;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                Scan(services.GetRequiredService<AuditLog>());
                if (!_published)
                {
                    Publish();
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or InvalidDataException)
            {
                // The log cannot be opened or read now (read-only or full disk, damaged entry): /ready says so; retry.
                Log.DeliveryMetricsUnavailable(logger, ex);
            }

            await Task.Delay(ScanInterval, time, stoppingToken);
        }
    }

    /// <summary>
    /// The series are published only once the whole log has been read: after a restart Prometheus sees a gap, then
    /// the same totals, never a drop to 0 and a climb back (which <c>increase()</c> would count as new deliveries).
    /// </summary>
    private static CounterConfiguration Hidden(params string[] labels) => new() { SuppressInitialValue = true, LabelNames = labels };

    private void Publish()
    {
        Deployments.Publish();
        Changes.Publish();
        ChangeFailures.Publish();
        foreach (var outcome in OutcomeNames)
        {
            Outcomes.WithLabels(outcome).Publish();
        }

        LeadTime.Publish();
        TimeToRestore.Publish();
        _published = true;
    }

    /// <summary>Reads the entries appended since the last scan, in order.</summary>
    private void Scan(AuditLog log)
    {
        var count = log.Count;
        for (; _next < count; _next++)
        {
            var entry = log.Get(_next);
            if (entry.Kind == AuditRecordKind.Deployment)
            {
                Registered(entry);
            }
            else if (entry.Record is AuditEvent { EntityType: "rollout", EventType: TransitionEvent or RollbackEvent } e)
            {
                // Only the controller's own events (their namespace is reserved): an operator's note about a rollout
                // (any other event type, entity_type "rollout") neither counts nor makes an entry here.
                Apply(entry.EntityId, e);
            }
        }
    }

    private void Registered(AuditEntry entry)
    {
        using var json = JsonDocument.Parse(entry.Record.ToCanonicalJson());
        if (json.RootElement.TryGetProperty("model", out var model) && model.TryGetProperty("version", out var version) && version.GetString() is { } v)
        {
            _registeredAt.TryAdd(v, entry.Timestamp);
        }
    }

    private void Apply(string rolloutId, AuditEvent e)
    {
        if (!_rollouts.TryGetValue(rolloutId, out var rollout))
        {
            _rollouts[rolloutId] = rollout = new Rollout();
        }

        var details = e.ActionDetails;
        if (e.EventType == RollbackEvent)
        {
            rollout.FailureDetectedAt ??= e.Timestamp;
            return;
        }

        if (Text(details, "from") is null && Text(details, "candidate") is { } candidate)
        {
            rollout.Candidate = candidate;
        }

        switch (Text(details, "to"))
        {
            case "Succeeded":
                Outcomes.WithLabels("succeeded").Inc();
                Deployments.Inc();
                CountChange(rollout);
                if (rollout.Candidate is { } version && _registeredAt.TryGetValue(version, out var registered) && e.Timestamp >= registered)
                {
                    LeadTime.Observe((e.Timestamp - registered).TotalSeconds);
                }

                break;
            case "RolledBack":
                Outcomes.WithLabels("rolled_back").Inc();
                CountChange(rollout);
                CountFailure(rollout);
                if (rollout.FailureDetectedAt is { } detected && e.Timestamp >= detected)
                {
                    TimeToRestore.Observe((e.Timestamp - detected).TotalSeconds);
                }

                break;
            case "Failed":
                Outcomes.WithLabels("failed").Inc();
                CountChange(rollout);
                CountFailure(rollout);
                break;
            case "Aborted":
                Outcomes.WithLabels("aborted").Inc();
                break;
        }
    }

    private static void CountChange(Rollout rollout)
    {
        if (!rollout.Counted)
        {
            rollout.Counted = true;
            Changes.Inc();
        }
    }

    private static void CountFailure(Rollout rollout)
    {
        if (!rollout.Failed)
        {
            rollout.Failed = true;
            ChangeFailures.Inc();
        }
    }

    private static string? Text(JsonElement details, string name) =>
        details.ValueKind == JsonValueKind.Object && details.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private sealed class Rollout
    {
        public string? Candidate { get; set; }

        public DateTimeOffset? FailureDetectedAt { get; set; }

        public bool Counted { get; set; }

        public bool Failed { get; set; }
    }
}
