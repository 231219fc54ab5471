using System.Globalization;

namespace Har.Deployment;

/// <summary>
/// The candidate's error rate against <see cref="AnalysisOptions.MaxErrorRate"/> (Wilson interval), and
/// against the champion's in the same interval (<see cref="AnalysisOptions.MaxErrorRateIncrease"/>,
/// Newcombe's hybrid score interval of the difference): a candidate that fails 5 % of requests where the
/// champion fails none is not within the reference trigger's "error rate &gt; 5 %" but is clearly broken.
/// </summary>
/// <remarks>
/// Below <see cref="AnalysisOptions.MinRequests"/> the gate never passes, but it fails on conclusive evidence from
/// exact tests at the configured confidence: the one-sided binomial test against the limit
/// (P(X ≥ errors | requests, limit) ≤ α), or Fisher's exact one-sided test that the candidate fails more often
/// than the champion (p ≤ α) with an observed increase above the allowed one (the increase is an effect-size
/// floor there). Such a failure whose exact p-value is at most α² is marked decisive (<see cref="GateResult.IsDecisive"/>).
/// From the minimum on, the asymptotic intervals decide and the controller's hysteresis applies as before.
/// </remarks>
internal sealed class ErrorRateGate(double maxErrorRate, double? maxIncrease, int minRequests, double z, double alpha = 0.05) : IAnalysisGate
{
    public string Name => "error-rate";

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var c = snapshot.Candidate;
        var s = snapshot.Stable;
        var (lower, upper) = Statistics.Wilson(c.Errors, c.Requests, z);
        var evidence = new Dictionary<string, double>
        {
            ["requests"] = c.Requests,
            ["errors"] = c.Errors,
            ["error_rate"] = c.ErrorRate,
            ["ci_lower"] = lower,
            ["ci_upper"] = upper,
            ["threshold"] = maxErrorRate,
            ["min_requests"] = minRequests,
            ["stable_requests"] = s.Requests,
            ["stable_errors"] = s.Errors,
        };
        if (c.Requests == 0)
        {
            return new(Name, GateVerdict.Unmeasurable, $"{c.Version} received no requests in the interval.", evidence);
        }

        // Exact one-sided p-values: against the absolute limit, and against the champion (Fisher) when the observed
        // increase is above the allowed one.
        var pLimit = c.ErrorRate > maxErrorRate ? Statistics.BinomialAtLeast(c.Errors, c.Requests, maxErrorRate) : 1;
        var increase = s.Requests > 0 ? c.ErrorRate - s.ErrorRate : double.NaN;
        var pChampion = maxIncrease is { } m && s.Requests > 0 && increase > m ? Statistics.FisherGreater(c.Errors, c.Requests, s.Errors, s.Requests) : 1;
        var pExact = Math.Min(pLimit, pChampion);
        evidence["p_exact_limit"] = pLimit;
        evidence["p_exact_champion"] = pChampion;
        evidence["alpha"] = alpha;
        var decisive = pExact <= alpha * alpha;

        if (c.Requests < minRequests)
        {
            if (pLimit <= alpha)
            {
                return new(Name, GateVerdict.Fail, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}, fewer than the {minRequests} requests a pass needs) exceeds the {maxErrorRate:P1} limit by an exact binomial test, p = {pLimit:G3} ≤ {alpha:G3}{(decisive ? " (decisive)" : string.Empty)}."), evidence) { IsDecisive = decisive };
            }

            if (pChampion <= alpha)
            {
                return new(Name, GateVerdict.Fail, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}, fewer than the {minRequests} requests a pass needs) vs the champion's {s.ErrorRate:P1} ({s.Errors}/{s.Requests}): higher by Fisher's exact test, p = {pChampion:G3} ≤ {alpha:G3}, by more than {maxIncrease:P1}{(decisive ? " (decisive)" : string.Empty)}."), evidence) { IsDecisive = decisive };
            }

            return new(Name, GateVerdict.Inconclusive, Invariant($"{c.Version} has {c.Requests} requests ({c.Errors} errors); at least {minRequests} are needed to pass the error-rate gate, and the errors are not conclusive yet (exact p = {pExact:G3} > {alpha:G3})."), evidence);
        }

        if (lower > maxErrorRate)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}); its lower bound {lower:P1} exceeds the {maxErrorRate:P1} limit."), evidence);
        }

        if (maxIncrease is { } margin && s.Requests > 0)
        {
            var (_, su) = Statistics.Wilson(s.Errors, s.Requests, z);
            var diffLower = increase - Math.Sqrt(Square(c.ErrorRate - lower) + Square(su - s.ErrorRate));
            evidence["stable_error_rate"] = s.ErrorRate;
            evidence["increase"] = increase;
            evidence["increase_ci_lower"] = diffLower;
            evidence["max_increase"] = margin;
            if (diffLower > margin)
            {
                return new(Name, GateVerdict.Fail, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}) vs the champion's {s.ErrorRate:P1} ({s.Errors}/{s.Requests}); the increase's lower bound {diffLower:P1} exceeds {margin:P1}."), evidence);
            }
        }

        return upper <= maxErrorRate
            ? new(Name, GateVerdict.Pass, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}); upper bound {upper:P1} ≤ {maxErrorRate:P1}."), evidence)
            : new(Name, GateVerdict.Inconclusive, Invariant($"{c.Version} error rate {c.ErrorRate:P1}: interval [{lower:P1}, {upper:P1}] straddles the {maxErrorRate:P1} limit; about {Statistics.NeededSamples(c.Requests, c.ErrorRate, upper, maxErrorRate)} requests would decide it."), evidence);
    }

    private static double Square(double x) => x * x;

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// The candidate's service time — the model's own inference time per window, from a monotonic clock,
/// without queueing — against absolute p95/p99 budgets, against the champion's in the same interval,
/// and relative to each version's single-window baseline under the current load (inflation). The caller's wait (queueing included)
/// is in the evidence but never decides: both versions queue on the same machine, so the wait says more
/// about concurrency than about the model. A host that reports no service time is judged on the wait
/// (evidence <c>basis</c> = 0).
/// </summary>
/// <remarks>
/// Below the minimum sample size the gate never passes, but it fails when distribution-free confidence bounds
/// (order statistics chosen by the binomial distribution, taken at the conservative edge of their histogram
/// bucket) already prove the regression at the configured confidence: the lower bound of the candidate's p95
/// above the p95 budget, or the lower bound of the candidate's median against the upper bound of the champion's
/// (each at α/2, Bonferroni) beyond the allowed ratio or inflation. A failure that holds at α² is decisive
/// (<see cref="GateResult.IsDecisive"/>).
/// </remarks>
internal sealed class LatencyGate(TimeSpan? p95Budget, TimeSpan? p99Budget, double? maxRatio, double? maxInflation, int minSamples, double alpha = 0.05) : IAnalysisGate
{
    public string Name => "latency";

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var c = snapshot.Candidate;
        var s = snapshot.Stable;
        var service = c.ServiceTimeSamples > 0;
        var (cn, c50, c95, c99) = service ? (c.ServiceTimeSamples, c.ServiceTimeP50, c.ServiceTimeP95, c.ServiceTimeP99) : (c.LatencySamples, c.LatencyP50, c.LatencyP95, c.LatencyP99);
        var (sn, s50, s95) = service ? (s.ServiceTimeSamples, s.ServiceTimeP50, s.ServiceTimeP95) : (s.LatencySamples, s.LatencyP50, s.LatencyP95);
        var what = service ? "service time" : "latency (wait: no service time reported)";
        var evidence = new Dictionary<string, double>
        {
            ["basis"] = service ? 1 : 0,
            ["candidate_samples"] = cn,
            ["candidate_service_p50_ms"] = c.ServiceTimeP50.TotalMilliseconds,
            ["candidate_service_p95_ms"] = c.ServiceTimeP95.TotalMilliseconds,
            ["candidate_service_p99_ms"] = c.ServiceTimeP99.TotalMilliseconds,
            ["candidate_wait_p50_ms"] = c.LatencyP50.TotalMilliseconds,
            ["candidate_wait_p95_ms"] = c.LatencyP95.TotalMilliseconds,
            ["candidate_wait_p99_ms"] = c.LatencyP99.TotalMilliseconds,
            ["stable_samples"] = sn,
            ["stable_service_p50_ms"] = s.ServiceTimeP50.TotalMilliseconds,
            ["stable_service_p95_ms"] = s.ServiceTimeP95.TotalMilliseconds,
            ["stable_wait_p50_ms"] = s.LatencyP50.TotalMilliseconds,
            ["stable_wait_p95_ms"] = s.LatencyP95.TotalMilliseconds,
            ["min_samples"] = minSamples,
        };
        if (service && c.SingleServiceHistogram is { } cs1 && s.SingleServiceHistogram is { } ss1)
        {
            evidence["candidate_single_samples"] = cs1.Count;
            evidence["stable_single_samples"] = ss1.Count;
        }

        if (p95Budget is { } b95)
        {
            evidence["p95_budget_ms"] = b95.TotalMilliseconds;
        }

        if (p99Budget is { } b99)
        {
            evidence["p99_budget_ms"] = b99.TotalMilliseconds;
        }

        if (maxRatio is { } r)
        {
            evidence["max_ratio"] = r;
        }

        if (cn == 0)
        {
            return new(Name, GateVerdict.Unmeasurable, $"{c.Version} has no {what} samples in the interval.", evidence);
        }

        if (cn < minSamples)
        {
            // Too few samples to pass; fail only on bounds that already prove the regression.
            if (service && ProvenRegression(snapshot, alpha, evidence) is { } proven)
            {
                var decisive = ProvenRegression(snapshot, alpha * alpha, null) is not null;
                return new(Name, GateVerdict.Fail, Invariant($"{c.Version} has {cn} {what} samples (fewer than the {minSamples} a pass needs), but {proven} at {1 - alpha:P0} confidence{(decisive ? " (decisive)" : string.Empty)}."), evidence) { IsDecisive = decisive };
            }

            return new(Name, GateVerdict.Inconclusive, $"{c.Version} has {cn} {what} samples; {minSamples} are needed.", evidence);
        }

        if (p95Budget is { } budget95 && c95 > budget95)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{c.Version} p95 {what} {c95.TotalMilliseconds:0.###} ms exceeds the {budget95.TotalMilliseconds:0.###} ms budget (callers waited p95 {c.LatencyP95.TotalMilliseconds:0.###} ms)."), evidence);
        }

        if (p99Budget is { } budget99 && c99 > budget99)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{c.Version} p99 {what} {c99.TotalMilliseconds:0.###} ms exceeds the {budget99.TotalMilliseconds:0.###} ms budget (callers waited p99 {c.LatencyP99.TotalMilliseconds:0.###} ms)."), evidence);
        }

        if ((maxRatio is not null || maxInflation is not null) && sn < minSamples)
        {
            return new(Name, GateVerdict.Inconclusive, $"{s.Version} (the champion) has {sn} {what} samples; {minSamples} are needed to compare.", evidence);
        }

        // Like with like: a window's share of a batched run is cheaper than a single-window run, and the champion,
        // with most of the traffic, is batched more than the candidate, so the medians are compared on single-window
        // runs. Where either version has too few of those (most windows batched), the two versions' single-window
        // baselines — measured one after the other under the current load — stand for the ratio, and the inflation
        // is not judged (a batched median below the baseline hides the contention the other version shows).
        var comparable = true;
        if (service && c.SingleServiceHistogram is { } cSingle && s.SingleServiceHistogram is { } sSingle)
        {
            comparable = cSingle.Count >= minSamples && sSingle.Count >= minSamples;
            if (comparable)
            {
                (c50, s50) = (cSingle.Quantile(0.5), sSingle.Quantile(0.5));
                evidence["candidate_single_p50_ms"] = c50.TotalMilliseconds;
                evidence["stable_single_p50_ms"] = s50.TotalMilliseconds;
            }
        }

        evidence["like_with_like"] = comparable ? 1 : 0;
        if (!comparable)
        {
            if (maxRatio is { } baselineRatio && snapshot.CandidateBaselineLatency is { } cbr && snapshot.StableBaselineLatency is { } sbr && cbr > TimeSpan.Zero && sbr > TimeSpan.Zero)
            {
                var observed = cbr.Ticks / (double)sbr.Ticks;
                evidence["baseline_ratio"] = observed;
                if (observed > baselineRatio)
                {
                    return new(Name, GateVerdict.Fail, Invariant($"{c.Version} single-window median {what} {cbr.TotalMilliseconds:0.###} ms is {observed:0.##}× the champion's {sbr.TotalMilliseconds:0.###} ms, both measured now; at most {baselineRatio:0.##}× is allowed (traffic medians not compared: too few single-window runs, most windows were batched)."), evidence);
                }
            }

            return new(Name, GateVerdict.Pass, Invariant($"{c.Version} {what} p95 {c95.TotalMilliseconds:0.###} ms, p99 {c99.TotalMilliseconds:0.###} ms within budget; single-window speed compared on baselines, as most windows were batched (callers waited p95 {c.LatencyP95.TotalMilliseconds:0.###} ms vs {s.LatencyP95.TotalMilliseconds:0.###} ms)."), evidence);
        }

        // Medians: on a busy host the tail of a sub-millisecond model is preemptions, and the two versions'
        // tails are estimated from very different sample sizes (10 % vs 90 % of the traffic); the median is
        // what each model costs.
        if (maxRatio is { } ratio)
        {
            var observed = c50.Ticks / (double)Math.Max(1, s50.Ticks);
            evidence["p50_ratio"] = observed;
            if (observed > ratio)
            {
                return new(Name, GateVerdict.Fail, Invariant($"{c.Version} median {what} {c50.TotalMilliseconds:0.###} ms is {observed:0.##}× the champion's {s50.TotalMilliseconds:0.###} ms; at most {ratio:0.##}× is allowed."), evidence);
            }
        }

        // A new architecture has its own intrinsic speed, so a regression is judged against each version's
        // single-window baseline (one window, no queueing, re-measured under the current load): how much slower each
        // serves single-window runs than it computes them, candidate relative to champion. Each ratio is taken as at
        // least 1 (a run faster than the baseline is no merit of the model); a slowdown above the baseline (a
        // regression, or contention shared by both versions) is what is compared. Medians: a sub-millisecond model's
        // tail is dominated by preemptions on a busy host, its median is not.
        if (maxInflation is { } inflationLimit && snapshot.CandidateBaselineLatency is { } cb && snapshot.StableBaselineLatency is { } sb && cb > TimeSpan.Zero && sb > TimeSpan.Zero)
        {
            var (candidateInflation, stableInflation, relative, additive) = Slowdown(c50, s50, cb, sb);
            evidence["candidate_baseline_p50_ms"] = cb.TotalMilliseconds;
            evidence["stable_baseline_p50_ms"] = sb.TotalMilliseconds;
            evidence["candidate_inflation"] = candidateInflation;
            evidence["stable_inflation"] = stableInflation;
            evidence["relative_inflation"] = relative;
            evidence["additive_inflation"] = additive;
            evidence["max_inflation"] = inflationLimit;
            if (Math.Min(relative, additive) > inflationLimit)
            {
                return new(Name, GateVerdict.Fail, Invariant($"{c.Version} median {what} {c50.TotalMilliseconds:0.###} ms is {candidateInflation:0.##}× its single-window median ({cb.TotalMilliseconds:0.###} ms) while the champion's is {stableInflation:0.##}× its own: a {relative:0.##}× relative slowdown ({additive:0.##}× with the champion's extra {(s50 - sb).TotalMilliseconds:0.###} ms taken as shared); at most {inflationLimit:0.##}× is allowed."), evidence);
            }
        }

        return new(Name, GateVerdict.Pass, Invariant($"{c.Version} {what} p95 {c95.TotalMilliseconds:0.###} ms, p99 {c99.TotalMilliseconds:0.###} ms within budget (champion p95 {s95.TotalMilliseconds:0.###} ms; callers waited p95 {c.LatencyP95.TotalMilliseconds:0.###} ms vs {s.LatencyP95.TotalMilliseconds:0.###} ms)."), evidence);
    }

    /// <summary>
    /// The regression that distribution-free bounds at level 1 − <paramref name="level"/> prove, or <see langword="null"/>:
    /// the candidate's p95 service time above its budget, or its median against the champion's beyond the ratio or inflation limit.
    /// </summary>
    private string? ProvenRegression(AnalysisSnapshot snapshot, double level, Dictionary<string, double>? evidence)
    {
        var c = snapshot.Candidate;
        var s = snapshot.Stable;
        if (c.ServiceHistogram is not { } ch)
        {
            return null;
        }

        if (p95Budget is { } budget)
        {
            var lower95 = ch.LowerBound(0.95, level);
            if (evidence is not null)
            {
                evidence["candidate_service_p95_lower_bound_ms"] = lower95.TotalMilliseconds;
            }

            if (lower95 > budget)
            {
                return Invariant($"its p95 service time is at least {lower95.TotalMilliseconds:0.###} ms, over the {budget.TotalMilliseconds:0.###} ms budget");
            }
        }

        if (s.ServiceHistogram is not { } sh || s.ServiceTimeSamples == 0)
        {
            return null;
        }

        // Medians like with like: single-window runs when the host reports them (see Evaluate).
        if (c.SingleServiceHistogram is { } cSingle && s.SingleServiceHistogram is { } sSingle)
        {
            (ch, sh) = (cSingle, sSingle);
        }

        var candidateLower = ch.LowerBound(0.5, level / 2);
        var stableUpper = sh.UpperBound(0.5, level / 2);
        if (evidence is not null)
        {
            evidence["candidate_service_p50_lower_bound_ms"] = candidateLower.TotalMilliseconds;
            evidence["stable_service_p50_upper_bound_ms"] = stableUpper == TimeSpan.MaxValue ? double.PositiveInfinity : stableUpper.TotalMilliseconds;
        }

        if (candidateLower <= TimeSpan.Zero || stableUpper == TimeSpan.MaxValue)
        {
            return null;
        }

        if (maxRatio is { } ratio && candidateLower.Ticks > ratio * stableUpper.Ticks)
        {
            return Invariant($"its median service time is at least {candidateLower.TotalMilliseconds:0.###} ms, over {ratio:0.##}× the champion's at most {stableUpper.TotalMilliseconds:0.###} ms");
        }

        if (maxInflation is { } limit && snapshot.CandidateBaselineLatency is { } cb && snapshot.StableBaselineLatency is { } sb && cb > TimeSpan.Zero && sb > TimeSpan.Zero)
        {
            var (candidateInflation, stableInflation, relative, additive) = Slowdown(candidateLower, stableUpper, cb, sb);
            var bound = Math.Min(relative, additive);
            if (evidence is not null)
            {
                evidence["relative_inflation_lower_bound"] = bound;
            }

            if (bound > limit)
            {
                return Invariant($"its median service time is at least {candidateInflation:0.##}× its single-window median ({cb.TotalMilliseconds:0.###} ms) while the champion's is at most {stableInflation:0.##}× its own: a relative slowdown of at least {bound:0.##}×, over {limit:0.##}×");
            }
        }

        return null;
    }

    /// <summary>
    /// How much slower the candidate serves than its single-window baseline, relative to the champion, under two models of
    /// the host's contention: multiplicative (every call k× slower: the ratio of the two inflations, each at least 1) and
    /// additive (every call pays the same extra time: the champion's median minus its baseline is subtracted from the
    /// candidate's before dividing by its baseline). Preemptions and cache misses on a busy host add about the same time
    /// to every call, which a fast model's ratio feels most (the 0.11 ms CNN at 1.9× its baseline beside the 0.27 ms
    /// CNN-BiLSTM at 1.5× on a fleet replica); a real regression exceeds the limit under both.
    /// </summary>
    private static (double Candidate, double Stable, double Relative, double Additive) Slowdown(TimeSpan c50, TimeSpan s50, TimeSpan cb, TimeSpan sb)
    {
        var candidate = Math.Max(1, c50.Ticks / (double)cb.Ticks);
        var stable = Math.Max(1, s50.Ticks / (double)sb.Ticks);
        var shared = Math.Max(0, s50.Ticks - sb.Ticks);
        var additive = Math.Max(1, (c50.Ticks - shared) / (double)cb.Ticks);
        return (candidate, stable, candidate / stable, additive);
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

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
/// on its reference nothing moves. Without such a reference the gap between two versions
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
                se = Math.Sqrt(Math.Max(((rc * (1 - rc)) + (rs * (1 - rs))) / n, 1e-12));
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

        var referenced = snapshot.CandidateReference is not null && snapshot.StableReference is not null;
        var raw = difference;
        difference -= gap;
        var lower = difference - (_z * se);
        var upper = difference + (_z * se);
        var evidence = Evidence(difference, se, n, basis);
        evidence["raw_difference"] = raw;
        evidence["reference_gap"] = gap;
        foreach (var (key, value) in evidenceExtra)
        {
            evidence[key] = value;
        }

        evidence["ci_lower"] = lower;
        evidence["ci_upper"] = upper;
        evidence["calibration_reference"] = referenced ? 1 : 0;
        var what = (_uncertainty ? "uncertain-rate increase" : "confidence drop") + (referenced ? Invariant($" (observed {raw:0.####}{Observed(snapshot, basis == "paired")}, less the {gap:0.####} expected: the reference windows give {evidence["candidate_expected"]:0.###} vs {evidence["stable_expected"]:0.###} for the classes each version predicted, {evidence["candidate_expected_on_this_traffic"]:0.###} for the candidate on traffic that moves the champion to {evidence["stable_observed"]:0.###})") : string.Empty);
        var result = lower > _limit
            ? new GateResult(Name, GateVerdict.Fail, Invariant($"{c.Version} {what} {difference:0.####} vs {s.Version} ({basis}, n={n}); lower bound {lower:0.####} exceeds {_limit:0.####}."), evidence)
            : upper <= _limit
                ? new GateResult(Name, GateVerdict.Pass, Invariant($"{c.Version} {what} {difference:0.####} vs {s.Version} ({basis}, n={n}); upper bound {upper:0.####} ≤ {_limit:0.####}."), evidence)
                : new GateResult(Name, GateVerdict.Inconclusive, Invariant($"{c.Version} {what} {difference:0.####}: interval [{lower:0.####}, {upper:0.####}] straddles {_limit:0.####}; about {Statistics.NeededSamples(n, difference, upper, _limit)} {basis} windows would decide it."), evidence);
        return Referenced(snapshot, result);
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

/// <summary>
/// The candidate's predicted-class mix versus the champion's (on identical windows when pairs exist):
/// fails only when the Jensen–Shannon distance exceeds its floor AND the chi-square test is significant,
/// so a large sample alone never fails a candidate.
/// </summary>
internal sealed class ClassMixGate(IClassMixTest test, double maxDistance, double alpha, int minSamples) : IAnalysisGate
{
    public string Name => "class-mix";

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var paired = snapshot.Paired.Pairs >= minSamples;
        var reference = paired ? snapshot.Paired.StableClassCounts : snapshot.Stable.ClassCounts;
        var current = paired ? snapshot.Paired.CandidateClassCounts : snapshot.Candidate.ClassCounts;
        long nRef = 0, nCur = 0;
        foreach (var v in reference)
        {
            nRef += v;
        }

        foreach (var v in current)
        {
            nCur += v;
        }

        var evidence = new Dictionary<string, double>
        {
            ["n_stable"] = nRef,
            ["n_candidate"] = nCur,
            ["paired"] = paired ? 1 : 0,
            ["max_js_distance"] = maxDistance,
            ["alpha"] = alpha,
            ["min_samples"] = minSamples,
        };
        for (var i = 0; i < reference.Count; i++)
        {
            var name = i < snapshot.Labels.Count ? snapshot.Labels[i] : i.ToString(CultureInfo.InvariantCulture);
            evidence["stable_count." + name] = reference[i];
            evidence["candidate_count." + name] = current[i];
        }

        if (nRef == 0 || nCur == 0)
        {
            return new(Name, GateVerdict.Unmeasurable, $"No predictions to compare ({nCur} candidate, {nRef} champion).", evidence);
        }

        if (nRef < minSamples || nCur < minSamples)
        {
            return new(Name, GateVerdict.Inconclusive, $"{nCur} candidate and {nRef} champion predictions; {minSamples} of each are needed.", evidence);
        }

        var result = test.Compare(reference, current);
        evidence["chi_square"] = result.ChiSquare;
        evidence["dof"] = result.DegreesOfFreedom;
        evidence["p_value"] = result.PValue;
        evidence["js_distance"] = result.JensenShannonDistance;
        var message = Invariant($"class mix of {snapshot.Candidate.Version} vs {snapshot.Stable.Version} ({(paired ? "paired" : "unpaired")}): JS distance {result.JensenShannonDistance:0.####} (limit {maxDistance:0.####}), chi-square {result.ChiSquare:0.##} on {result.DegreesOfFreedom} dof, p = {result.PValue:0.####} (alpha {alpha}).");
        return result.JensenShannonDistance > maxDistance && result.PValue < alpha
            ? new(Name, GateVerdict.Fail, message, evidence)
            : new(Name, GateVerdict.Pass, message, evidence);
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// The agreement rate of the candidate (or shadow) with the champion on identical windows (Wilson interval), on the
/// windows the champion was sure of (not <see cref="Har.Inference.Prediction.IsUncertain"/>) when the observations keep them.
/// </summary>
/// <remarks>
/// Like with like: a window the champion itself is unsure of says little about the candidate. On a few devices whose
/// people neither model knows well a healthy candidate agreed on 72 % of all windows (62 % on one set of five HAPT
/// subjects: 89 % of the 1,094 windows the champion was sure of, 37 % of the 1,210 it was not), below the 75 % limit.
/// A broken candidate disagrees where the champion is sure too (a model fed unnormalized input agrees on 53 % of all
/// HAPT windows, one with permuted labels on almost none), so the gate judges those, and all pairs only when no
/// champion-sure pair was counted (observations from a replica that does not count them). All pairs, more of them,
/// still fail the candidate when their upper bound is below the limit and the agreement on the sure pairs is below it
/// too: with 60 pairs an interval, judging only the sure ones let a broken candidate through the first two intervals
/// in 3 of 10 runs instead of 1 of 10.
/// </remarks>
internal sealed class AgreementGate(double minAgreement, int minSamples, double z) : IAnalysisGate
{
    public string Name => "agreement";

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var p = snapshot.Paired;
        var sure = p.StableSurePairs > 0 && p.StableSureAgreements >= 0;
        var (agreements, pairs) = sure ? (p.StableSureAgreements, p.StableSurePairs) : (p.Agreements, p.Pairs);
        var rate = pairs == 0 ? double.NaN : (double)agreements / pairs;
        var (lower, upper) = Statistics.Wilson(agreements, pairs, z);
        var evidence = new Dictionary<string, double>
        {
            ["pairs"] = p.Pairs,
            ["agreements"] = p.Agreements,
            ["agreement_rate"] = p.Pairs == 0 ? double.NaN : p.AgreementRate,
            ["stable_sure_pairs"] = p.StableSurePairs,
            ["stable_sure_agreements"] = p.StableSureAgreements,
            ["stable_sure_basis"] = sure ? 1 : 0,
            ["judged_agreement_rate"] = rate,
            ["ci_lower"] = lower,
            ["ci_upper"] = upper,
            ["threshold"] = minAgreement,
            ["min_samples"] = minSamples,
        };
        if (p.Pairs == 0)
        {
            return new(Name, GateVerdict.Unmeasurable, "No paired windows in the interval.", evidence);
        }

        var on = sure ? Invariant($"{pairs} windows the champion was sure of ({p.AgreementRate:P1} of all {p.Pairs})") : Invariant($"{pairs} windows");
        if (upper < minAgreement)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{snapshot.Candidate.Version} agrees with {snapshot.Stable.Version} on {rate:P1} of {on}; upper bound {upper:P1} is below {minAgreement:P1}."), evidence);
        }

        // All pairs are more evidence, on a harder population: their verdict stands when the windows the champion was
        // sure of point the same way (a broken candidate with few pairs per interval is still failed as soon as all
        // pairs prove it), and is overruled when those windows show the candidate agreeing where it matters.
        var (_, allUpper) = Statistics.Wilson(p.Agreements, p.Pairs, z);
        evidence["all_pairs_ci_upper"] = allUpper;
        if (sure && allUpper < minAgreement && rate < minAgreement)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{snapshot.Candidate.Version} agrees with {snapshot.Stable.Version} on {p.AgreementRate:P1} of all {p.Pairs} windows, upper bound {allUpper:P1} below {minAgreement:P1}, and on {rate:P1} of the {pairs} the champion was sure of."), evidence);
        }

        if (pairs < minSamples)
        {
            return new(Name, GateVerdict.Inconclusive, Invariant($"{pairs} paired windows{(sure ? " the champion was sure of" : string.Empty)}; {minSamples} are needed."), evidence);
        }

        return lower >= minAgreement
            ? new(Name, GateVerdict.Pass, Invariant($"{snapshot.Candidate.Version} agrees with {snapshot.Stable.Version} on {rate:P1} of {on}; lower bound {lower:P1} ≥ {minAgreement:P1}."), evidence)
            : new(Name, GateVerdict.Inconclusive, Invariant($"agreement {rate:P1} on {on}: interval [{lower:P1}, {upper:P1}] straddles {minAgreement:P1}; about {Statistics.NeededSamples(pairs, rate, lower, minAgreement)} paired windows would decide it."), evidence);
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
