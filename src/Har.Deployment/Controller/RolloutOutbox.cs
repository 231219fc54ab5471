using System.Text.Json.Nodes;

namespace Har.Deployment;

/// <summary>
/// The transactional outbox of rollout audit events: events are added to the state before it is
/// persisted, and appended to the audit log only after; after a crash, the events already in the log
/// (by sequence number) are dropped and the rest appended, so each is written exactly once.
/// </summary>
internal sealed class RolloutOutbox(IDeploymentAuditSink? audit, TimeProvider time)
{
    /// <summary>Gets whether the audit log can record now (always, without a log).</summary>
    public bool CanRecord => audit is null || audit.IsWritable;

    /// <summary>Drops the events a crash left in the outbox that are already in the log, then appends the rest.</summary>
    public async Task RecoverAsync(RolloutState state, CancellationToken ct)
    {
        if (state.Outbox.Count > 0 && audit is not null)
        {
            var last = await audit.GetLastSequenceAsync(state.RolloutId, ct).ConfigureAwait(false);
            state.Outbox.RemoveAll(e => e.Sequence <= last);
        }

        await FlushAsync(state, ct).ConfigureAwait(false);
    }

    /// <summary>Appends the persisted state's pending events, oldest first.</summary>
    public async Task FlushAsync(RolloutState? state, CancellationToken ct)
    {
        if (state is null)
        {
            return;
        }

        while (state.Outbox.Count > 0)
        {
            var entry = state.Outbox[0];
            if (audit is not null)
            {
                // Once: a fleet leader that stalled after persisting this state may flush it after its successor did.
                await audit.AppendOnceAsync(entry.ToEvent(state.RolloutId), ct).ConfigureAwait(false);
            }

            state.Outbox.RemoveAt(0);
        }
    }

    public static void Emit(RolloutState state, string eventType, string severity, string actor, JsonObject details)
    {
        state.Sequence++;
        state.Outbox.Add(new RolloutState.OutboxEntry(state.Sequence, eventType, severity, actor, state.UpdatedAt, details));
    }

    public static void EmitCommand(RolloutState state, RolloutCommand command, DateTimeOffset now)
    {
        state.UpdatedAt = now;
        Emit(state, "rollout.command", "info", command.Actor, new JsonObject
        {
            ["command"] = command.Kind.ToString(),
            ["reason"] = command.Reason,
            ["expected_phase"] = command.ExpectedPhase?.ToString(),
            ["expected_revision"] = command.ExpectedRevision,
            ["candidate"] = command.Candidate,
            ["strategy"] = command.Strategy,
            ["accepted"] = true,
        });
    }

    /// <summary>Audits a refused command (it changes no state, so it bypasses the outbox).</summary>
    public async Task RejectAsync(RolloutCommand command, RolloutState? state, string outcome, CancellationToken ct, string? message = null)
    {
        if (audit is null)
        {
            return;
        }

        var entity = state?.RolloutId ?? "none";
        await audit.AppendAsync(
            new DeploymentAuditEvent("rollout.command", "rollout", entity, "warning", command.Actor, time.GetUtcNow(), new JsonObject
            {
                ["command"] = command.Kind.ToString(),
                ["reason"] = command.Reason,
                ["expected_phase"] = command.ExpectedPhase?.ToString(),
                ["expected_revision"] = command.ExpectedRevision,
                ["candidate"] = command.Candidate,
                ["actual_phase"] = state?.Phase.ToString(),
                ["actual_revision"] = state?.Revision ?? 0,
                ["accepted"] = false,
                ["outcome"] = outcome,
                ["message"] = message,
            }),
            ct).ConfigureAwait(false);
    }
}
