using Har.Inference;

namespace Har.Deployment;

/// <summary>The controller's side of model residency: what the state serves is loaded (and servable by the pipeline); a candidate that fails ends its rollout.</summary>
public sealed partial class RolloutController
{
    /// <summary>
    /// Loads what the state serves. The champion (or the registry's current version) must load; a
    /// candidate that cannot be loaded is not thrown but returned as a reason to end its rollout.
    /// </summary>
    private async Task<string?> EnsureResidentAsync(CancellationToken ct)
    {
        var s = _state;
        foreach (var version in NeededVersions(s))
        {
            if (_host.IsLoaded(version))
            {
                continue;
            }

            var isCandidate = s is not null && version == s.Candidate && !s.Phase.IsTerminal() && s.Phase != RolloutPhase.Promoting;
            try
            {
                await LoadServableAsync(version, "serve", ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (isCandidate && IsCandidateFailure(ex, ct))
            {
                return $"candidate {version} could not be loaded: {ex.Message}";
            }
        }

        return null;
    }

    /// <summary>The versions a state serves (the registry's current version when there is no rollout).</summary>
    private List<string> NeededVersions(RolloutState? s)
    {
        var needed = new List<string>();
        if (s is null || (s.Phase.IsTerminal() && !(s.Phase == RolloutPhase.Succeeded && s.Promoted)))
        {
            if (s is not null)
            {
                needed.Add(ServedAfterEnd(s));
            }
            else if (_registry.CurrentVersion is { } current)
            {
                needed.Add(current);
            }
        }
        else if (s.Phase == RolloutPhase.Succeeded)
        {
            needed.Add(s.Candidate);
        }
        else
        {
            needed.Add(s.Phase == RolloutPhase.RollingBack ? ServedAfterEnd(s) : s.Champion);
            if (s.Phase != RolloutPhase.Pending && s.Phase != RolloutPhase.RollingBack)
            {
                needed.Add(s.Candidate);
            }
        }

        return needed;
    }

    /// <summary>Verifies and loads a version, refusing one whose window geometry the pipeline cannot serve.</summary>
    private async Task LoadServableAsync(string version, string purpose, CancellationToken ct)
    {
        var verified = _registry.ReadVerified(version, purpose);
        await _host.LoadAsync(verified, ct).ConfigureAwait(false);
        var card = _host.GetCard(version);
        if (!_serving.Geometry.CanServe(card))
        {
            await _host.UnloadAsync(version).ConfigureAwait(false);
            throw new ModelCardException(null, $"Version {version} asks for {WindowGeometry.From(card)}; the serving pipeline serves {_serving.Geometry}.{_serving.Geometry.ContextHint(card)}");
        }
    }

    /// <summary>Any failure of a candidate (but not a cancellation of the caller) ends its rollout instead of escaping.</summary>
    private static bool IsCandidateFailure(Exception ex, CancellationToken ct) => ex is not OperationCanceledException || !ct.IsCancellationRequested;

    /// <summary>Ends the active rollout as Failed with all traffic on the champion (the reason is audited with the transition).</summary>
    private async Task FailCandidateAsync(string reason, CancellationToken ct)
    {
        var s = _state!;
        Log.Error(_logger, s.RolloutId, reason, new InvalidOperationException(reason));
        if (!_host.IsLoaded(s.Champion))
        {
            await LoadServableAsync(s.Champion, "serve champion", ct).ConfigureAwait(false);
        }

        if (s.Promoted || _registry.CurrentVersion != s.Champion)
        {
            _registry.SetCurrent(s.Champion, _fleet is null ? null : s.Revision);
        }

        await EndOnChampionAsync(RolloutPhase.Failed, SystemActor, reason, ct).ConfigureAwait(false);
    }

    private void ApplyPlan(RolloutState? s)
    {
        TrafficPlan plan;
        if (s is null)
        {
            plan = TrafficPlan.Single(_registry.CurrentVersion ?? "none");
            _metrics.SetWeights(plan.Stable, null, 0);
            _serving.Publish(plan);
            return;
        }

        switch (s.Phase)
        {
            case RolloutPhase.Progressing or RolloutPhase.Paused or RolloutPhase.AwaitingApproval:
                plan = new TrafficPlan(s.Champion, s.Candidate, s.CandidateBuckets, s.Salt, s.Candidate, s.ShadowBuckets, s.Mirror, s.Revision);
                break;
            case RolloutPhase.Promoting:
                plan = TrafficPlan.Single(s.Candidate, s.Revision);
                break;
            case RolloutPhase.Succeeded when s.Promoted:
                plan = TrafficPlan.Single(s.Candidate, s.Revision);
                break;
            default:
                plan = TrafficPlan.Single(ServedAfterEnd(s), s.Revision);
                break;
        }

        _serving.Publish(plan);
        _metrics.SetWeights(plan.Stable, plan.Candidate, plan.CandidatePercent);
        _metrics.SetPhase(s.Phase);
    }

    /// <summary>
    /// Why a rollout that analyses <paramref name="candidate"/> against <paramref name="champion"/> could not judge it:
    /// they predict different sets of activities. <see langword="null"/> when they predict the same ones (in any order).
    /// </summary>
    private string? CheckComparable(string champion, string candidate, string strategy)
    {
        ModelCard championCard, candidateCard;
        try
        {
            (championCard, candidateCard) = (ModelCard.Load(_registry.Get(champion).ModelPath), ModelCard.Load(_registry.Get(candidate).ModelPath));
        }
        catch (Exception ex) when (ex is ModelCardException or IOException or UnauthorizedAccessException)
        {
            return null; // CheckServable reported an unreadable candidate; an unreadable champion is the analysis' to meet
        }

        return ClassOrder.Difference(championCard.Labels, candidateCard.Labels) is { } difference
            ? $"Candidate {candidate} predicts other activities than champion {champion} ({difference}): a {strategy} rollout's analysis compares the two versions' predictions activity by activity, so it would judge the difference as a fault. Expected the champion's activities (in any order). To change the set of activities, use the '{RolloutStrategyNames.Recreate}' strategy (smoke test, then all traffic, no comparison), or one of your own without an analysis step."
            : null;
    }

    /// <summary>Why the pipeline cannot serve <paramref name="candidate"/> (window geometry, channels, sample rate, an unreadable card), or <see langword="null"/>.</summary>
    private string? CheckServable(string candidate)
    {
        ModelCard card;
        try
        {
            card = ModelCard.Load(_registry.Get(candidate).ModelPath);
        }
        catch (Exception ex) when (ex is ModelCardException or IOException or UnauthorizedAccessException)
        {
            return $"Candidate {candidate} cannot be served: its model card could not be read ({ex.Message}).";
        }

        return _serving.Geometry.CanServe(card)
            ? null
            : $"Candidate {candidate} cannot be served: its card asks for {WindowGeometry.From(card)}, but the serving pipeline serves {_serving.Geometry}; expected a candidate with the champion's window geometry, channels and sample rate, reading no more context than the pipeline keeps.{_serving.Geometry.ContextHint(card)}";
    }
}
