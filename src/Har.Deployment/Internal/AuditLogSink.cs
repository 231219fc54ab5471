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
        string? token = null;
        do
        {
            cancellationToken.ThrowIfCancellationRequested();
            var page = Log.Query(new AuditQuery { EntityId = rolloutId, EntityType = "rollout", Kind = AuditRecordKind.Event, PageSize = 500, PageToken = token });
            foreach (var entry in page.Entries)
            {
                // Only what the outbox writes (rollout.*, deployment.completed): another writer's event about the same
                // rollout, with a "sequence" of its own, must not make the recovery drop events it never appended.
                if (entry.Record is AuditEvent e && IsOutboxEvent(e.EventType) && e.ActionDetails.TryGetProperty("sequence", out var s) && s.TryGetInt64(out var seq))
                {
                    last = Math.Max(last, seq);
                }
            }

            token = page.NextPageToken;
        }
        while (token is not null);

        return ValueTask.FromResult(last);
    }

    public ValueTask<(string RolloutId, RolloutPhase Phase)?> GetUnfinishedRolloutAsync(CancellationToken cancellationToken)
    {
        string? latest = null;
        var phases = new Dictionary<string, RolloutPhase>(StringComparer.Ordinal);
        string? token = null;
        do
        {
            cancellationToken.ThrowIfCancellationRequested();
            var page = Log.Query(new AuditQuery { EventType = "rollout.transition", EntityType = "rollout", Kind = AuditRecordKind.Event, PageSize = 500, PageToken = token });
            foreach (var entry in page.Entries)
            {
                if (entry.Record is AuditEvent e && e.ActionDetails.TryGetProperty("to", out var to) && Enum.TryParse<RolloutPhase>(to.GetString(), out var phase))
                {
                    if (!phases.ContainsKey(e.EntityId))
                    {
                        latest = e.EntityId; // started after every rollout seen so far
                    }

                    phases[e.EntityId] = phase;
                }
            }

            token = page.NextPageToken;
        }
        while (token is not null);

        return ValueTask.FromResult(latest is not null && !phases[latest].IsTerminal() ? (latest, phases[latest]) : ((string, RolloutPhase)?)null);
    }

    /// <summary>Whether an event type is one the rollout outbox writes (<see cref="RolloutOutbox"/>).</summary>
    internal static bool IsOutboxEvent(string eventType) =>
        eventType.StartsWith("rollout.", StringComparison.Ordinal) || eventType == RolloutController.DeploymentCompletedEvent;
}
