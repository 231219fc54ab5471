using System.Collections.Concurrent;

namespace Har.Deployment.Tests.Support;

/// <summary>Collects audit events in memory (for state-machine tests; the audit-content test uses Har.Audit's real log).</summary>
internal sealed class MemoryAuditSink : IDeploymentAuditSink
{
    private readonly ConcurrentQueue<DeploymentAuditEvent> _events = new();

    public IReadOnlyList<DeploymentAuditEvent> Events => [.. _events];

    /// <summary>Gets or sets whether the sink reports that it can record (false: as a log on a read-only or full disk).</summary>
    public bool IsWritable { get; set; } = true;

    public ValueTask AppendAsync(DeploymentAuditEvent auditEvent, CancellationToken cancellationToken)
    {
        _events.Enqueue(auditEvent);
        return ValueTask.CompletedTask;
    }

    public List<Har.Audit.AuditRecord> Records { get; } = [];

    public ValueTask AppendRecordAsync(Har.Audit.AuditRecord record, CancellationToken cancellationToken)
    {
        lock (Records)
        {
            Records.Add(record);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<long> GetLastSequenceAsync(string rolloutId, CancellationToken cancellationToken)
    {
        long last = -1;
        foreach (var e in _events)
        {
            if (e.EntityId == rolloutId && e.Details["sequence"] is { } s)
            {
                last = Math.Max(last, s.GetValue<long>());
            }
        }

        return ValueTask.FromResult(last);
    }

    public IEnumerable<DeploymentAuditEvent> OfType(string eventType) => Events.Where(e => e.EventType == eventType);
}
