using System.Text.Json.Nodes;
using Har.Audit;
using Har.Testing;

namespace Har.Deployment.Tests.Fleet;

/// <summary>
/// A fleet leader persists a rollout state with audit events in its outbox, then stalls before appending them; its
/// successor reads the state and appends them; the stalled leader resumes and appends them too. Found from outside (a
/// SIGSTOPped leader, 1 run in 5): <c>rollout.transition</c> with one outbox sequence twice in the log. Each event must
/// be there once, whichever replica flushes it first and however often.
/// </summary>
public sealed class FleetOutboxTests(PostgresCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OutboxFlushedByAStalledLeaderAndItsSuccessor_EachEventIsInTheLogOnce()
    {
        var cs = await cluster.CreateDatabaseAsync();
        using var store = FleetStore.Open(cs);
        var state = new RolloutState
        {
            RolloutId = "rollout-resumed",
            Strategy = "canary",
            Champion = "1.0.0",
            Candidate = "1.1.0",
            StartedBy = "operator",
            Revision = 1,
            UpdatedAt = new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero).AddTicks(1_234_567),
        };

        // Evidence as analyses write it: doubles that are not short decimals, one in exponent form (the state travels
        // through a jsonb column, which writes numbers its own way).
        RolloutOutbox.Emit(state, "rollout.verdict", "info", "controller", new JsonObject { ["verdict"] = "Fail", ["agreement"] = 0.1 + 0.2, ["p"] = 1e-5 });
        RolloutOutbox.Emit(state, "rollout.rollback", "warning", "controller", new JsonObject
        {
            ["from"] = "1.1.0", ["to"] = "1.0.0", ["trigger"] = "analysis", ["reason"] = "error rate", ["evidence"] = new JsonObject { ["error_rate"] = 2.0 / 3.0 },
        });
        RolloutOutbox.Emit(state, "rollout.transition", "warning", "controller", new JsonObject { ["from"] = "Progressing", ["to"] = "RolledBack", ["message"] = "rolled back" });
        store.Save(state);

        var stalled = store.Load()!;
        var successor = store.Load()!;
        Assert.Equal(3, stalled.Outbox.Count);
        using var stalledLog = AuditLog.Open(new AuditLogOptions { ConnectionString = cs, EnableMetrics = false });
        using var successorLog = AuditLog.Open(new AuditLogOptions { ConnectionString = cs, EnableMetrics = false });
        var stalledOutbox = new RolloutOutbox(new AuditLogSink(stalledLog), TimeProvider.System);
        var successorOutbox = new RolloutOutbox(new AuditLogSink(successorLog), TimeProvider.System);

        // Both at once (the stalled leader resumed mid-recovery), then the stalled leader once more from what it held.
        await Task.WhenAll(
            Task.Run(() => successorOutbox.RecoverAsync(successor, Ct), Ct),
            Task.Run(() => stalledOutbox.FlushAsync(stalled, Ct), Ct));
        var again = store.Load()!;
        await stalledOutbox.FlushAsync(again, Ct);

        var entries = stalledLog.Query(new AuditQuery { EntityId = "rollout-resumed", PageSize = 100 }).Entries;
        Assert.Equal(4, entries.Count); // three events and the rollback record
        Assert.Single(entries, e => e.Kind == AuditRecordKind.Rollback);
        Assert.Equal(
            ["rollout.verdict", "rollout.rollback", "rollout.transition"],
            entries.Where(e => e.Kind == AuditRecordKind.Event).Select(e => e.EventType));
        Assert.Equal(
            [0L, 1L, 2L],
            entries.Where(e => e.Kind == AuditRecordKind.Event).Select(e => ((AuditEvent)e.Record).ActionDetails.GetProperty("sequence").GetInt64()));
        Assert.Equal(2, await new AuditLogSink(successorLog).GetLastSequenceAsync("rollout-resumed", Ct));
        Assert.True(AuditLog.VerifyDatabase(cs, null).IsValid);
    }
}
