using System.Globalization;
using System.Text.Json.Nodes;

namespace Har.Deployment;

/// <summary>
/// The controller's state file and the registry's <c>current</c> pointer checked against the audit log when it opens
/// (file state): a state lost or older than the log is not resumed, and a pointer behind the log follows it.
/// </summary>
public sealed partial class RolloutController
{
    /// <summary>
    /// With no rollout state on disk while the log records a rollout that never ended, the state file was lost (deleted,
    /// or a restore or volume that left it out) or set aside as older than the log: the rollout cannot be resumed, so the
    /// log records its end (a transition to Aborted, by the system, saying why and what serves). Found from outside:
    /// <c>GET /v1/rollouts/current</c> said there had been no rollout while the history showed it in progress for good,
    /// and a new rollout could start beside it.
    /// </summary>
    /// <param name="lost">What the log records of the registry's latest rollout.</param>
    /// <param name="behindLog">Why the state file was set aside, or <see langword="null"/> when there was none.</param>
    /// <param name="ct">Cancels the append.</param>
    /// <returns>What the log records of that rollout afterwards.</returns>
    private async Task<LoggedRollout?> EndLostRolloutAsync(LoggedRollout? lost, string? behindLog, CancellationToken ct)
    {
        if (lost is null || lost.Phase.IsTerminal())
        {
            return lost;
        }

        var serving = (lost.Phase == RolloutPhase.Promoting ? null : lost.Champion) ?? _registry.CurrentVersion ?? "no version";
        var why = behindLog is null
            ? $"the rollout state ({RolloutStateStore.FileName}) was missing when the controller opened"
            : $"the rollout state ({RolloutStateStore.FileName}) was older than the audit log ({behindLog})";
        var message = $"{why}, so the rollout cannot be resumed from {lost.Phase}: ended as Aborted; the registry's current version {serving} serves. Start the rollout again if it is still wanted.";
        var details = new JsonObject
        {
            ["from"] = lost.Phase.ToString(),
            ["to"] = nameof(RolloutPhase.Aborted),
            ["message"] = message,
            ["state_lost"] = true,
            ["sequence"] = lost.LastSequence + 1,
        };
        if (behindLog is not null)
        {
            details["state_behind_log"] = true;
        }

        await _audit!.AppendAsync(new DeploymentAuditEvent("rollout.transition", "rollout", lost.RolloutId, "warning", SystemActor, _time.GetUtcNow(), details), ct).ConfigureAwait(false);
        Log.LostRolloutEnded(_logger, lost.RolloutId, lost.Phase, message);
        return lost with { Phase = RolloutPhase.Aborted, From = lost.Phase, EndedByOpen = true, LastSequence = lost.LastSequence + 1 };
    }

    /// <summary>
    /// Whether the state file is older than the log (a file-level restore of the registry folder, a volume snapshot): the
    /// log holds later records of its rollout, or a rollout started after it. Resumed, it would decide again what the log
    /// already records as decided, under the same sequence numbers (which the history then ignores), and could serve a
    /// version the log records as rolled back. <see langword="null"/> when the state is current.
    /// </summary>
    private async Task<string?> StateBehindLogAsync(RolloutState state, LoggedRollout? logged, CancellationToken ct)
    {
        if (logged is null)
        {
            return null;
        }

        if (logged.RolloutId == state.RolloutId)
        {
            return logged.LastSequence > state.Sequence
                ? $"the log records rollout {state.RolloutId} up to its record {logged.LastSequence} ({logged.Phase}); the state file up to {state.Sequence} ({state.Phase})"
                : null;
        }

        // A state whose rollout the log does not hold yet is newer than the log's latest: its start is still in its outbox.
        return await _audit!.GetLastSequenceAsync(state.RolloutId, ct).ConfigureAwait(false) < 0
            ? null
            : $"the log records rollout {logged.RolloutId} ({logged.Phase}), started after the state file's {state.RolloutId} ({state.Phase})";
    }

    /// <summary>Renames the state file to <c>rollout.json.behind-log-{UTC time}</c> beside it (kept for the operator) and returns that name.</summary>
    private string SetStateAside(RolloutStateStore files)
    {
        var name = $"{RolloutStateStore.FileName}.behind-log-{_time.GetUtcNow().UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}";
        File.Move(files.StatePath, Path.Combine(files.Directory, name), overwrite: true);
        DurableFile.FsyncDirectory(files.Directory);
        return name;
    }

    /// <summary>
    /// With no rollout running, points <c>current</c> at the version the log says serves (the end of its latest rollout),
    /// when the pointer says otherwise: a pointer restored from an older copy of the registry folder served a version the
    /// log records as replaced, with nothing in the log saying so. The change is audited (<c>registry.current_aligned</c>);
    /// a version the registry cannot serve (missing, or failing verification) leaves the pointer as it is, audited as an
    /// error (<c>registry.current_behind_log</c>).
    /// </summary>
    private async Task AlignCurrentWithLogAsync(LoggedRollout? rollout, CancellationToken ct)
    {
        if (rollout is not { ServedAfterEnd: { } logged })
        {
            return;
        }

        var current = _registry.CurrentVersion;
        if (current == logged)
        {
            return;
        }

        var details = new JsonObject
        {
            ["version"] = logged,
            ["pointer"] = current,
            ["rollout_id"] = rollout.RolloutId,
            ["rollout_phase"] = rollout.Phase.ToString(),
        };
        string? problem;
        try
        {
            var verification = _registry.Verify(logged);
            problem = verification.IsValid ? null : string.Join("; ", verification.Problems);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or KeyNotFoundException)
        {
            problem = ex.Message;
        }

        if (problem is not null)
        {
            var refused = $"The registry's current pointer says {current ?? "nothing"}, but the audit log records {logged} serving since rollout {rollout.RolloutId} ended ({rollout.Phase}); {logged} cannot be served from this registry ({problem}), so {current ?? "nothing"} stays current. Restore the registry from a backup that holds {logged}, or roll out the version that should serve.";
            details["message"] = refused;
            Log.CurrentBehindLog(_logger, refused);
            await TryAppendAsync(new DeploymentAuditEvent("registry.current_behind_log", "registry", _registry.RegistryId, "error", SystemActor, _time.GetUtcNow(), details), ct).ConfigureAwait(false);
            return;
        }

        // Audited before the pointer moves: a log that cannot take the record leaves the pointer as it was.
        var message = $"The registry's current pointer said {current ?? "nothing"}, but the audit log records {logged} serving since rollout {rollout.RolloutId} ended ({rollout.Phase}): the pointer was older than the log (a restored copy of the registry folder?) and now says {logged}.";
        details["message"] = message;
        if (!await TryAppendAsync(new DeploymentAuditEvent("registry.current_aligned", "registry", _registry.RegistryId, "warning", SystemActor, _time.GetUtcNow(), details), ct).ConfigureAwait(false))
        {
            Log.CurrentBehindLog(_logger, $"The registry's current pointer says {current ?? "nothing"}, but the audit log records {logged} serving since rollout {rollout.RolloutId} ended; the log cannot record the change now, so the pointer stays until the next start.");
            return;
        }

        _registry.SetCurrent(logged);
        Log.CurrentAligned(_logger, message);
    }

    private async Task<bool> TryAppendAsync(DeploymentAuditEvent auditEvent, CancellationToken ct)
    {
        try
        {
            await _audit!.AppendAsync(auditEvent, ct).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or UnauthorizedAccessException or ObjectDisposedException)
        {
            Log.AuditAppendFailed(_logger, auditEvent.EventType, ex);
            return false;
        }
    }
}
