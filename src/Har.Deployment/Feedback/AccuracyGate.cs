using System.Globalization;

namespace Har.Deployment;

/// <summary>
/// The candidate's accuracy on ground-truth feedback against the champion's (<see cref="AnalysisOptions.MaxAccuracyDrop"/>):
/// on the SAME labelled windows when both versions predicted them (mirrored or shadow traffic), with
/// Newcombe's hybrid score interval for a difference of paired proportions; otherwise, on each version's
/// own labelled windows, with Newcombe's interval for independent proportions. The drop is the champion's
/// accuracy minus the candidate's: Fail when its lower bound exceeds the margin (clearly worse by more than
/// allowed; decisive, counting as two failing intervals, when the bound at α² does too, as the error-rate and latency
/// gates' exact failures), Pass when its upper bound is within it, Inconclusive otherwise or with fewer than
/// <see cref="AnalysisOptions.MinLabelledWindows"/> labelled windows. It reads every labelled window the
/// store holds, whatever interval its prediction fell in: labels arrive late, and a version pair's accuracy
/// does not depend on the step.
/// </summary>
/// <remarks>
/// How the analyzer counts it (<see cref="Counted"/>): a Fail counts like any gate's; a Pass outranks the
/// gates that judge the candidate's outputs by proxies of correctness — agreement, class mix, confidence and
/// uncertain rate (their verdicts are then not counted: the candidate is shown to be as accurate as the
/// champion, and disagreeing with a less accurate champion, or being less confident while as often right, is
/// no fault); an Inconclusive or Unmeasurable result (too few labels) is not counted, so a rollout without
/// feedback is judged by the other gates exactly as before — the proxies remain the guards against broken
/// candidates.
/// </remarks>
internal sealed class AccuracyGate(FeedbackStore store, double maxDrop, int minLabelled, double z, double zDecisive = double.PositiveInfinity) : IAnalysisGate
{
    /// <summary>The gate's name.</summary>
    public const string GateName = "accuracy";

    /// <summary>The gates a decisive accuracy verdict outranks.</summary>
    private static readonly string[] Outranked = ["agreement", "class-mix", "confidence", "uncertain-rate"];

    public string Name => GateName;

    /// <summary>
    /// The results the combined verdict is computed from: never a result its gate marked as not counted
    /// (<see cref="GateResult.IsCounted"/>); without an accuracy Pass or Fail, every other result except the
    /// accuracy gate's own; with an accuracy Pass, also not the agreement, class-mix, confidence and
    /// uncertain-rate gates, whose entries in <paramref name="results"/> are replaced by the same verdict with
    /// the message prefixed <c>outranked by accuracy: </c>.
    /// </summary>
    /// <param name="results">Every gate's result; outranked entries are rewritten in place.</param>
    /// <returns>The results that count.</returns>
    public static IReadOnlyList<GateResult> Counted(GateResult[] results)
    {
        var accuracy = Array.Find(results, r => r.Gate == GateName);
        if (accuracy is null)
        {
            return Array.FindAll(results, r => r.IsCounted);
        }

        var counted = new List<GateResult>(results.Length);
        for (var i = 0; i < results.Length; i++)
        {
            var r = results[i];
            if (ReferenceEquals(r, accuracy))
            {
                if (r.Verdict == GateVerdict.Fail)
                {
                    counted.Add(r);
                }

                continue;
            }

            if (accuracy.Verdict == GateVerdict.Pass && Array.IndexOf(Outranked, r.Gate) >= 0)
            {
                results[i] = new GateResult(r.Gate, r.Verdict, "outranked by accuracy: " + r.Message, r.Evidence) { IsCounted = r.IsCounted };
                continue;
            }

            if (r.IsCounted)
            {
                counted.Add(r);
            }
        }

        return counted;
    }

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var candidate = snapshot.Candidate.Version;
        var stable = snapshot.Stable.Version;
        var n = store.Count(candidate, stable);
        var evidence = new Dictionary<string, double>
        {
            ["candidate_labelled"] = n.CandidateLabelled,
            ["candidate_correct"] = n.CandidateCorrect,
            ["stable_labelled"] = n.StableLabelled,
            ["stable_correct"] = n.StableCorrect,
            ["paired"] = n.Pairs,
            ["both_right"] = n.BothRight,
            ["stable_only_right"] = n.StableOnlyRight,
            ["candidate_only_right"] = n.CandidateOnlyRight,
            ["both_wrong"] = n.BothWrong,
            ["max_drop"] = maxDrop,
            ["min_labelled"] = minLabelled,
        };
        if (n.CandidateLabelled == 0 && n.StableLabelled == 0)
        {
            return new(Name, GateVerdict.Unmeasurable, $"No labelled windows (ground-truth feedback) for {candidate} or {stable}.", evidence);
        }

        string basis;
        double stableAccuracy, candidateAccuracy;
        (double Lower, double Upper) interval;
        if (n.Pairs >= minLabelled)
        {
            basis = "paired";
            stableAccuracy = (double)(n.BothRight + n.StableOnlyRight) / n.Pairs;
            candidateAccuracy = (double)(n.BothRight + n.CandidateOnlyRight) / n.Pairs;
            interval = PairedDifference(n.BothRight, n.StableOnlyRight, n.CandidateOnlyRight, n.BothWrong, z);
        }
        else if (n.CandidateLabelled >= minLabelled && n.StableLabelled >= minLabelled)
        {
            basis = "unpaired";
            stableAccuracy = (double)n.StableCorrect / n.StableLabelled;
            candidateAccuracy = (double)n.CandidateCorrect / n.CandidateLabelled;
            interval = IndependentDifference(n.StableCorrect, n.StableLabelled, n.CandidateCorrect, n.CandidateLabelled, z);
        }
        else
        {
            return new(Name, GateVerdict.Inconclusive, $"{candidate} has {n.CandidateLabelled} labelled windows, {stable} {n.StableLabelled}, {n.Pairs} of them paired; {minLabelled} are needed (paired, or of each).", evidence);
        }

        var drop = stableAccuracy - candidateAccuracy;
        evidence["basis_paired"] = basis == "paired" ? 1 : 0;
        evidence["stable_accuracy"] = stableAccuracy;
        evidence["candidate_accuracy"] = candidateAccuracy;
        evidence["accuracy_drop"] = drop;
        evidence["ci_lower"] = interval.Lower;
        evidence["ci_upper"] = interval.Upper;
        var what = Invariant($"{candidate} accuracy {candidateAccuracy:P1} vs {stable} {stableAccuracy:P1} ({basis}, n={(basis == "paired" ? n.Pairs : Math.Min(n.CandidateLabelled, n.StableLabelled))}): drop {drop:0.####}");
        if (interval.Lower > maxDrop)
        {
            // As sure at α² as a pass-or-fail at α is: the evidence of two failing intervals in one.
            var strict = double.IsFinite(zDecisive)
                ? basis == "paired"
                    ? PairedDifference(n.BothRight, n.StableOnlyRight, n.CandidateOnlyRight, n.BothWrong, zDecisive)
                    : IndependentDifference(n.StableCorrect, n.StableLabelled, n.CandidateCorrect, n.CandidateLabelled, zDecisive)
                : (Lower: double.NaN, Upper: double.NaN);
            var decisive = strict.Lower > maxDrop;
            evidence["ci_lower_decisive"] = strict.Lower;
            return new(Name, GateVerdict.Fail, Invariant($"{what}, lower bound {interval.Lower:0.####} exceeds the {maxDrop:0.####} margin{(decisive ? Invariant($" (decisive: {strict.Lower:0.####} at α²)") : string.Empty)}."), evidence) { IsDecisive = decisive };
        }

        if (interval.Upper > maxDrop)
        {
            // Roughly how many labelled windows would clear the interval of the margin (the half-width shrinks as 1/√n).
            var nNow = basis == "paired" ? n.Pairs : Math.Min(n.CandidateLabelled, n.StableLabelled);
            var needed = drop > maxDrop
                ? Statistics.NeededSamples(nNow, drop, interval.Lower, maxDrop)
                : Statistics.NeededSamples(nNow, drop, interval.Upper, maxDrop);
            evidence["needed_labelled"] = needed == long.MaxValue ? double.PositiveInfinity : needed;
        }

        return interval.Upper <= maxDrop
            ? new(Name, GateVerdict.Pass, Invariant($"{what}, upper bound {interval.Upper:0.####} ≤ {maxDrop:0.####}."), evidence)
            : new(Name, GateVerdict.Inconclusive, Invariant($"{what}: interval [{interval.Lower:0.####}, {interval.Upper:0.####}] straddles the {maxDrop:0.####} margin."), evidence);
    }

    /// <summary>
    /// Newcombe's hybrid score interval (1998, Statistics in Medicine 17:2635, method 10) for p1 − p2 of
    /// paired proportions, p1 = (a + b) / n and p2 = (a + c) / n, with each bound at one-sided quantile
    /// <paramref name="z"/>: from the Wilson intervals (l1, u1) and (l2, u2) and the continuity-corrected
    /// correlation φ = C / √((a+b)(c+d)(a+c)(b+d)), C = ad − bc − n/2 when ad − bc &gt; n/2, ad − bc when it is
    /// negative, else 0: L = D − √((p1−l1)² − 2φ(p1−l1)(u2−p2) + (u2−p2)²), U = D + √((p2−l2)² − 2φ(p2−l2)(u1−p1) + (u1−p1)²).
    /// </summary>
    /// <param name="a">Both right.</param>
    /// <param name="b">Only the first right.</param>
    /// <param name="c">Only the second right.</param>
    /// <param name="d">Both wrong.</param>
    /// <param name="z">The one-sided normal quantile of each bound.</param>
    /// <returns>The interval of p1 − p2.</returns>
    internal static (double Lower, double Upper) PairedDifference(long a, long b, long c, long d, double z)
    {
        var n = a + b + c + d;
        if (n == 0)
        {
            return (-1, 1);
        }

        var p1 = (double)(a + b) / n;
        var p2 = (double)(a + c) / n;
        var (l1, u1) = Statistics.Wilson(a + b, n, z);
        var (l2, u2) = Statistics.Wilson(a + c, n, z);
        var product = (double)(a + b) * (c + d) * (a + c) * (b + d);
        var phi = 0.0;
        if (product > 0)
        {
            var ad = ((double)a * d) - ((double)b * c);
            var corrected = ad > n / 2.0 ? ad - (n / 2.0) : ad < 0 ? ad : 0;
            phi = corrected / Math.Sqrt(product);
        }

        var difference = p1 - p2;
        var lower = difference - Math.Sqrt(Math.Max(0, ((p1 - l1) * (p1 - l1)) - (2 * phi * (p1 - l1) * (u2 - p2)) + ((u2 - p2) * (u2 - p2))));
        var upper = difference + Math.Sqrt(Math.Max(0, ((p2 - l2) * (p2 - l2)) - (2 * phi * (p2 - l2) * (u1 - p1)) + ((u1 - p1) * (u1 - p1))));
        return (Math.Max(-1, lower), Math.Min(1, upper));
    }

    /// <summary>
    /// Newcombe's hybrid score interval (1998, Statistics in Medicine 17:873, method 10) for p1 − p2 of
    /// independent proportions, each bound at one-sided quantile <paramref name="z"/>:
    /// L = D − √((p1−l1)² + (u2−p2)²), U = D + √((u1−p1)² + (p2−l2)²).
    /// </summary>
    /// <param name="x1">Successes of the first.</param>
    /// <param name="n1">Trials of the first.</param>
    /// <param name="x2">Successes of the second.</param>
    /// <param name="n2">Trials of the second.</param>
    /// <param name="z">The one-sided normal quantile of each bound.</param>
    /// <returns>The interval of p1 − p2.</returns>
    internal static (double Lower, double Upper) IndependentDifference(long x1, long n1, long x2, long n2, double z)
    {
        if (n1 == 0 || n2 == 0)
        {
            return (-1, 1);
        }

        var p1 = (double)x1 / n1;
        var p2 = (double)x2 / n2;
        var (l1, u1) = Statistics.Wilson(x1, n1, z);
        var (l2, u2) = Statistics.Wilson(x2, n2, z);
        var difference = p1 - p2;
        return (
            Math.Max(-1, difference - Math.Sqrt(((p1 - l1) * (p1 - l1)) + ((u2 - p2) * (u2 - p2)))),
            Math.Min(1, difference + Math.Sqrt(((u1 - p1) * (u1 - p1)) + ((p2 - l2) * (p2 - l2)))));
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
