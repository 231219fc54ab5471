using System.Text.Json;
using Har.Audit;

namespace Har.Deployment;

/// <summary>The audit seam on Har.Audit's tamper-evident log: every event becomes a generic audit event; rollbacks also get a rollback record.</summary>
internal sealed class AuditLogSink(AuditLog log) : IDeploymentAuditSink
{
    public AuditLog Log { get; } = log;

    public bool IsWritable => Log.State == AuditLogState.Writable;

    public ValueTask AppendAsync(DeploymentAuditEvent auditEvent, CancellationToken cancellationToken) => Append(auditEvent, once: false, cancellationToken);

    // The outbox's events carry the time they were decided and their sequence: the same event flushed twice (by a leader
    // that stalled after persisting it and resumed after a new leader had flushed it) is the same record, and the log
    // keeps one. Found from outside: a resumed leader wrote a rollout.transition a second time (1 run in 5).
    public ValueTask AppendOnceAsync(DeploymentAuditEvent auditEvent, CancellationToken cancellationToken) => Append(auditEvent, once: true, cancellationToken);

    private async ValueTask Append(DeploymentAuditEvent auditEvent, bool once, CancellationToken cancellationToken)
    {
        using var details = JsonDocument.Parse(auditEvent.Details.ToJsonString());
        if (auditEvent.EventType == "rollout.rollback")
        {
            var d = auditEvent.Details;
            using var evidence = JsonDocument.Parse(d["evidence"] is { } e ? e.ToJsonString() : "{}");
            var rollback = new RollbackRecord(
                rollbackId: $"{auditEvent.EntityId}#{(long?)d["sequence"] ?? 0}",
                model: (string?)d["model"] ?? auditEvent.EntityId,
                fromVersion: (string)d["from"]!,
                toVersion: (string)d["to"]!,
                trigger: $"{(string?)d["trigger"]}: {(string?)d["reason"]}",
                evidence: evidence.RootElement.ValueKind == JsonValueKind.Object ? evidence.RootElement.Clone() : JsonDocument.Parse("{}").RootElement.Clone(),
                @operator: auditEvent.Actor,
                incident: (string?)d["incident_id"] is { } incident ? new IncidentReference(incident, $"/v1/incidents/{incident}") : null)
            {
                Timestamp = auditEvent.Timestamp,
            };
            await (once ? Log.AppendOnceAsync(rollback, cancellationToken) : Log.AppendAsync(rollback, cancellationToken)).ConfigureAwait(false);
        }

        var record = new AuditEvent
        {
            EventType = auditEvent.EventType,
            EntityType = auditEvent.EntityType,
            EntityId = auditEvent.EntityId,
            Severity = auditEvent.Severity switch
            {
                "critical" => AuditSeverity.Critical,
                "warning" => AuditSeverity.Warning,
                "error" => AuditSeverity.Error,
                _ => AuditSeverity.Info,
            },
            ActionDetails = details.RootElement.Clone(),
            Actor = auditEvent.Actor,
            Timestamp = auditEvent.Timestamp,
        };
        await (once ? Log.AppendOnceAsync(record, cancellationToken) : Log.AppendAsync(record, cancellationToken)).ConfigureAwait(false);
    }

    public ValueTask AppendRecordAsync(AuditRecord record, CancellationToken cancellationToken) => new(Log.AppendAsync(record, cancellationToken));

    public ValueTask<long> GetLastSequenceAsync(string rolloutId, CancellationToken cancellationToken)
    {
        long last = -1;
        foreach (var entry in Entries(token => new AuditQuery { EntityId = rolloutId, EntityType = "rollout", Kind = AuditRecordKind.Event, PageSize = 500, PageToken = token }, cancellationToken))
        {
            // Only what the outbox writes (rollout.*, deployment.completed): another writer's event about the same
            // rollout, with a "sequence" of its own, must not make the recovery drop events it never appended.
            if (entry.Record is AuditEvent e && IsOutboxEvent(e.EventType) && e.ActionDetails.TryGetProperty("sequence", out var s) && s.TryGetInt64(out var seq))
            {
                last = Math.Max(last, seq);
            }
        }

        return ValueTask.FromResult(last);
    }

    public ValueTask<LoggedRollout?> GetLatestRolloutAsync(string registryId, CancellationToken cancellationToken)
    {
        // The rollout whose first transition comes last in the log is the one started most recently; another registry's
        // (replicas sharing one log, each with its own rollouts) are not this one's to judge.
        string? latest = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in Entries(token => new AuditQuery { EventType = "rollout.transition", EntityType = "rollout", Kind = AuditRecordKind.Event, PageSize = 500, PageToken = token }, cancellationToken))
        {
            if (seen.Add(entry.EntityId) && entry.Record is AuditEvent e && (Text(e.ActionDetails, "registry_id") is not { } owner || owner == registryId))
            {
                latest = entry.EntityId;
            }
        }

        if (latest is null)
        {
            return ValueTask.FromResult<LoggedRollout?>(null);
        }

        // Its outbox records in log order; one appended again or out of order (a resumed fleet leader's, with a sequence
        // not above the highest seen) says nothing new, as in the history.
        RolloutPhase phase = RolloutPhase.Pending;
        RolloutPhase? from = null;
        string? champion = null, candidate = null, rollbackTarget = null;
        bool promoted = false, endedByOpen = false;
        long last = -1;
        foreach (var entry in Entries(token => new AuditQuery { EntityId = latest, EntityType = "rollout", Kind = AuditRecordKind.Event, PageSize = 500, PageToken = token }, cancellationToken))
        {
            if (entry.Record is not AuditEvent e || !IsOutboxEvent(e.EventType))
            {
                continue;
            }

            if (e.ActionDetails.TryGetProperty("sequence", out var s) && s.TryGetInt64(out var sequence))
            {
                if (sequence <= last)
                {
                    continue;
                }

                last = sequence;
            }

            var d = e.ActionDetails;
            if (e.EventType == "rollout.rollback")
            {
                rollbackTarget = Text(d, "to") ?? rollbackTarget;
            }
            else if (e.EventType == "rollout.transition" && Enum.TryParse<RolloutPhase>(Text(d, "to"), out var to))
            {
                from = Enum.TryParse<RolloutPhase>(Text(d, "from"), out var f) ? f : null;
                phase = to;
                promoted |= to == RolloutPhase.Promoting;
                endedByOpen = d.TryGetProperty("state_lost", out var lost) && lost.ValueKind == JsonValueKind.True;
                if (from is null)
                {
                    champion = Text(d, "champion");
                    candidate = Text(d, "candidate");
                }
            }
        }

        return ValueTask.FromResult<LoggedRollout?>(new LoggedRollout(latest, phase, from, champion, candidate, promoted, rollbackTarget, endedByOpen, last));
    }

    private IEnumerable<AuditEntry> Entries(Func<string?, AuditQuery> query, CancellationToken cancellationToken)
    {
        string? token = null;
        do
        {
            cancellationToken.ThrowIfCancellationRequested();
            var page = Log.Query(query(token));
            foreach (var entry in page.Entries)
            {
                yield return entry;
            }

            token = page.NextPageToken;
        }
        while (token is not null);
    }

    private static string? Text(JsonElement details, string name) =>
        details.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>Whether an event type is one the rollout outbox writes (<see cref="RolloutOutbox"/>).</summary>
    internal static bool IsOutboxEvent(string eventType) =>
        eventType.StartsWith("rollout.", StringComparison.Ordinal) || eventType == RolloutController.DeploymentCompletedEvent;
}
