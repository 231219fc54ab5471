using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Har.Deployment;

/// <summary>Operator commands: checks (expected phase and revision, allowed phases), start, and the pending phase.</summary>
public sealed partial class RolloutController
{
    private async Task ExecuteCoreAsync(RolloutCommand command, CancellationToken ct)
    {
        // An operation is never applied without its audit record: while the log cannot write (read-only or full
        // disk), every command is refused before any side effect, and the host answers 503.
        if (!_outbox.CanRecord)
        {
            throw new Har.Audit.AuditLogUnavailableException($"Command {command.Kind} by {command.Actor} was refused: the audit log cannot be written now (read-only or full disk), and no rollout command is applied without its audit record. Nothing was changed; retry once the log is writable again (it recovers on its own).");
        }

        if (command.Kind == RolloutCommandKind.Incident && command.RolloutId is { } incidentOf && incidentOf != _state?.RolloutId)
        {
            // The report of an earlier (archived) rollout: its phase and revision are not the current rollout's.
            await RecordIncidentAsync(command, ct).ConfigureAwait(false);
            return;
        }

        var current = _state;
        var phase = current?.Phase;
        if (command.ExpectedPhase is { } expected && expected != phase)
        {
            await _outbox.RejectAsync(command, _state, "conflict", ct).ConfigureAwait(false);
            throw new RolloutConflictException($"Command {command.Kind} by {command.Actor} expected the rollout in phase {expected}, but it is {(phase?.ToString() ?? "absent (no rollout yet)")} at revision {current?.Revision ?? 0}; re-read the status and retry.");
        }

        if (command.ExpectedRevision is { } revision && revision != (current?.Revision ?? 0))
        {
            await _outbox.RejectAsync(command, _state, "conflict", ct).ConfigureAwait(false);
            throw new RolloutConflictException($"Command {command.Kind} by {command.Actor} expected revision {revision}, but the rollout is at revision {current?.Revision ?? 0} (phase {phase?.ToString() ?? "none"}); re-read the status and retry.");
        }

        if (!IsAllowed(command.Kind, current))
        {
            await _outbox.RejectAsync(command, _state, "rejected", ct).ConfigureAwait(false);
            throw new RolloutCommandRejectedException($"Command {command.Kind} is not allowed while the rollout is {(phase?.ToString() ?? "absent")}; it is accepted in {AllowedPhases(command.Kind)}.");
        }

        if (command.Kind == RolloutCommandKind.Start)
        {
            try
            {
                await StartAsync(command, ct).ConfigureAwait(false);
            }
            finally
            {
                _registry.EndStart(); // by now the rollout's state names the candidate, or the start was refused
            }

            return;
        }

        if (command.Kind == RolloutCommandKind.Incident)
        {
            await RecordIncidentAsync(command, ct).ConfigureAwait(false);
            return;
        }

        if (command.Kind == RolloutCommandKind.Rollback && command.RollbackTo is not null)
        {
            // A named target is identified and verified before anything changes: a refusal is audited and changes nothing.
            try
            {
                _ = IdentifyRollbackTarget(current!, command.RollbackTo, out _);
            }
            catch (RolloutCommandRejectedException ex)
            {
                await _outbox.RejectAsync(command, _state, "refused", ct, ex.Message).ConfigureAwait(false);
                throw;
            }
        }

        if (await EnsureResidentAsync(ct).ConfigureAwait(false) is { } failure)
        {
            await FailCandidateAsync(failure, ct).ConfigureAwait(false);
            throw new RolloutCommandRejectedException($"Command {command.Kind} was not applied: {failure}; the rollout ended as Failed and {current!.Champion} serves all traffic.");
        }

        var next = current!.Clone();
        Log.Command(_logger, next.RolloutId, command.Kind, command.Actor, command.Reason);
        RolloutOutbox.EmitCommand(next, command, _time.GetUtcNow());
        switch (command.Kind)
        {
            case RolloutCommandKind.Pause:
                next.PausedFrom = next.Phase;
                next.WaitingForData = false;
                await TransitionAsync(next, RolloutPhase.Paused, command.Actor, $"paused: {command.Reason}", ct).ConfigureAwait(false);
                break;
            case RolloutCommandKind.Resume:
                var to = next.PausedFrom ?? RolloutPhase.Progressing;
                next.PausedFrom = null;
                next.WaitingForData = false;
                next.InconclusiveInStep = 0;
                next.ConsecutiveUnmeasurable = 0;
                if (to == RolloutPhase.Progressing && next.CurrentStep?.Kind == RolloutStepKind.Analyze)
                {
                    // The paused period is not analysed: the next interval starts now.
                    next.NextAnalysisAt = null;
                }

                await TransitionAsync(next, to, command.Actor, $"resumed: {command.Reason}", ct).ConfigureAwait(false);
                await AdvanceAsync(ct).ConfigureAwait(false);
                break;
            case RolloutCommandKind.Approve:
                if (!next.StarterMayApprove && string.Equals(command.Actor, next.StartedBy, StringComparison.OrdinalIgnoreCase))
                {
                    // Four eyes: whoever started the rollout cannot be one of its approvers.
                    await _outbox.RejectAsync(command, _state, "rejected", ct, $"{command.Actor} started this rollout").ConfigureAwait(false);
                    throw new RolloutCommandRejectedException($"{command.Actor} started this rollout and cannot approve it; it needs {next.RequiredApprovals} approval(s) from people other than its starter (RolloutControllerOptions.StarterMayApprove allows it).");
                }

                if (next.Approvals.Contains(command.Actor, StringComparer.OrdinalIgnoreCase))
                {
                    await _outbox.RejectAsync(command, _state, "rejected", ct, $"{command.Actor} already approved").ConfigureAwait(false);
                    throw new RolloutCommandRejectedException($"{command.Actor} has already approved this step; it needs {next.RequiredApprovals} approvals from distinct people ({string.Join(", ", next.Approvals)} so far).");
                }

                next.Approvals.Add(command.Actor);
                if (next.Approvals.Count < next.RequiredApprovals)
                {
                    next.Message = $"approved by {string.Join(", ", next.Approvals)} ({next.Approvals.Count} of {next.RequiredApprovals}); waiting for {next.RequiredApprovals - next.Approvals.Count} more";
                    await CommitAsync(next, ct).ConfigureAwait(false);
                    break;
                }

                next.ApprovedBy.AddRange(next.Approvals);
                next.Approvals.Clear();
                next.StepIndex++;
                next.StepStartedAt = _time.GetUtcNow();
                await TransitionAsync(next, RolloutPhase.Progressing, command.Actor, $"approved: {command.Reason}", ct).ConfigureAwait(false);
                await AdvanceAsync(ct).ConfigureAwait(false);
                break;
            case RolloutCommandKind.Promote:
                await CommitAsync(next, ct).ConfigureAwait(false);
                await PromoteAsync(command.Actor, $"promoted by {command.Actor}: {command.Reason}", ct).ConfigureAwait(false);
                break;
            case RolloutCommandKind.Abort:
                await CommitAsync(next, ct).ConfigureAwait(false);
                await EndOnChampionAsync(RolloutPhase.Aborted, command.Actor, $"aborted by {command.Actor}: {command.Reason}", ct).ConfigureAwait(false);
                break;
            case RolloutCommandKind.Rollback:
                await CommitAsync(next, ct).ConfigureAwait(false);
                await RollBackAsync(command.Actor, $"rolled back by {command.Actor}: {command.Reason}", automatic: false, evidence: null, ct, command).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>The compliance gate: the candidate's recorded test accuracy and macro-F1 against the configured minimums, or <see langword="null"/> when it passes.</summary>
    private string? CheckCompliance(string candidate)
    {
        if (_options.MinCandidateAccuracy is null && _options.MinCandidateMacroF1 is null)
        {
            return null;
        }

        var validation = _registry.ReadRecord(candidate).Validation;
        var inv = CultureInfo.InvariantCulture;
        var problems = new List<string>();
        if (_options.MinCandidateAccuracy is { } minAccuracy && !(validation.TestAccuracy >= minAccuracy))
        {
            problems.Add(string.Create(inv, $"test accuracy {validation.TestAccuracy:0.####} is below the minimum {minAccuracy:0.####} (MinCandidateAccuracy)"));
        }

        if (_options.MinCandidateMacroF1 is { } minF1 && !(validation.MacroF1 >= minF1))
        {
            problems.Add(string.Create(inv, $"macro-F1 {validation.MacroF1:0.####} is below the minimum {minF1:0.####} (MinCandidateMacroF1)"));
        }

        return problems.Count == 0
            ? null
            : $"Candidate {candidate} is refused by the compliance gate: its model card records {string.Join(" and ", problems)}. Register a model whose validation metrics meet the minimums; nothing was changed.";
    }

    private bool IsAllowed(RolloutCommandKind kind, RolloutState? s)
    {
        var phase = s?.Phase;
        return kind switch
        {
            RolloutCommandKind.Start => phase is null || phase.Value.IsTerminal(),
            RolloutCommandKind.Pause => phase is RolloutPhase.Progressing or RolloutPhase.AwaitingApproval,
            RolloutCommandKind.Resume => phase is RolloutPhase.Paused,
            RolloutCommandKind.Approve => phase is RolloutPhase.AwaitingApproval,
            RolloutCommandKind.Promote => phase is RolloutPhase.Progressing or RolloutPhase.Paused or RolloutPhase.AwaitingApproval,
            RolloutCommandKind.Abort => phase is RolloutPhase.Pending or RolloutPhase.Progressing or RolloutPhase.Paused or RolloutPhase.AwaitingApproval,
            RolloutCommandKind.Rollback => phase is RolloutPhase.Progressing or RolloutPhase.Paused or RolloutPhase.AwaitingApproval
                || (phase is RolloutPhase.Succeeded && s!.Promoted && _registry.CurrentVersion == s.Candidate),
            RolloutCommandKind.Incident => phase is RolloutPhase.RolledBack,
            _ => false,
        };
    }

    private static string AllowedPhases(RolloutCommandKind kind) => kind switch
    {
        RolloutCommandKind.Start => "no rollout or a finished one (Succeeded, RolledBack, Aborted, Failed)",
        RolloutCommandKind.Pause => "Progressing, AwaitingApproval",
        RolloutCommandKind.Resume => "Paused",
        RolloutCommandKind.Approve => "AwaitingApproval",
        RolloutCommandKind.Promote => "Progressing, Paused, AwaitingApproval",
        RolloutCommandKind.Abort => "Pending, Progressing, Paused, AwaitingApproval",
        RolloutCommandKind.Rollback => "Progressing, Paused, AwaitingApproval, or Succeeded while the promoted candidate is still current",
        RolloutCommandKind.Incident => "RolledBack (or name an earlier rolled-back rollout by its id)",
        _ => "no phase",
    };

    private async Task StartAsync(RolloutCommand command, CancellationToken ct)
    {
        var champion = _registry.CurrentVersion
            ?? throw new RolloutCommandRejectedException($"The registry '{_registry.Root}' has no current version; register a champion first (the first registered version becomes current).");
        var candidate = _registry.Get(command.Candidate!).Version;
        if (candidate == champion)
        {
            throw new RolloutCommandRejectedException($"Version {candidate} is already current; expected a candidate different from the champion.");
        }

        if (_registry.TryBeginStart(candidate) is { } retirement)
        {
            // An operator took this version out of service: refused before any step, audited.
            var retired = $"Version {retirement}. Reinstate it to roll it out.";
            await _outbox.RejectAsync(command, _state, "refused", ct, retired).ConfigureAwait(false);
            throw new RolloutCommandRejectedException(retired);
        }

        if (!_strategies.TryGetValue(command.Strategy!, out var strategy))
        {
            throw new RolloutCommandRejectedException($"Strategy '{command.Strategy}' is not registered; expected one of {string.Join(", ", _strategies.Keys.Order(StringComparer.Ordinal))}.");
        }

        var steps = strategy.CreateSteps(new RolloutStrategyContext(name => _strategies.TryGetValue(name, out var s) ? s : throw new KeyNotFoundException($"Strategy '{name}' is not registered; expected one of {string.Join(", ", _strategies.Keys)}.")));
        if (steps.Count == 0)
        {
            throw new RolloutCommandRejectedException($"Strategy '{strategy.Name}' produced no steps; expected at least one.");
        }

        if (CheckCompliance(candidate) is { } noncompliant)
        {
            // The compliance gate on the candidate's recorded validation metrics: refused before any step, audited.
            await _outbox.RejectAsync(command, _state, "refused", ct, noncompliant).ConfigureAwait(false);
            throw new RolloutCommandRejectedException(noncompliant);
        }

        if (CheckServable(candidate) is { } refusal)
        {
            // Refused before any step: nothing persisted, traffic untouched; the refusal is audited.
            await _outbox.RejectAsync(command, _state, "refused", ct, refusal).ConfigureAwait(false);
            throw new RolloutCommandRejectedException(refusal);
        }

        if (steps.Any(s => s.Kind is RolloutStepKind.Analyze) && CheckComparable(champion, candidate, strategy.Name) is { } incomparable)
        {
            // An analysis compares the two versions' predictions activity by activity: a class-set change would be
            // judged as a broken candidate (agreement and class mix over classes one of them cannot predict).
            await _outbox.RejectAsync(command, _state, "refused", ct, incomparable).ConfigureAwait(false);
            throw new RolloutCommandRejectedException(incomparable);
        }

        if (_state?.Rollback?.VerifyDueAt is not null)
        {
            // The previous rollback's verification interval is cut short by the new rollout: judged on what it saw.
            await FinishRollbackVerificationAsync(early: true, ct).ConfigureAwait(false);
        }

        if (_state is not null)
        {
            _store.Archive(_state);
        }

        var now = _time.GetUtcNow();
        var id = command.RolloutId ?? string.Create(CultureInfo.InvariantCulture, $"rollout-{now:yyyyMMdd-HHmmss}-{candidate}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}");
        var next = new RolloutState
        {
            RolloutId = id,
            Strategy = strategy.Name,
            Champion = champion,
            Candidate = candidate,
            Phase = RolloutPhase.Pending,
            Steps = [.. steps.Select(RolloutState.StepRecord.From)],
            Salt = TrafficPlan.SaltFor(id),
            StartedBy = command.Actor,
            StartedAt = now,
            RequiredApprovals = _options.RequiredApprovals,
            StarterMayApprove = _options.StarterMayApprove,
            StepStartedAt = now,
            Revision = _state?.Revision ?? 0,
            Message = $"started by {command.Actor}: {command.Reason}",
        };
        Log.Command(_logger, id, command.Kind, command.Actor, command.Reason);
        RolloutOutbox.EmitCommand(next, command, _time.GetUtcNow());
        RolloutOutbox.Emit(next, "rollout.transition", "info", command.Actor, new JsonObject
        {
            ["from"] = null,
            ["to"] = nameof(RolloutPhase.Pending),
            ["champion"] = champion,
            ["candidate"] = candidate,
            ["strategy"] = strategy.Name,
            ["steps"] = new JsonArray([.. steps.Select(s => (JsonNode)s.ToString())]),
            ["message"] = next.Message,
            ["registry_id"] = _registry.RegistryId, // several registries may share one log: each controller checks its own rollouts when it opens
        });
        await CommitAsync(next, ct).ConfigureAwait(false);
        await RunEventHooksAsync(ct).ConfigureAwait(false);
        await RunPendingAsync(ct).ConfigureAwait(false);
    }

    private async Task RunPendingAsync(CancellationToken ct)
    {
        if (!IsLeader)
        {
            // Started through a follower replica: the leader loads the candidate and applies the steps.
            return;
        }

        if (_state!.NextAnalysisAt is { } heldUntil && _time.GetUtcNow() < heldUntil)
        {
            return; // held by a confirm-rollout or pre-rollout hook: asked again at the next interval
        }

        if (!await PassPendingHooksAsync(ct).ConfigureAwait(false))
        {
            return;
        }

        var s = _state!;

        if (!_host.IsLoaded(s.Champion))
        {
            await LoadServableAsync(s.Champion, "serve champion", ct).ConfigureAwait(false);
        }

        try
        {
            // Load and warm-up failures of any kind (a corrupt file, a card the pipeline cannot serve, a
            // warm-up that asks for more memory than there is) end the rollout; the champion keeps serving.
            await LoadServableAsync(s.Candidate, "load candidate", ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsCandidateFailure(ex, ct))
        {
            await EndOnChampionAsync(RolloutPhase.Failed, SystemActor, $"candidate {s.Candidate} could not be verified and loaded: {ex.Message}", ct).ConfigureAwait(false);
            return;
        }

        var next = s.Clone();
        next.StepIndex = 0;
        next.StepStartedAt = _time.GetUtcNow();
        next.NextAnalysisAt = null;
        next.HookRefusals = 0;
        await TransitionAsync(next, RolloutPhase.Progressing, SystemActor, $"candidate {s.Candidate} verified (sha256), loaded and warm", ct).ConfigureAwait(false);
        await AdvanceAsync(ct).ConfigureAwait(false);
    }
}
