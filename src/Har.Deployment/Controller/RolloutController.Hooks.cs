using System.Globalization;

namespace Har.Deployment;

/// <summary>
/// Hook points with Flagger's semantics: confirm-rollout holds until allowed; pre-rollout holds and fails at the
/// failure threshold; rollout hooks count as a gate of every analysis interval; event hooks hear every transition.
/// Every call and its answer is audited (<c>rollout.hook</c>).
/// </summary>
public sealed partial class RolloutController
{
    /// <summary>The confirm-rollout, then pre-rollout hooks of a pending rollout; false when the rollout is held or failed.</summary>
    private async Task<bool> PassPendingHooksAsync(CancellationToken ct)
    {
        var (confirmed, why) = await RunHooksAsync(RolloutHookPoint.ConfirmRollout, "confirm-rollout", ct).ConfigureAwait(false);
        if (!confirmed)
        {
            // Held until a person (or system) says yes; an operator may abort meanwhile.
            await HoldPendingAsync($"held: confirm-rollout hook refused: {why}; asked again every analysis interval (abort to stop)", countsAsFailure: false, ct).ConfigureAwait(false);
            return false;
        }

        var (allowed, message) = await RunHooksAsync(RolloutHookPoint.PreRollout, "pre-rollout", ct).ConfigureAwait(false);
        if (allowed)
        {
            return true;
        }

        var refusals = _state!.HookRefusals + 1;
        if (refusals >= _options.FailureThreshold)
        {
            await EndOnChampionAsync(RolloutPhase.Failed, SystemActor, string.Create(CultureInfo.InvariantCulture, $"pre-rollout hook refused {refusals} time(s) (threshold {_options.FailureThreshold}): {message}"), ct).ConfigureAwait(false);
            return false;
        }

        await HoldPendingAsync(string.Create(CultureInfo.InvariantCulture, $"held: pre-rollout hook refused ({refusals} of {_options.FailureThreshold} allowed before the rollout fails): {message}; asked again every analysis interval"), countsAsFailure: true, ct).ConfigureAwait(false);
        return false;
    }

    private async Task HoldPendingAsync(string message, bool countsAsFailure, CancellationToken ct)
    {
        var next = _state!.Clone();
        next.HookRefusals = countsAsFailure ? next.HookRefusals + 1 : next.HookRefusals;
        next.NextAnalysisAt = _time.GetUtcNow() + _options.BuiltInStrategies.AnalysisInterval;
        next.Message = message;
        await CommitAsync(next, ct).ConfigureAwait(false);
    }

    /// <summary>The rollout hooks of an analysis interval; a refusal is returned as a failing gate.</summary>
    private async Task<GateResult?> RunRolloutHooksAsync(CancellationToken ct)
    {
        if (!HasHooks(RolloutHookPoint.Rollout))
        {
            return null;
        }

        var s = _state!;
        var (allowed, message) = await RunHooksAsync(RolloutHookPoint.Rollout, string.Create(CultureInfo.InvariantCulture, $"rollout-{s.StepIndex}-{s.AnalysesRun}"), ct).ConfigureAwait(false);
        return allowed ? null : new GateResult("rollout-hook", GateVerdict.Fail, $"rollout hook refused: {message}", new Dictionary<string, double>());
    }

    private static AnalysisResult WithHookFailure(AnalysisResult result, GateResult? hookFailure) =>
        hookFailure is null
            ? result
            : new AnalysisResult(GateVerdict.Fail, [.. result.Gates, hookFailure], result.Start, result.End, result.CandidateRequests, result.StableRequests, result.PairedWindows);

    /// <summary>Event hooks hear the transition just committed (informational).</summary>
    private async Task RunEventHooksAsync(CancellationToken ct)
    {
        if (HasHooks(RolloutHookPoint.Event))
        {
            var s = _state!;
            _ = await RunHooksAsync(RolloutHookPoint.Event, string.Create(CultureInfo.InvariantCulture, $"event-{s.Phase}-{s.Revision}"), ct).ConfigureAwait(false);
        }
    }

    private bool HasHooks(RolloutHookPoint point)
    {
        foreach (var hook in _options.Hooks)
        {
            if (hook.Point == point)
            {
                return true;
            }
        }

        return false;
    }
}
