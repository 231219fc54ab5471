using System.Globalization;
using System.Text.Json.Nodes;

namespace Har.Deployment;

/// <summary>Ground truth during a rollout: what the accuracy gate still lacks, and when its measured drop ends the wait.</summary>
public sealed partial class RolloutController
{
    /// <summary>
    /// What the accuracy gate still lacks when ground truth is arriving for this rollout (the candidate's predictions
    /// have labelled windows) and no later analysis of this rollout can still compare the two versions (a later step
    /// where the champion still serves, mirrors or is shadowed); <see langword="null"/> when nothing need wait: no
    /// feedback, the gate decided (Pass or Fail), or a later analysis can decide.
    /// </summary>
    private static string? AccuracyPending(RolloutState state, AnalysisResult result)
    {
        var accuracy = result.Gates.FirstOrDefault(g => g.Gate == AccuracyGate.GateName);
        if (accuracy is null || accuracy.Verdict is GateVerdict.Pass or GateVerdict.Fail
            || !accuracy.Evidence.TryGetValue("candidate_labelled", out var candidateLabelled) || candidateLabelled <= 0)
        {
            return null;
        }

        // A later analysis at which the champion still serves part of the traffic (or runs mirrored/shadowed) can still decide.
        var buckets = state.CandidateBuckets;
        var mirror = state.Mirror;
        var shadow = state.ShadowBuckets;
        for (var i = state.StepIndex + 1; i < state.Steps.Count; i++)
        {
            var later = state.Steps[i].ToStep();
            switch (later.Kind)
            {
                case RolloutStepKind.SetWeight:
                    buckets = later.Buckets;
                    mirror = later.MirrorToStable;
                    break;
                case RolloutStepKind.Shadow:
                    shadow = later.Buckets;
                    break;
                case RolloutStepKind.Analyze when buckets < TrafficPlan.BucketCount || mirror || shadow > 0:
                    return null;
            }
        }

        var e = accuracy.Evidence;
        var needed = e.TryGetValue("needed_labelled", out var n) ? n : e.GetValueOrDefault("min_labelled");
        return string.Create(CultureInfo.InvariantCulture, $"the accuracy gate has {candidateLabelled:0} labelled windows of the candidate, {e.GetValueOrDefault("stable_labelled"):0} of the champion, {e.GetValueOrDefault("paired"):0} paired, and needs about {needed:0} (paired, or of each): {accuracy.Message}");
    }

    /// <summary>The undecided accuracy gate's measured drop and margin when it measured one within the margin; otherwise null.</summary>
    private static (double Drop, double Margin, GateResult Gate)? DropWithinMargin(AnalysisResult result)
    {
        var accuracy = result.Gates.FirstOrDefault(g => g.Gate == AccuracyGate.GateName);
        return accuracy is not null && accuracy.Evidence.TryGetValue("accuracy_drop", out var drop) && accuracy.Evidence.TryGetValue("max_drop", out var margin) && drop <= margin
            ? (drop, margin, accuracy)
            : null;
    }

    /// <summary>Ends the accuracy wait on the measured drop: records it in the audit log and in the status message.</summary>
    private static void EndAccuracyWaitOnEstimate(RolloutState next, (double Drop, double Margin, GateResult Gate) estimate)
    {
        var (drop, margin, accuracy) = estimate;
        var body = StepEvent(next, "the accuracy gate did not decide within the wait; the measured drop is within the margin");
        body["extra_intervals"] = next.AccuracyWaitInStep;
        body["accuracy_drop"] = drop;
        body["ci_lower"] = accuracy.Evidence.GetValueOrDefault("ci_lower");
        body["ci_upper"] = accuracy.Evidence.GetValueOrDefault("ci_upper");
        body["max_drop"] = margin;
        RolloutOutbox.Emit(next, "rollout.accuracy-estimate", "info", SystemActor, body);
        next.Message = string.Create(CultureInfo.InvariantCulture, $"the accuracy gate did not decide within {next.AccuracyWaitInStep} extra interval(s); its measured drop {drop:0.####} is within the {margin:0.####} margin, so the step ends: {accuracy.Message}");
    }

    /// <summary>The fields every event about a held step starts with: the step, the candidate's share and why.</summary>
    private static JsonObject StepEvent(RolloutState next, string reason) => new()
    {
        ["step"] = next.StepIndex,
        ["candidate_percent"] = next.CandidateBuckets / 100.0,
        ["reason"] = reason,
    };
}
