using System.Globalization;

namespace Har.Deployment;

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
                    // Forty calls of each version, measured while the host is saturated, can be mostly preemptions
                    // (a 0.1 ms model's baseline read 18.7 ms under 64 callers on two cores). The traffic's medians
                    // per window are the second witness: a version batched no more than the other pays at least its
                    // own share of the cost, so when the candidate is batched no more than the champion (a larger
                    // share of single-window runs), a traffic ratio within the limit refutes the baselines.
                    var trafficRatio = c50.Ticks / (double)Math.Max(1, s50.Ticks);
                    var (cShare, sShare) = (c.SingleServiceHistogram!.Count / (double)cn, s.SingleServiceHistogram!.Count / (double)Math.Max(1, sn));
                    evidence["p50_ratio"] = trafficRatio;
                    evidence["candidate_single_share"] = cShare;
                    evidence["stable_single_share"] = sShare;
                    var batchedNoMore = cShare >= sShare;
                    if (c.MeanBatchSize is { } cBatch && s.MeanBatchSize is { } sBatch)
                    {
                        evidence["candidate_mean_batch"] = cBatch;
                        evidence["stable_mean_batch"] = sBatch;
                        batchedNoMore = cBatch <= sBatch;
                    }
                    if (trafficRatio > baselineRatio)
                    {
                        return new(Name, GateVerdict.Fail, Invariant($"{c.Version} single-window median {what} {cbr.TotalMilliseconds:0.###} ms is {observed:0.##}× the champion's {sbr.TotalMilliseconds:0.###} ms, both measured now, and its median per window in the traffic {c50.TotalMilliseconds:0.###} ms is {trafficRatio:0.##}× the champion's {s50.TotalMilliseconds:0.###} ms; at most {baselineRatio:0.##}× is allowed (single-window runs not compared: too few, most windows were batched)."), evidence);
                    }

                    double? upperBound = null;
                    if (!batchedNoMore && c.MeanBatchSize is { } cMore && s.MeanBatchSize is { } sLess && sLess > 0)
                    {
                        // Batched more, but by how much: a run of more windows never costs less than a run of fewer
                        // (the work only grows with the batch), so at the champion's batching the candidate's share per
                        // window is at most its observed share × (its mean batch / the champion's). Within the limit even
                        // so, the traffic refutes the baselines (a run at 64 callers on a loaded machine read 2.04× on
                        // the baselines and 1.67× in the traffic at runs of 16 vs 14.4 windows, and was held for ten
                        // minutes by the inconclusive reading below). The bound is exact for the cost of one run; applied
                        // to medians per window and mean run sizes it is an approximation, not a guarantee.
                        var bound = trafficRatio * (cMore / sLess);
                        upperBound = bound;
                        evidence["p50_ratio_upper_bound"] = bound;
                        if (bound <= baselineRatio)
                        {
                            return new(Name, GateVerdict.Pass, Invariant($"{c.Version} single-window baseline {cbr.TotalMilliseconds:0.###} ms read {observed:0.##}× the champion's {sbr.TotalMilliseconds:0.###} ms under the current load, but in the traffic its median per window {c50.TotalMilliseconds:0.###} ms is {trafficRatio:0.##}× the champion's {s50.TotalMilliseconds:0.###} ms, and even granting it the whole advantage of its larger runs ({cMore:0.#} windows on average vs {sLess:0.#}: at most {bound:0.##}× at the champion's batching) it is within {baselineRatio:0.##}×: the baselines measured the load, not the model."), evidence);
                        }
                    }

                    if (!batchedNoMore)
                    {
                        return new(Name, GateVerdict.Inconclusive, Invariant($"{c.Version} single-window baseline {cbr.TotalMilliseconds:0.###} ms is {observed:0.##}× the champion's {sbr.TotalMilliseconds:0.###} ms, but its median per window in the traffic is {trafficRatio:0.##}× the champion's while it was batched more (runs of {c.MeanBatchSize ?? double.NaN:0.#} windows on average vs {s.MeanBatchSize ?? double.NaN:0.#}; {1 - cShare:P0} of its windows batched vs {1 - sShare:P0}{(upperBound is { } upper ? Invariant($"; at the champion's batching at most {upper:0.##}×") : string.Empty)}); neither reading is fair, the baselines are re-measured for the next analysis."), evidence);
                    }

                    return new(Name, GateVerdict.Pass, Invariant($"{c.Version} single-window baseline {cbr.TotalMilliseconds:0.###} ms read {observed:0.##}× the champion's {sbr.TotalMilliseconds:0.###} ms under the current load, but in the traffic, batched no more than the champion (runs of {c.MeanBatchSize ?? double.NaN:0.#} windows on average vs {s.MeanBatchSize ?? double.NaN:0.#}; {1 - cShare:P0} of its windows batched vs {1 - sShare:P0}), its median per window {c50.TotalMilliseconds:0.###} ms is {trafficRatio:0.##}× the champion's {s50.TotalMilliseconds:0.###} ms, within {baselineRatio:0.##}×: the baselines measured the load, not the model."), evidence);
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
