using System.Globalization;

namespace Har.Deployment;

/// <summary>
/// A drop of a per-prediction quantity (mean confidence, or the uncertain rate's increase) versus the
/// champion, judged with a confidence interval of the difference: paired on identical windows when
/// pairs exist, otherwise Welch's unpaired interval on the two versions' own traffic.
/// </summary>
/// <remarks>
/// Two healthy models are calibrated differently, and by activity: the bundled CNN 1.1.0 is less confident
/// than the CNN-BiLSTM 1.0.0 overall (mean 0.759 vs 0.815 on the HAPT test subjects) and far less on some
/// activities, so in an interval where the few devices on a 10 % step happen to sit or stand, its drop is
/// well above the overall gap. The difference is therefore judged against the gap the two versions show on
/// known reference windows (the smoke-test windows), for the activities each predicted in the interval: each
/// version's expected figure is Σₖ (its share of predictions of class k) × (its mean on the reference windows it
/// predicted as k), the overall reference mean standing for classes with fewer than
/// <see cref="OutputReference.MinClassWindows"/> reference windows (<see cref="OutputReference.Expected"/>), and
/// the candidate's shortfall from its expectation is compared with the champion's shortfall from its own (the
/// observed difference less the expected one, with the interval's confidence interval as before). An interval
/// whose activity mix alone widens the gap passes; a candidate less confident than its own reference on the
/// same activities fails. Traffic harder than the reference windows for both versions moves the candidate's
/// expectation by the champion's own shift on the log-odds scale (see <see cref="Evaluate"/>); with the champion
/// on its reference nothing moves. The expected gap only excuses: one in the candidate's favour (expected less
/// doubtful than the champion) is not required of it, so the judged difference is never above the raw one. Without such a reference the gap between two versions
/// measures their calibration as much as the candidate's health: the verdict is reported with its evidence
/// but not counted (<see cref="GateResult.IsCounted"/>), and the agreement and class-mix gates (or the
/// accuracy gate, with feedback labels) remain the guards against a broken candidate.
/// </remarks>
internal sealed class DifferenceGate : IAnalysisGate
{
    private readonly bool _uncertainty;
    private readonly double _limit;
    private readonly int _minSamples;
    private readonly double _z;

    private DifferenceGate(bool uncertainty, double limit, int minSamples, double z)
    {
        _uncertainty = uncertainty;
        _limit = limit;
        _minSamples = minSamples;
        _z = z;
    }

    public string Name => _uncertainty ? "uncertain-rate" : "confidence";

    public static DifferenceGate Confidence(double maxDrop, int minSamples, double z) => new(false, maxDrop, minSamples, z);

    public static DifferenceGate Uncertainty(double maxIncrease, int minSamples, double z) => new(true, maxIncrease, minSamples, z);

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var p = snapshot.Paired;
        var c = snapshot.Candidate;
        var s = snapshot.Stable;
        double difference, se;
        long n;
        string basis;
        if (p.Pairs >= _minSamples)
        {
            n = p.Pairs;
            basis = "paired";
            if (_uncertainty)
            {
                var rc = (double)p.CandidateUncertain / n;
                var rs = (double)p.StableUncertain / n;
                difference = rc - rs;
                se = PairedRateStandardError(n, p.CandidateUncertain, p.StableUncertain, p.BothUncertain);
            }
            else
            {
                difference = p.MeanConfidenceDrop;
                se = Math.Sqrt(Statistics.Variance(n, p.ConfidenceDifferenceSum, p.ConfidenceDifferenceSumSquares) / n);
            }
        }
        else
        {
            n = Math.Min(c.Predictions, s.Predictions);
            basis = "unpaired";
            if (n < _minSamples)
            {
                return Referenced(snapshot, new(Name, n == 0 && p.Pairs == 0 ? GateVerdict.Unmeasurable : GateVerdict.Inconclusive, $"{c.Version} vs {s.Version}: {c.Predictions}/{s.Predictions} predictions and {p.Pairs} pairs; {_minSamples} are needed.", Evidence(double.NaN, double.NaN, n, basis)));
            }

            if (_uncertainty)
            {
                var rc = c.UncertainRate;
                var rs = s.UncertainRate;
                difference = rc - rs;
                se = Math.Sqrt(Math.Max((rc * (1 - rc) / c.Predictions) + (rs * (1 - rs) / s.Predictions), 1e-12));
            }
            else
            {
                difference = s.MeanConfidence - c.MeanConfidence;
                var vc = Statistics.Variance(c.Predictions, c.ConfidenceSum, c.ConfidenceSumSquares);
                var vs = Statistics.Variance(s.Predictions, s.ConfidenceSum, s.ConfidenceSumSquares);
                se = Math.Sqrt((vc / c.Predictions) + (vs / s.Predictions));
            }
        }

        // Judge each version against its own calibration, for the activities it predicted: each version's expected
        // figure is its reference figure for each class it predicted in the interval, weighted by its share of those
        // predictions (the pairs' class counts when paired, its own traffic's otherwise). A less confident but equally
        // right architecture is not taken for a degraded one, nor is an interval in which the few devices on a step sit
        // or stand, where it is less confident still; a candidate that is less confident than itself on the reference
        // windows' activities is.
        //
        // Then like with like in difficulty: traffic can be harder than the reference windows for both versions (a few
        // devices' people whose sitting neither model knows well: the champion uncertain on 42 % of their windows where
        // its reference for the same activities expects 9.5 %). The champion, the version known to be healthy, measures
        // how much harder: the log-odds shift from its expected to its observed doubt (uncertain rate, or 1 − mean
        // confidence). The same shift applied to the candidate's expectation is what a candidate as healthy as the
        // champion shows on that traffic; a less confident architecture's rate rises more in points for the same shift
        // (0.17 → 0.58 where the champion's goes 0.095 → 0.42). The judged difference is the candidate's observed
        // figure against that expectation; with the champion on its reference (no shift) it is the observed gap less
        // the expected gap, and a candidate whose fault the champion does not share keeps all of its shortfall.
        var gap = 0.0;
        var evidenceExtra = new Dictionary<string, double>();
        if (snapshot.CandidateReference is { } cr && snapshot.StableReference is { } sr)
        {
            var paired = basis == "paired";
            var (candidateExpected, candidateCovered) = cr.Expected(_uncertainty, paired ? p.CandidateClassCounts : c.ClassCounts);
            var (stableExpected, stableCovered) = sr.Expected(_uncertainty, paired ? p.StableClassCounts : s.ClassCounts);

            // In doubt terms (higher is worse for both gates): the uncertain rate, or 1 − mean confidence.
            var candidateDoubt = _uncertainty ? candidateExpected : 1 - candidateExpected;
            var stableDoubt = _uncertainty ? stableExpected : 1 - stableExpected;
            var stableObserved = _uncertainty
                ? paired ? (double)p.StableUncertain / p.Pairs : s.UncertainRate
                : 1 - (paired ? p.StableMeanConfidence : s.MeanConfidence);
            var shift = double.IsFinite(stableObserved) ? Logit(stableObserved) - Logit(stableDoubt) : 0;
            var candidateHere = candidateDoubt + (Expit(Logit(candidateDoubt) + shift) - Expit(Logit(candidateDoubt)));
            gap = double.IsFinite(stableObserved) ? candidateHere - stableObserved : candidateDoubt - stableDoubt;
            evidenceExtra["additive_reference_gap"] = candidateDoubt - stableDoubt;
            evidenceExtra["overall_reference_gap"] = _uncertainty ? cr.UncertainRate - sr.UncertainRate : sr.MeanConfidence - cr.MeanConfidence;
            evidenceExtra["candidate_expected"] = candidateExpected;
            evidenceExtra["stable_expected"] = stableExpected;
            evidenceExtra["stable_observed"] = _uncertainty ? stableObserved : 1 - stableObserved;
            evidenceExtra["stable_shift_log_odds"] = shift;
            evidenceExtra["candidate_expected_on_this_traffic"] = _uncertainty ? candidateHere : 1 - candidateHere;
            evidenceExtra["candidate_class_covered"] = candidateCovered;
            evidenceExtra["stable_class_covered"] = stableCovered;
            evidenceExtra["reference_windows"] = Math.Min(cr.Windows, sr.Windows);
        }

        // The expectation excuses, it never accuses: a candidate expected to be more doubtful than the champion (a less
        // confident architecture) is judged against that expectation, but one expected to be less doubtful is not
        // required to show it on traffic harder than the reference for both (five devices' people whom both models
        // doubt on half their windows: the candidate's 0.093 reference rate put at 0.36 by the champion's shift, where
        // it measured 0.61 against the champion's 0.48 — a 0.12 raw gap judged as 0.25). Two witnesses must agree to
        // fail it: the raw gap and the gap beyond the expected one.
        var referenced = snapshot.CandidateReference is not null && snapshot.StableReference is not null;
        var raw = difference;
        var applied = Math.Max(gap, 0);
        difference -= applied;
        var lower = difference - (_z * se);
        var upper = difference + (_z * se);
        var evidence = Evidence(difference, se, n, basis);
        evidence["raw_difference"] = raw;
        if (_uncertainty && basis == "paired" && p.BothUncertain >= 0)
        {
            evidence["both_uncertain"] = p.BothUncertain;
        }

        evidence["reference_gap"] = gap;
        evidence["reference_gap_applied"] = applied;
        foreach (var (key, value) in evidenceExtra)
        {
            evidence[key] = value;
        }

        evidence["ci_lower"] = lower;
        evidence["ci_upper"] = upper;
        evidence["calibration_reference"] = referenced ? 1 : 0;
        var what = (_uncertainty ? "uncertain-rate increase" : "confidence drop") + (referenced ? Invariant($" (observed {raw:0.####}{Observed(snapshot, basis == "paired")}, {(gap >= 0 ? $"less the {gap:0.####} expected" : $"the {-gap:0.####} in its favour expected but not required")}: the reference windows give {evidence["candidate_expected"]:0.###} vs {evidence["stable_expected"]:0.###} for the classes each version predicted, {evidence["candidate_expected_on_this_traffic"]:0.###} for the candidate on traffic that moves the champion to {evidence["stable_observed"]:0.###})") : string.Empty);
        var result = lower > _limit
            ? new GateResult(Name, GateVerdict.Fail, Invariant($"{c.Version} {what} {difference:0.####} vs {s.Version} ({basis}, n={n}); lower bound {lower:0.####} exceeds {_limit:0.####}."), evidence)
            : upper <= _limit
                ? new GateResult(Name, GateVerdict.Pass, Invariant($"{c.Version} {what} {difference:0.####} vs {s.Version} ({basis}, n={n}); upper bound {upper:0.####} ≤ {_limit:0.####}."), evidence)
                : new GateResult(Name, GateVerdict.Inconclusive, Invariant($"{c.Version} {what} {difference:0.####}: interval [{lower:0.####}, {upper:0.####}] straddles {_limit:0.####}; about {Statistics.NeededSamples(n, difference, upper, _limit)} {basis} windows would decide it."), evidence);
        return Referenced(snapshot, result);
    }

    /// <summary>
    /// The standard error of the difference of two uncertain rates measured on the same windows. The two versions doubt
    /// the same hard windows, so the rates move together and only the discordant pairs (one version uncertain, the other
    /// not) carry the difference: with b = candidate-only and c = stable-only pairs (as shares of n), each pair's
    /// difference is +1, −1 or 0 and its variance is (b + c) − (b − c)² (the variance behind McNemar's test). Treating
    /// the two rates as independent samples overstates it whenever they overlap: on five devices that both models doubt
    /// on half their windows (0.605 vs 0.487 on 950 pairs) the independent interval [0.081, 0.155] straddled the 0.15
    /// limit for 40 intervals and held a healthy candidate at its first step. A replica that did not ship the
    /// both-uncertain count leaves only that conservative figure.
    /// </summary>
    internal static double PairedRateStandardError(long n, long candidateUncertain, long stableUncertain, long bothUncertain)
    {
        var rc = (double)candidateUncertain / n;
        var rs = (double)stableUncertain / n;
        if (bothUncertain < 0)
        {
            return Math.Sqrt(Math.Max(((rc * (1 - rc)) + (rs * (1 - rs))) / n, 1e-12));
        }

        var b = (double)(candidateUncertain - bothUncertain) / n;
        var c = (double)(stableUncertain - bothUncertain) / n;
        var variance = b + c - ((b - c) * (b - c));

        // No discordant pair yet is not certainty: a floor of one discordant pair in n keeps the interval open.
        return Math.Sqrt(Math.Max(variance, 1.0 / n) / n);
    }

    /// <summary>Log-odds of a rate, taken between <see cref="DoubtFloor"/> and 1 − <see cref="DoubtFloor"/>.</summary>
    private static double Logit(double x)
    {
        x = Math.Clamp(x, DoubtFloor, 1 - DoubtFloor);
        return Math.Log(x / (1 - x));
    }

    private static double Expit(double x) => 1 / (1 + Math.Exp(-x));

    /// <summary>
    /// The lowest rate (and 1 − the highest) the log-odds shift is taken at: a reference on which the champion is never
    /// unsure (windows picked for its confidence) would otherwise turn any uncertainty on traffic into an unbounded shift.
    /// </summary>
    private const double DoubtFloor = 0.02;

    /// <summary>Each version's own figure in the interval, where the observations keep it (not the paired confidence from a replica that did not ship the champion's).</summary>
    private string Observed(AnalysisSnapshot snapshot, bool paired)
    {
        var p = snapshot.Paired;
        var (c, s) = _uncertainty
            ? paired ? ((double)p.CandidateUncertain / p.Pairs, (double)p.StableUncertain / p.Pairs) : (snapshot.Candidate.UncertainRate, snapshot.Stable.UncertainRate)
            : paired ? (p.StableMeanConfidence - p.MeanConfidenceDrop, p.StableMeanConfidence) : (snapshot.Candidate.MeanConfidence, snapshot.Stable.MeanConfidence);
        return double.IsNaN(c) ? string.Empty : Invariant($": {c:0.###} vs {s:0.###}");
    }

    /// <summary>The result as counted: not counted without both versions' calibration reference.</summary>
    private static GateResult Referenced(AnalysisSnapshot snapshot, GateResult result) =>
        snapshot.CandidateReference is not null && snapshot.StableReference is not null
            ? result
            : new GateResult(result.Gate, result.Verdict, $"not counted (no calibration reference: without smoke-test windows a gap between two versions measures their calibration, not the candidate's health): {result.Message}", result.Evidence) { IsCounted = false };

    private Dictionary<string, double> Evidence(double difference, double se, long n, string basis) => new()
    {
        [_uncertainty ? "uncertain_rate_increase" : "confidence_drop"] = difference,
        ["standard_error"] = se,
        ["n"] = n,
        ["paired"] = basis == "paired" ? 1 : 0,
        ["threshold"] = _limit,
        ["min_samples"] = _minSamples,
    };

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
