namespace Har.Deployment;

/// <summary>
/// The failing intervals of the current step since its last pass: a later interval too thin to decide alone is judged
/// together with them by the gates that fail on counts.
/// </summary>
public sealed partial class RolloutController
{
    /// <summary>
    /// The samples of the current step's failing intervals since its last pass (in memory: a restarted or new leader
    /// starts without them and judges each interval alone, as before).
    /// </summary>
    private FailingSamples FailingStreak(RolloutState state)
    {
        if (_failing is not { } f || f.RolloutId != state.RolloutId || f.StepIndex != state.StepIndex)
        {
            _failing = f = new FailingSamples(state.RolloutId, state.StepIndex);
        }

        return f;
    }

    /// <summary>
    /// A failing interval followed by one too thin to decide alone: their samples joined are judged by the gates that
    /// fail decisively on counts. A candidate failing 5 % of 60 requests shows 2 errors in one interval and 1 in the
    /// next, conclusive only together (3 of 120 against the champion's 0 of 1,080: p = 0.001 ≤ α²).
    /// </summary>
    /// <returns>The gates that fail decisively on the joined samples (none when there is no failing interval kept).</returns>
    private IReadOnlyList<GateResult> JudgeWithFailingIntervals(FailingSamples streak, RolloutState next, DateTimeOffset now, IReadOnlyList<string> labels, bool paired)
    {
        if (streak.Deltas.Count == 0)
        {
            return [];
        }

        var all = new RolloutObservations(streak.Start);
        foreach (var delta in streak.Deltas)
        {
            all.Merge(delta);
        }

        all.Merge(Observations.Copy());
        return _analyzer.DecisiveOnJoinedSamples(AnalysisSnapshotOf(all, next, now, labels, reset: true), paired);
    }

    private AnalysisSnapshot AnalysisSnapshotOf(RolloutObservations observations, RolloutState next, DateTimeOffset now, IReadOnlyList<string> labels, bool reset) =>
        observations.TakeSnapshot(next.Candidate, next.Champion, now, labels, _host.GetBaselineLatency(next.Candidate), _host.GetBaselineLatency(next.Champion), _host.GetOutputReference(next.Candidate, next.Champion), _host.GetOutputReference(next.Champion, next.Champion), reset);

    private sealed class FailingSamples(string rolloutId, int stepIndex)
    {
        public string RolloutId { get; } = rolloutId;

        public int StepIndex { get; } = stepIndex;

        public DateTimeOffset Start { get; private set; }

        public List<ObservationDelta> Deltas { get; } = [];

        /// <summary>Keeps a failing interval that is not decisive (until a pass), to judge a later thin interval with it; a pass clears them.</summary>
        public void Update(GateVerdict verdict, bool decisiveFailure, DateTimeOffset intervalStart, RolloutObservations observations)
        {
            if (verdict == GateVerdict.Fail && !decisiveFailure)
            {
                if (Deltas.Count == 0)
                {
                    Start = intervalStart;
                }

                Deltas.Add(observations.Copy());
            }
            else if (verdict == GateVerdict.Pass)
            {
                Deltas.Clear();
            }
        }
    }
}
