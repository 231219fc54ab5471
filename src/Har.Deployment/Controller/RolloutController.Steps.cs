using System.Globalization;
using System.Text.Json.Nodes;

namespace Har.Deployment;

/// <summary>Reconciliation: steps, analysis intervals, promotion, rollback, transitions, persistence and hooks.</summary>
public sealed partial class RolloutController
{
    private async Task ReconcileCoreAsync(CancellationToken ct)
    {
        if (await EnsureResidentAsync(ct).ConfigureAwait(false) is { } failure)
        {
            await FailCandidateAsync(failure, ct).ConfigureAwait(false);
            return;
        }

        switch (_state!.Phase)
        {
            case RolloutPhase.Pending:
                await RunPendingAsync(ct).ConfigureAwait(false);
                break;
            case RolloutPhase.Progressing:
                await AdvanceAsync(ct).ConfigureAwait(false);
                break;
            case RolloutPhase.Paused when _state!.WaitingForData:
                await AnalyzeWhileWaitingAsync(ct).ConfigureAwait(false);
                break;
            case RolloutPhase.Promoting:
                await CompletePromotionAsync(ct).ConfigureAwait(false);
                break;
            case RolloutPhase.RollingBack:
                await CompleteRollbackAsync(ct).ConfigureAwait(false);
                break;
            case RolloutPhase.RolledBack when _state.Rollback?.VerifyDueAt is { } due && _time.GetUtcNow() >= due:
                await FinishRollbackVerificationAsync(early: false, ct).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Applies steps while the current one can complete at the current time; each applied step is persisted before the next.</summary>
    private async Task AdvanceAsync(CancellationToken ct)
    {
        if (!IsLeader)
        {
            // A command executed on a follower replica stops at its own transition; the leader applies the steps.
            return;
        }

        while (_state!.Phase == RolloutPhase.Progressing)
        {
            var s = _state;
            var step = s.CurrentStep;
            var now = _time.GetUtcNow();
            if (step is null)
            {
                await PromoteAsync(SystemActor, "every step passed", ct).ConfigureAwait(false);
                return;
            }

            var next = s.Clone();
            switch (step.Kind)
            {
                case RolloutStepKind.SetWeight:
                    next.CandidateBuckets = step.Buckets;
                    next.Mirror = step.MirrorToStable;
                    await CompleteStepAsync(next, step, null, ct).ConfigureAwait(false);
                    break;
                case RolloutStepKind.Shadow:
                    next.ShadowBuckets = step.Buckets;
                    await CompleteStepAsync(next, step, null, ct).ConfigureAwait(false);
                    break;
                case RolloutStepKind.SmokeTest:
                    SmokeTestOutcome outcome;
                    try
                    {
                        outcome = _host.SmokeTest(s.Candidate, s.Champion);
                    }
                    catch (Exception ex) when (IsCandidateFailure(ex, ct))
                    {
                        outcome = new SmokeTestOutcome(false, $"the candidate threw during the smoke test: {ex.GetType().Name}: {ex.Message}", new Dictionary<string, double>());
                    }

                    var evidence = new JsonObject { ["built_in"] = outcome.Message, ["built_in_passed"] = outcome.Passed, ["evidence"] = ToJson(outcome.Evidence) };
                    if (!outcome.Passed)
                    {
                        await RollBackAsync(SystemActor, $"smoke test failed: {outcome.Message}", automatic: true, evidence, ct).ConfigureAwait(false);
                        return;
                    }

                    var (allowed, message) = await RunHooksAsync(RolloutHookPoint.SmokeTest, $"smoke-{s.StepIndex}", ct).ConfigureAwait(false);
                    if (!allowed)
                    {
                        await RollBackAsync(SystemActor, $"smoke-test hook refused: {message}", automatic: true, evidence, ct).ConfigureAwait(false);
                        return;
                    }

                    next.PassedSmokeTest = true;
                    await CompleteStepAsync(next, step, evidence, ct).ConfigureAwait(false);
                    break;
                case RolloutStepKind.Approval:
                    await TransitionAsync(next, RolloutPhase.AwaitingApproval, SystemActor, "waiting for approval", ct).ConfigureAwait(false);
                    return;
                case RolloutStepKind.Pause:
                    if (now < s.StepStartedAt + step.Interval)
                    {
                        return;
                    }

                    await CompleteStepAsync(next, step, null, ct).ConfigureAwait(false);
                    break;
                case RolloutStepKind.Finish:
                    await CompleteStepAsync(next, step, null, ct).ConfigureAwait(false);
                    await EndOnChampionAsync(RolloutPhase.Succeeded, SystemActor, $"evaluation of {s.Candidate} finished without promotion", ct).ConfigureAwait(false);
                    return;
                case RolloutStepKind.Analyze:
                    if (s.NextAnalysisAt is null)
                    {
                        next.NextAnalysisAt = now + step.Interval;
                        next.ConsecutivePasses = 0;
                        next.InconclusiveInStep = 0;
                        Observations.Reset(now);
                        await CommitAsync(next, ct).ConfigureAwait(false);
                        return;
                    }

                    if (now < s.NextAnalysisAt.Value)
                    {
                        return;
                    }

                    var hookFailure = await RunRolloutHooksAsync(ct).ConfigureAwait(false);
                    next = _state!.Clone();
                    if (!await AnalyzeAsync(next, step, now, ct, hookFailure).ConfigureAwait(false))
                    {
                        return;
                    }

                    break;
            }
        }
    }

    /// <summary>Evaluates one interval; returns whether the step completed (so the loop continues).</summary>
    private async Task<bool> AnalyzeAsync(RolloutState next, RolloutStep step, DateTimeOffset now, CancellationToken ct, GateResult? hookFailure = null)
    {
        var paired = next.Mirror || next.ShadowBuckets > 0;
        var labels = _host.IsLoaded(next.Champion) ? _host.GetCard(next.Champion).Labels : _labels;
        // An inconclusive interval extends the step: its samples stay and are judged again with the next
        // interval's. A conclusive verdict starts a fresh interval.
        var snapshot = AnalysisSnapshotOf(Observations, next, now, labels, reset: false);
        var result = WithHookFailure(_analyzer.Evaluate(snapshot, paired), hookFailure);
        var conclusive = result.Verdict is GateVerdict.Pass or GateVerdict.Fail;
        var decisiveFailure = result.Gates.Any(g => g.Verdict == GateVerdict.Fail && g.IsCounted && g.IsDecisive);
        var streak = FailingStreak(next);
        var (joinedIntervals, joinedSince) = (streak.Deltas.Count + 1, streak.Start);
        IReadOnlyList<GateResult> joined = conclusive ? [] : JudgeWithFailingIntervals(streak, next, now, labels, paired);
        streak.Update(result.Verdict, decisiveFailure, snapshot.Start, Observations);
        if (conclusive)
        {
            // Each conclusive interval is judged on its own samples (hysteresis: one noisy interval is not
            // carried into the next one's verdict).
            Observations.Reset(now);
        }

        // Sticky routing moves whole devices: with fewer streams than 1 / weight, a step can route none to the
        // candidate while the champion serves traffic (a 10 % step on 5 devices gets none in 59 % of salts). Like
        // Argo Rollouts rounding a canary up to one pod, such a step is not waited on: the next weight applies
        // at once, and the candidate is judged there (never promoted without passing analysis).
        if (result.Verdict == GateVerdict.Unmeasurable && snapshot.Candidate.Requests == 0 && snapshot.Stable.Requests > 0
            && next.ShadowBuckets == 0 && next.CandidateBuckets < TrafficPlan.BucketCount && HasLaterWeight(next))
        {
            next.AnalysesRun++;
            next.LastAnalysis = result;
            next.NextAnalysisAt = null;
            Observations.Reset(now);
            await CompleteStepAsync(next, step, new JsonObject
            {
                ["skipped"] = $"no stream was routed to {next.Candidate} at {next.CandidateBuckets / 100.0:0.##}% while {next.Champion} served {snapshot.Stable.Requests} requests: too few streams for this weight; moving to the next weight",
            }, ct).ConfigureAwait(false);
            return true;
        }
        _metrics.Analysis(result);
        next.AnalysesRun++;
        next.LastAnalysis = result;
        switch (result.Verdict)
        {
            case GateVerdict.Pass:
                next.ConsecutivePasses++;
                next.Failures = 0;
                next.ConsecutiveUnmeasurable = 0;
                break;
            case GateVerdict.Fail:
                next.ConsecutivePasses = 0;
                // A failure conclusive at α² (as strong as two independent failing intervals) counts twice.
                next.Failures += decisiveFailure ? 2 : 1;
                next.ConsecutiveUnmeasurable = 0;
                break;
            case GateVerdict.Inconclusive:
                next.InconclusiveInStep++;
                next.ConsecutiveUnmeasurable = 0;
                break;
            default:
                next.ConsecutiveUnmeasurable++;
                break;
        }

        if (joined.Count > 0)
        {
            // As strong as two failing intervals, like a decisive failure of one.
            next.ConsecutivePasses = 0;
            next.Failures = Math.Max(next.Failures + 2, _options.FailureThreshold);
        }

        var verdictEvent = new JsonObject
        {
            ["step"] = next.StepIndex,
            ["verdict"] = result.Verdict.ToString(),
            ["interval_start"] = result.Start.ToString("O", CultureInfo.InvariantCulture),
            ["interval_end"] = result.End.ToString("O", CultureInfo.InvariantCulture),
            ["candidate_percent"] = next.CandidateBuckets / 100.0,
            ["consecutive_passes"] = next.ConsecutivePasses,
            ["failures"] = next.Failures,
            ["gates"] = GatesJson(result.Gates),
        };
        if (joined.Count > 0)
        {
            verdictEvent["joined_intervals"] = new JsonObject
            {
                ["intervals"] = joinedIntervals,
                ["since"] = joinedSince.ToString("O", CultureInfo.InvariantCulture),
                ["gates"] = GatesJson(joined),
            };
        }
        Log.Analysis(_logger, next.RolloutId, result.Verdict.ToString(), next.ConsecutivePasses, next.Failures);

        string? rollbackReason = null;
        if (joined.Count > 0)
        {
            rollbackReason = string.Create(CultureInfo.InvariantCulture, $"{joinedIntervals} intervals since the first failing one ({joinedSince:O}), judged together, fail decisively: {string.Join("; ", joined.Select(g => g.Message))}");
        }
        else if (result.Verdict == GateVerdict.Fail && next.Failures >= _options.FailureThreshold)
        {
            // A decisive failure counts as two failing intervals: say so, or "2 failing analysis intervals" reads wrong
            // beside a rollback after the first interval.
            var count = decisiveFailure
                ? string.Create(CultureInfo.InvariantCulture, $"a decisive failure (counted as two failing analysis intervals; {next.Failures} counted, threshold {_options.FailureThreshold})")
                : string.Create(CultureInfo.InvariantCulture, $"{next.Failures} failing analysis intervals (threshold {_options.FailureThreshold})");
            rollbackReason = $"{count}: {string.Join("; ", result.Gates.Where(g => g.Verdict == GateVerdict.Fail).Select(g => g.Message))}";
        }

        string? undecided = null;
        if (!conclusive && next.ConsecutiveUnmeasurable >= _options.UnmeasurableLimit)
        {
            undecided = $"{next.ConsecutiveUnmeasurable} consecutive unmeasurable intervals (limit {_options.UnmeasurableLimit}): {Missing(result, GateVerdict.Unmeasurable)}";
        }
        else if (!conclusive && next.InconclusiveInStep > _options.MaxInconclusiveIntervals)
        {
            undecided = $"{next.InconclusiveInStep} inconclusive intervals in one step (limit {_options.MaxInconclusiveIntervals}): {Missing(result, GateVerdict.Inconclusive)}";
        }

        if (undecided is not null && _options.RollbackOnInconclusive && rollbackReason is null)
        {
            rollbackReason = undecided + "; the candidate could not be judged (RollbackOnInconclusive)";
        }

        if (rollbackReason is not null)
        {
            // The rollback's six steps follow (detect, identify, verify, execute: the traffic switch, verify success, log).
            next.WaitingForData = false;
            next.PausedFrom = null;
            RolloutOutbox.Emit(next, "rollout.verdict", "warning", SystemActor, verdictEvent);
            await CommitAsync(next, ct).ConfigureAwait(false);
            await RollBackAsync(SystemActor, rollbackReason, automatic: true, verdictEvent, ct).ConfigureAwait(false);
            return false;
        }

        RolloutOutbox.Emit(next, "rollout.verdict", result.Verdict == GateVerdict.Pass ? "info" : "warning", SystemActor, verdictEvent);
        if (undecided is not null)
        {
            // Too few samples is not a fault: pause where it is (traffic unchanged) and keep analysing;
            // the first conclusive interval resumes it, and so does an operator.
            next.NextAnalysisAt = now + step.Interval;
            if (next.Phase != RolloutPhase.Paused)
            {
                next.PausedFrom = RolloutPhase.Progressing;
                next.WaitingForData = true;
                await TransitionAsync(next, RolloutPhase.Paused, SystemActor, $"paused, waiting for data: {undecided}", ct).ConfigureAwait(false);
            }
            else
            {
                next.Message = $"paused, waiting for data: {undecided}";
                await CommitAsync(next, ct).ConfigureAwait(false);
            }

            return false;
        }

        // Ground truth is arriving: the step that ends the comparison (or the promotion) waits for the accuracy verdict.
        // Past the wait bound, a measured drop within the margin ends the wait: the candidate is not shown to be worse by
        // more than the margin (the gate fails it only when it is clearly worse), and every other gate passes.
        var limit = _options.Analysis.AccuracyWaitIntervals;
        var pending = result.Verdict == GateVerdict.Pass && next.ConsecutivePasses >= step.RequiredPasses ? AccuracyPending(next, result) : null;
        if (pending is not null && next.AccuracyWaitInStep >= limit && DropWithinMargin(result) is { } estimate)
        {
            EndAccuracyWaitOnEstimate(next, estimate);
        }
        else if (pending is not null)
        {
            next.AccuracyWaitInStep++;
            next.NextAnalysisAt = now + step.Interval;
            var hold = StepEvent(next, "waiting for the accuracy verdict");
            hold["extra_interval"] = next.AccuracyWaitInStep;
            hold["limit"] = limit;
            hold["missing"] = pending;
            RolloutOutbox.Emit(next, "rollout.hold", "info", SystemActor, hold);
            if (next.AccuracyWaitInStep > limit || next.Phase == RolloutPhase.Paused)
            {
                var message = $"paused, waiting for the accuracy verdict: every other gate passes, but {pending} after {next.AccuracyWaitInStep - 1} extra interval(s) (limit {limit})";
                if (next.Phase != RolloutPhase.Paused)
                {
                    next.PausedFrom = RolloutPhase.Progressing;
                    next.WaitingForData = true;
                    await TransitionAsync(next, RolloutPhase.Paused, SystemActor, message, ct).ConfigureAwait(false);
                }
                else
                {
                    next.Message = message;
                    await CommitAsync(next, ct).ConfigureAwait(false);
                }

                return false;
            }

            next.Message = $"holding at {next.CandidateBuckets / 100.0:0.##}%: every other gate passes; waiting for the accuracy verdict ({pending}), extra interval {next.AccuracyWaitInStep} of at most {limit}";
            await CommitAsync(next, ct).ConfigureAwait(false);
            return false;
        }

        if (next.Phase == RolloutPhase.Paused && conclusive)
        {
            next.PausedFrom = null;
            next.WaitingForData = false;
            next.InconclusiveInStep = 0;
            next.ConsecutiveUnmeasurable = 0;
            await TransitionAsync(next, RolloutPhase.Progressing, SystemActor, $"resumed by traffic: the analysis at {next.CandidateBuckets / 100.0:0.##}% was conclusive ({result.Verdict})", ct).ConfigureAwait(false);
            next = _state!.Clone();
        }

        // Only a passing interval completes the step: while the step is held for the accuracy verdict, its passes
        // stay counted, and an inconclusive interval then must not complete it past the hold.
        if (result.Verdict == GateVerdict.Pass && next.ConsecutivePasses >= step.RequiredPasses)
        {
            next.NextAnalysisAt = null;
            await CompleteStepAsync(next, step, new JsonObject { ["passes"] = next.ConsecutivePasses }, ct).ConfigureAwait(false);
            return true;
        }

        next.NextAnalysisAt = now + step.Interval;
        await CommitAsync(next, ct).ConfigureAwait(false);
        return false;
    }

    /// <summary>A rollout paused for want of data keeps analysing its step; a conclusive interval resumes it (or rolls it back).</summary>
    private async Task AnalyzeWhileWaitingAsync(CancellationToken ct)
    {
        var s = _state!;
        var now = _time.GetUtcNow();
        if (s.CurrentStep is not { Kind: RolloutStepKind.Analyze } step || s.NextAnalysisAt is not { } due || now < due)
        {
            return;
        }

        var hookFailure = await RunRolloutHooksAsync(ct).ConfigureAwait(false);
        if (await AnalyzeAsync(_state!.Clone(), step, now, ct, hookFailure).ConfigureAwait(false) && _state!.Phase == RolloutPhase.Progressing)
        {
            await AdvanceAsync(ct).ConfigureAwait(false);
        }
    }

    private static JsonArray GatesJson(IEnumerable<GateResult> gates) => new([.. gates.Select(g => (JsonNode)new JsonObject
    {
        ["gate"] = g.Gate,
        ["verdict"] = g.Verdict.ToString(),
        ["message"] = g.Message,
        ["evidence"] = ToJson(g.Evidence),
    })]);

    private static bool HasLaterWeight(RolloutState state)
    {
        for (var i = state.StepIndex + 1; i < state.Steps.Count; i++)
        {
            if (state.Steps[i].Kind == RolloutStepKind.SetWeight)
            {
                return true;
            }
        }

        return false;
    }

    private static string Missing(AnalysisResult result, GateVerdict verdict) =>
        string.Join("; ", result.Gates.Where(g => g.Verdict == verdict).Select(g => $"{g.Gate}: {g.Message}"));

    private async Task CompleteStepAsync(RolloutState next, RolloutStep step, JsonObject? evidence, CancellationToken ct)
    {
        var details = new JsonObject
        {
            ["step"] = next.StepIndex,
            ["kind"] = step.Kind.ToString(),
            ["description"] = step.ToString(),
            ["candidate_percent"] = next.CandidateBuckets / 100.0,
            ["shadow_percent"] = next.ShadowBuckets / 100.0,
        };
        if (evidence is not null)
        {
            details["evidence"] = evidence.DeepClone();
        }

        RolloutOutbox.Emit(next, "rollout.step", "info", SystemActor, details);
        next.StepIndex++;
        next.StepStartedAt = _time.GetUtcNow();
        next.ConsecutivePasses = 0;
        next.InconclusiveInStep = 0;
        next.AccuracyWaitInStep = 0;
        next.NextAnalysisAt = null;
        next.Message = $"applied step {next.StepIndex - 1}: {step}";
        await CommitAsync(next, ct).ConfigureAwait(false);
    }

    private async Task PromoteAsync(string actor, string reason, CancellationToken ct)
    {
        var (allowed, message) = await RunHooksAsync(RolloutHookPoint.PrePromotion, "pre-promotion", ct).ConfigureAwait(false);
        if (!allowed)
        {
            await RollBackAsync(SystemActor, $"pre-promotion hook refused: {message}", automatic: true, evidence: null, ct).ConfigureAwait(false);
            return;
        }

        var next = _state!.Clone();
        next.PromotedBy = actor;
        await TransitionAsync(next, RolloutPhase.Promoting, actor, reason, ct).ConfigureAwait(false);
        await CompletePromotionAsync(ct).ConfigureAwait(false);
    }

    private async Task CompletePromotionAsync(CancellationToken ct)
    {
        var s = _state!;
        try
        {
            // The registry checks the candidate again (file, record, config) before it moves `current`; a fleet's
            // pointer moves only while the shared state is still this promotion's.
            _registry.SetCurrent(s.Candidate, _fleet is null ? null : s.Revision);
        }
        catch (Exception ex) when (ex is not RolloutStateConflictException && IsCandidateFailure(ex, ct))
        {
            await FailCandidateAsync($"promotion of {s.Candidate} refused: {ex.Message}", ct).ConfigureAwait(false);
            return;
        }

        var next = s.Clone();
        next.Promoted = true;
        next.CandidateBuckets = TrafficPlan.BucketCount;
        next.ShadowBuckets = 0;
        next.Mirror = false;

        // The registration's deployment record said approved_by "pending", no smoke test: its completion is a new
        // audit entry (records stay immutable), written exactly once with the transition (outbox).
        if (CompletedDeployment(s, s.PromotedBy ?? SystemActor) is { } completed)
        {
            RolloutOutbox.Emit(next, DeploymentCompletedEvent, "info", s.PromotedBy ?? SystemActor, completed);
        }

        await TransitionAsync(next, RolloutPhase.Succeeded, SystemActor, $"{s.Candidate} promoted: it serves all traffic and is the registry's current version", ct).ConfigureAwait(false);
        await _host.UnloadAsync(s.Champion).ConfigureAwait(false);
        await RunPostHooksAsync(ct).ConfigureAwait(false);
    }

    private async Task EndOnChampionAsync(RolloutPhase phase, string actor, string reason, CancellationToken ct)
    {
        var s = _state!;
        SwitchTrafficToChampion(s);
        var next = s.Clone();
        next.Promoted = false;
        next.CandidateBuckets = 0;
        next.ShadowBuckets = 0;
        next.Mirror = false;
        next.NextAnalysisAt = null;
        next.PausedFrom = null;
        await TransitionAsync(next, phase, actor, reason, ct).ConfigureAwait(false);
        await _host.UnloadAsync(s.Candidate).ConfigureAwait(false);
        await RunPostHooksAsync(ct).ConfigureAwait(false);
    }

    private async Task TransitionAsync(RolloutState next, RolloutPhase to, string actor, string message, CancellationToken ct)
    {
        var from = _state?.RolloutId == next.RolloutId ? _state.Phase : (RolloutPhase?)null;
        next.Phase = to;
        next.Message = message;
        RolloutOutbox.Emit(next, "rollout.transition", to is RolloutPhase.Failed or RolloutPhase.RollingBack ? "warning" : "info", actor, new JsonObject
        {
            ["from"] = from?.ToString(),
            ["to"] = to.ToString(),
            ["step"] = next.StepIndex,
            ["candidate_percent"] = next.CandidateBuckets / 100.0,
            ["message"] = message,
        });
        Log.Transition(_logger, next.RolloutId, from, to, message);
        await CommitAsync(next, ct).ConfigureAwait(false);
        await RunEventHooksAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Persists the state (durably) and only then applies it: traffic plan, metrics, audit outbox.</summary>
    private async Task CommitAsync(RolloutState next, CancellationToken ct)
    {
        next.Revision++;
        var now = _time.GetUtcNow();
        next.UpdatedAt = now;

        // The events added for this change carry its time: Emit stamps them with the state's, which until here is the
        // previous change's (every verdict carried the time of the analysis before it, and a promotion a new fleet leader
        // finished for a frozen one the time the frozen leader began it). Events a crash or a frozen leader left in the
        // outbox keep theirs: appended again, they must be the same records (AuditLog.AppendOnceAsync).
        var before = _state is { } current && current.RolloutId == next.RolloutId ? current.Sequence : long.MinValue;
        for (var i = 0; i < next.Outbox.Count; i++)
        {
            if (next.Outbox[i].Sequence > before)
            {
                next.Outbox[i] = next.Outbox[i] with { Timestamp = now };
            }
        }

        _store.Save(next);
        Volatile.Write(ref _state, next);
        ApplyPlan(next);
        if (IsLeader)
        {
            // In a fleet, a follower's events stay in the state it wrote; the leader appends them (RolloutController.Fleet).
            await _outbox.FlushAsync(_state, ct).ConfigureAwait(false);
        }
    }

    private async Task<(bool Allowed, string Message)> RunHooksAsync(RolloutHookPoint point, string key, CancellationToken ct)
    {
        var messages = new List<string>();
        foreach (var hook in _options.Hooks)
        {
            if (hook.Point != point)
            {
                continue;
            }

            var status = ToStatus(_state!);
            RolloutHookResult result;
            try
            {
                result = await hook.RunAsync(new RolloutHookContext(point, status, $"{status.RolloutId}/{key}/{hook.Name}"), ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                result = RolloutHookResult.Deny($"{ex.GetType().Name}: {ex.Message}");
            }

            var next = _state!.Clone();
            RolloutOutbox.Emit(next, "rollout.hook", result.Allowed ? "info" : "warning", SystemActor, new JsonObject
            {
                ["hook"] = hook.Name,
                ["point"] = point.ToString(),
                ["allowed"] = result.Allowed,
                ["message"] = result.Message,
            });
            await CommitAsync(next, ct).ConfigureAwait(false);
            if (!result.Allowed)
            {
                if (point is RolloutHookPoint.PostRollout or RolloutHookPoint.Event)
                {
                    Log.PostHookFailed(_logger, status.RolloutId, hook.Name, result.Message);
                    continue;
                }

                return (false, $"{hook.Name}: {result.Message}");
            }

            messages.Add($"{hook.Name}: {result.Message}");
        }

        return (true, string.Join("; ", messages));
    }

    private async Task RunPostHooksAsync(CancellationToken ct) => _ = await RunHooksAsync(RolloutHookPoint.PostRollout, "post", ct).ConfigureAwait(false);
}
