using System.Text.Json;
using Har.Audit;

namespace Har.Deployment.Tests.Internal;

/// <summary>
/// The rollout outbox's recovery asks the log for the last sequence it holds of a rollout and drops the events up to
/// it. Only the outbox's own events may answer: an event another writer (an operator through the API) appended about
/// the same rollout, with a "sequence" member in its details, made the recovery drop events never written.
/// </summary>
public sealed class AuditLogSinkTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("har-audit-sink-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task GetLastSequenceAsync_OtherEventsAboutTheRollout_AreNotTheOutboxs()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var log = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(_root, "audit"), EnableMetrics = false });
        var sink = new AuditLogSink(log);
        Assert.Equal(-1, await sink.GetLastSequenceAsync("rollout-7", ct));

        await log.AppendAsync(Event("rollout.transition", "rollout", "rollout-7", """{"sequence": 3, "to": "Progressing"}"""), ct);
        await log.AppendAsync(Event("ops.note", "rollout", "rollout-7", """{"sequence": 9999}"""), ct);
        await log.AppendAsync(Event("rollout.transition", "model", "rollout-7", """{"sequence": 8888}"""), ct);
        Assert.Equal(3, await sink.GetLastSequenceAsync("rollout-7", ct));

        await log.AppendAsync(Event("deployment.completed", "rollout", "rollout-7", """{"sequence": 4}"""), ct);
        Assert.Equal(4, await sink.GetLastSequenceAsync("rollout-7", ct));
    }

    private static AuditEvent Event(string type, string entityType, string entityId, string details) => new()
    {
        EventType = type,
        EntityType = entityType,
        EntityId = entityId,
        Severity = AuditSeverity.Info,
        ActionDetails = JsonDocument.Parse(details).RootElement.Clone(),
        Actor = "test",
        Timestamp = DateTimeOffset.UnixEpoch,
    };
}
