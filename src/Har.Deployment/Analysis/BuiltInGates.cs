using System.Globalization;

namespace Har.Deployment;

/// <summary>The candidate's error rate against <see cref="AnalysisOptions.MaxErrorRate"/> (Wilson interval).</summary>
internal sealed class ErrorRateGate(double maxErrorRate, int minRequests, double z) : IAnalysisGate
{
    public string Name => "error-rate";

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var c = snapshot.Candidate;
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
        };
        if (c.Requests == 0)
        {
            return new(Name, GateVerdict.Unmeasurable, $"{c.Version} received no requests in the interval.", evidence);
        }

        if (lower > maxErrorRate)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}); its lower bound {lower:P1} exceeds the {maxErrorRate:P1} limit."), evidence);
        }

        if (c.Requests < minRequests)
        {
            return new(Name, GateVerdict.Inconclusive, Invariant($"{c.Version} has {c.Requests} requests; at least {minRequests} are needed to pass the error-rate gate."), evidence);
        }

        return upper <= maxErrorRate
            ? new(Name, GateVerdict.Pass, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}); upper bound {upper:P1} ≤ {maxErrorRate:P1}."), evidence)
            : new(Name, GateVerdict.Inconclusive, Invariant($"{c.Version} error rate {c.ErrorRate:P1}: interval [{lower:P1}, {upper:P1}] straddles the {maxErrorRate:P1} limit."), evidence);
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The candidate's p95/p99 latency against absolute budgets and against the champion's p95 in the same interval.</summary>
internal sealed class LatencyGate(TimeSpan? p95Budget, TimeSpan? p99Budget, double? maxRatio, double? maxInflation, int minSamples) : IAnalysisGate
{
    public string Name => "latency";

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var c = snapshot.Candidate;
        var s = snapshot.Stable;
        var evidence = new Dictionary<string, double>
        {
            ["candidate_samples"] = c.LatencySamples,
            ["candidate_p95_ms"] = c.LatencyP95.TotalMilliseconds,
            ["candidate_p99_ms"] = c.LatencyP99.TotalMilliseconds,
            ["stable_samples"] = s.LatencySamples,
            ["stable_p95_ms"] = s.LatencyP95.TotalMilliseconds,
            ["min_samples"] = minSamples,
        };
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

        if (c.LatencySamples == 0)
        {
            return new(Name, GateVerdict.Unmeasurable, $"{c.Version} has no latency samples in the interval.", evidence);
        }

        if (c.LatencySamples < minSamples)
        {
            return new(Name, GateVerdict.Inconclusive, $"{c.Version} has {c.LatencySamples} latency samples; {minSamples} are needed.", evidence);
        }

        if (p95Budget is { } budget95 && c.LatencyP95 > budget95)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{c.Version} p95 latency {c.LatencyP95.TotalMilliseconds:0.###} ms exceeds the {budget95.TotalMilliseconds:0.###} ms budget."), evidence);
        }

        if (p99Budget is { } budget99 && c.LatencyP99 > budget99)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{c.Version} p99 latency {c.LatencyP99.TotalMilliseconds:0.###} ms exceeds the {budget99.TotalMilliseconds:0.###} ms budget."), evidence);
        }

        if (maxRatio is { } ratio)
        {
            if (s.LatencySamples < minSamples)
            {
                return new(Name, GateVerdict.Inconclusive, $"{s.Version} (the champion) has {s.LatencySamples} latency samples; {minSamples} are needed to compare.", evidence);
            }

            var observed = c.LatencyP95.Ticks / (double)Math.Max(1, s.LatencyP95.Ticks);
            evidence["p95_ratio"] = observed;
            if (observed > ratio)
            {
                return new(Name, GateVerdict.Fail, Invariant($"{c.Version} p95 latency {c.LatencyP95.TotalMilliseconds:0.###} ms is {observed:0.##}× the champion's {s.LatencyP95.TotalMilliseconds:0.###} ms; at most {ratio:0.##}× is allowed."), evidence);
            }
        }

        // A new architecture has its own intrinsic speed, so a regression is judged against each version's
        // warm-up baseline: how much slower each serves than it computes, candidate relative to champion.
        if (maxInflation is { } inflationLimit && snapshot.CandidateBaselineP95 is { } cb && snapshot.StableBaselineP95 is { } sb && cb > TimeSpan.Zero && sb > TimeSpan.Zero)
        {
            if (s.LatencySamples < minSamples)
            {
                return new(Name, GateVerdict.Inconclusive, $"{s.Version} (the champion) has {s.LatencySamples} latency samples; {minSamples} are needed to compare inflation.", evidence);
            }

            var candidateInflation = c.LatencyP95.Ticks / (double)cb.Ticks;
            var stableInflation = s.LatencyP95.Ticks / (double)sb.Ticks;
            var relative = candidateInflation / Math.Max(stableInflation, 1e-9);
            evidence["candidate_baseline_p95_ms"] = cb.TotalMilliseconds;
            evidence["stable_baseline_p95_ms"] = sb.TotalMilliseconds;
            evidence["candidate_inflation"] = candidateInflation;
            evidence["stable_inflation"] = stableInflation;
            evidence["relative_inflation"] = relative;
            evidence["max_inflation"] = inflationLimit;
            if (relative > inflationLimit)
            {
                return new(Name, GateVerdict.Fail, Invariant($"{c.Version} serves at {candidateInflation:0.##}× its warm-up p95 ({cb.TotalMilliseconds:0.###} ms) while the champion serves at {stableInflation:0.##}× its own: a {relative:0.##}× relative slowdown; at most {inflationLimit:0.##}× is allowed."), evidence);
            }
        }

        return new(Name, GateVerdict.Pass, Invariant($"{c.Version} p95 {c.LatencyP95.TotalMilliseconds:0.###} ms, p99 {c.LatencyP99.TotalMilliseconds:0.###} ms within budget (champion p95 {s.LatencyP95.TotalMilliseconds:0.###} ms)."), evidence);
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// A drop of a per-prediction quantity (mean confidence, or the uncertain rate's increase) versus the
/// champion, judged with a confidence interval of the difference: paired on identical windows when
/// pairs exist, otherwise Welch's unpaired interval on the two versions' own traffic.
/// </summary>
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
                return new(Name, n == 0 && p.Pairs == 0 ? GateVerdict.Unmeasurable : GateVerdict.Inconclusive, $"{c.Version} vs {s.Version}: {c.Predictions}/{s.Predictions} predictions and {p.Pairs} pairs; {_minSamples} are needed.", Evidence(double.NaN, double.NaN, n, basis));
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

        var lower = difference - (_z * se);
        var upper = difference + (_z * se);
        var evidence = Evidence(difference, se, n, basis);
        evidence["ci_lower"] = lower;
        evidence["ci_upper"] = upper;
        var what = _uncertainty ? "uncertain-rate increase" : "confidence drop";
        if (lower > _limit)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{c.Version} {what} {difference:0.####} vs {s.Version} ({basis}, n={n}); lower bound {lower:0.####} exceeds {_limit:0.####}."), evidence);
        }

        return upper <= _limit
            ? new(Name, GateVerdict.Pass, Invariant($"{c.Version} {what} {difference:0.####} vs {s.Version} ({basis}, n={n}); upper bound {upper:0.####} ≤ {_limit:0.####}."), evidence)
            : new(Name, GateVerdict.Inconclusive, Invariant($"{c.Version} {what} {difference:0.####}: interval [{lower:0.####}, {upper:0.####}] straddles {_limit:0.####}."), evidence);
    }

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

/// <summary>The agreement rate of the candidate (or shadow) with the champion on identical windows (Wilson interval).</summary>
internal sealed class AgreementGate(double minAgreement, int minSamples, double z) : IAnalysisGate
{
    public string Name => "agreement";

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var p = snapshot.Paired;
        var (lower, upper) = Statistics.Wilson(p.Agreements, p.Pairs, z);
        var evidence = new Dictionary<string, double>
        {
            ["pairs"] = p.Pairs,
            ["agreements"] = p.Agreements,
            ["agreement_rate"] = p.Pairs == 0 ? double.NaN : p.AgreementRate,
            ["ci_lower"] = lower,
            ["ci_upper"] = upper,
            ["threshold"] = minAgreement,
            ["min_samples"] = minSamples,
        };
        if (p.Pairs == 0)
        {
            return new(Name, GateVerdict.Unmeasurable, "No paired windows in the interval.", evidence);
        }

        if (upper < minAgreement)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{snapshot.Candidate.Version} agrees with {snapshot.Stable.Version} on {p.AgreementRate:P1} of {p.Pairs} windows; upper bound {upper:P1} is below {minAgreement:P1}."), evidence);
        }

        if (p.Pairs < minSamples)
        {
            return new(Name, GateVerdict.Inconclusive, $"{p.Pairs} paired windows; {minSamples} are needed.", evidence);
        }

        return lower >= minAgreement
            ? new(Name, GateVerdict.Pass, Invariant($"{snapshot.Candidate.Version} agrees with {snapshot.Stable.Version} on {p.AgreementRate:P1} of {p.Pairs} windows; lower bound {lower:P1} ≥ {minAgreement:P1}."), evidence)
            : new(Name, GateVerdict.Inconclusive, Invariant($"agreement {p.AgreementRate:P1}: interval [{lower:P1}, {upper:P1}] straddles {minAgreement:P1}."), evidence);
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
