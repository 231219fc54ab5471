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
/// From the minimum on, the asymptotic intervals decide a pass; a failure is found by them or by the same exact tests
/// (which are the stronger ones for a few errors), and is decisive the same way.
/// The champion's rate counts its served requests and its mirrored runs on the candidate's windows (failed ones
/// included): when sticky routing puts every stream on the candidate, the mirror is all that shows what the champion
/// does on that traffic, and a candidate failing 5 % where the champion fails none is no longer judged only against the
/// 5 % limit it sits on. The mirror runs on the windows the candidate scored (a window it failed has nothing to compare).
/// </remarks>
internal sealed class ErrorRateGate(double maxErrorRate, double? maxIncrease, int minRequests, double z, double alpha = 0.05) : IAnalysisGate
{
    public string Name => "error-rate";

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var c = snapshot.Candidate;
        var s = snapshot.Stable;
        // The champion's error rate: its served requests, and its mirrored runs on the candidate's windows (all there is
        // when every stream is on the candidate).
        var (sRequests, sErrors) = (s.Requests + s.MirrorRuns, s.Errors + s.MirrorErrors);
        var sRate = sRequests == 0 ? 0 : (double)sErrors / sRequests;
        var champion = Invariant($"the champion's {sRate:P1} ({sErrors}/{sRequests}{(s.MirrorRuns > 0 ? Invariant($", {s.MirrorRuns} of them mirrored runs on the candidate's windows") : string.Empty)})");
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
            ["stable_mirror_runs"] = s.MirrorRuns,
            ["stable_mirror_errors"] = s.MirrorErrors,
        };
        if (c.Requests == 0)
        {
            return new(Name, GateVerdict.Unmeasurable, $"{c.Version} received no requests in the interval.", evidence);
        }

        // Exact one-sided p-values: against the absolute limit, and against the champion (Fisher) when the observed
        // increase is above the allowed one.
        var pLimit = c.ErrorRate > maxErrorRate ? Statistics.BinomialAtLeast(c.Errors, c.Requests, maxErrorRate) : 1;
        var increase = sRequests > 0 ? c.ErrorRate - sRate : double.NaN;
        var pChampion = maxIncrease is { } m && sRequests > 0 && increase > m ? Statistics.FisherGreater(c.Errors, c.Requests, sErrors, sRequests) : 1;
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
                return new(Name, GateVerdict.Fail, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}, fewer than the {minRequests} requests a pass needs) vs {champion}: higher by Fisher's exact test, p = {pChampion:G3} ≤ {alpha:G3}, by more than {maxIncrease:P1}{(decisive ? " (decisive)" : string.Empty)}."), evidence) { IsDecisive = decisive };
            }

            return new(Name, GateVerdict.Inconclusive, Invariant($"{c.Version} has {c.Requests} requests ({c.Errors} errors); at least {minRequests} are needed to pass the error-rate gate, and the errors are not conclusive yet (exact p = {pExact:G3} > {alpha:G3})."), evidence);
        }

        if (lower > maxErrorRate)
        {
            return new(Name, GateVerdict.Fail, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}); its lower bound {lower:P1} exceeds the {maxErrorRate:P1} limit{(decisive ? Invariant($" (decisive: exact p = {pExact:G3})") : string.Empty)}."), evidence) { IsDecisive = decisive };
        }

        if (maxIncrease is { } margin && sRequests > 0)
        {
            var (_, su) = Statistics.Wilson(sErrors, sRequests, z);
            var diffLower = increase - Math.Sqrt(Square(c.ErrorRate - lower) + Square(su - sRate));
            evidence["stable_error_rate"] = sRate;
            evidence["increase"] = increase;
            evidence["increase_ci_lower"] = diffLower;
            evidence["max_increase"] = margin;
            if (diffLower > margin)
            {
                return new(Name, GateVerdict.Fail, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}) vs {champion}; the increase's lower bound {diffLower:P1} exceeds {margin:P1}{(decisive ? Invariant($" (decisive: exact p = {pExact:G3})") : string.Empty)}."), evidence) { IsDecisive = decisive };
            }
        }

        // The exact tests still apply from the minimum on: the asymptotic intervals are the weaker test for a few errors
        // (3 in 120 against the champion's 0 in 1,080 fail neither interval, but Fisher's p is 0.00098).
        if (pExact <= alpha)
        {
            return pLimit <= alpha
                ? new(Name, GateVerdict.Fail, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}) exceeds the {maxErrorRate:P1} limit by an exact binomial test, p = {pLimit:G3} ≤ {alpha:G3}{(decisive ? " (decisive)" : string.Empty)}."), evidence) { IsDecisive = decisive }
                : new(Name, GateVerdict.Fail, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}) vs {champion}: higher by Fisher's exact test, p = {pChampion:G3} ≤ {alpha:G3}, by more than {maxIncrease:P1}{(decisive ? " (decisive)" : string.Empty)}."), evidence) { IsDecisive = decisive };
        }

        return upper <= maxErrorRate
            ? new(Name, GateVerdict.Pass, Invariant($"{c.Version} error rate {c.ErrorRate:P1} ({c.Errors}/{c.Requests}); upper bound {upper:P1} ≤ {maxErrorRate:P1}."), evidence)
            : new(Name, GateVerdict.Inconclusive, Invariant($"{c.Version} error rate {c.ErrorRate:P1}: interval [{lower:P1}, {upper:P1}] straddles the {maxErrorRate:P1} limit; about {Statistics.NeededSamples(c.Requests, c.ErrorRate, upper, maxErrorRate)} requests would decide it."), evidence);
    }

    private static double Square(double x) => x * x;

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// The candidate's predicted-class mix versus the champion's (on identical windows when pairs exist, and among those on
/// the windows the champion was sure of when the observations keep them): fails only when the Jensen–Shannon distance
/// exceeds its floor AND the chi-square test is significant, so a large sample alone never fails a candidate.
/// </summary>
/// <remarks>
/// Like with like, as for the agreement gate: a more accurate candidate differs from the champion mostly where the
/// champion is unsure (sitting read as standing, the transitions), and on a few devices that difference alone moved the
/// mix of all pairs beyond the limit (the bundled 1.1.0, 0.94 accurate against the champion's 0.93, failed it on all pairs
/// in five-device simulations, e.g. JS distance 0.18 at p = 0.001). A broken candidate shifts the mix where the champion is
/// sure too (permuted labels, unnormalized input), so the gate judges those pairs; all pairs when the sure ones are too
/// few or a replica did not ship them. Fewer pairs than the minimum are judged unpaired, except where one version served
/// nothing on its own (a 100 % step, where the champion only mirrors): the pairs are then all the evidence there is,
/// and too few of them is Inconclusive (wait for more), not Unmeasurable.
/// </remarks>
internal sealed class ClassMixGate(IClassMixTest test, double maxDistance, double alpha, int minSamples) : IAnalysisGate
{
    public string Name => "class-mix";

    public GateResult Evaluate(AnalysisSnapshot snapshot)
    {
        var p = snapshot.Paired;
        var paired = p.Pairs >= minSamples
            || (p.Pairs > 0 && (Sum(snapshot.Stable.ClassCounts) == 0 || Sum(snapshot.Candidate.ClassCounts) == 0));
        var sure = paired && p.StableSureCandidateClassCounts is { } sc && p.StableSureStableClassCounts is not null && Sum(sc) >= minSamples;
        var reference = sure ? p.StableSureStableClassCounts! : paired ? p.StableClassCounts : snapshot.Stable.ClassCounts;
        var current = sure ? p.StableSureCandidateClassCounts! : paired ? p.CandidateClassCounts : snapshot.Candidate.ClassCounts;
        var (nRef, nCur) = (Sum(reference), Sum(current));
        var evidence = new Dictionary<string, double>
        {
            ["n_stable"] = nRef,
            ["n_candidate"] = nCur,
            ["paired"] = paired ? 1 : 0,
            ["stable_sure_basis"] = sure ? 1 : 0,
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
        var message = Invariant($"class mix of {snapshot.Candidate.Version} vs {snapshot.Stable.Version} ({(sure ? "paired, on the windows the champion was sure of" : paired ? "paired" : "unpaired")}): JS distance {result.JensenShannonDistance:0.####} (limit {maxDistance:0.####}), chi-square {result.ChiSquare:0.##} on {result.DegreesOfFreedom} dof, p = {result.PValue:0.####} (alpha {alpha}).");
        return result.JensenShannonDistance > maxDistance && result.PValue < alpha
            ? new(Name, GateVerdict.Fail, message, evidence)
            : new(Name, GateVerdict.Pass, message, evidence);
    }

    private static long Sum(IReadOnlyList<long> counts)
    {
        long n = 0;
        foreach (var v in counts)
        {
            n += v;
        }

        return n;
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
/// in 3 of 10 runs instead of 1 of 10. A failure whose upper bound is below the limit at α² too (z =
/// <paramref name="zDecisive"/>) is marked decisive (<see cref="GateResult.IsDecisive"/>), as the error-rate, latency and
/// accuracy gates mark theirs: a candidate that agrees with the champion on about half of 60 windows is as clearly broken
/// after one interval as after two.
/// </remarks>
internal sealed class AgreementGate(double minAgreement, int minSamples, double z, double zDecisive = double.PositiveInfinity) : IAnalysisGate
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
            var decisive = DecisivelyBelow(agreements, pairs, evidence, "ci_upper_decisive");
            if (!decisive && sure && DecisivelyBelow(p.Agreements, p.Pairs, evidence, "all_pairs_ci_upper_decisive"))
            {
                // The sure windows fail it, and all pairs, more of them, prove it at α²: as below, all pairs' verdict stands
                // when the sure windows point the same way.
                return new(Name, GateVerdict.Fail, Invariant($"{snapshot.Candidate.Version} agrees with {snapshot.Stable.Version} on {rate:P1} of {on}; upper bound {upper:P1} is below {minAgreement:P1}, and on all {p.Pairs} windows {Decisive(true, evidence["all_pairs_ci_upper_decisive"]).TrimStart()}."), evidence) { IsDecisive = true };
            }

            return new(Name, GateVerdict.Fail, Invariant($"{snapshot.Candidate.Version} agrees with {snapshot.Stable.Version} on {rate:P1} of {on}; upper bound {upper:P1} is below {minAgreement:P1}{Decisive(decisive, evidence.GetValueOrDefault("ci_upper_decisive", double.NaN))}."), evidence) { IsDecisive = decisive };
        }

        // All pairs are more evidence, on a harder population: their verdict stands when the windows the champion was
        // sure of point the same way (a broken candidate with few pairs per interval is still failed as soon as all
        // pairs prove it), and is overruled when those windows show the candidate agreeing where it matters.
        var (_, allUpper) = Statistics.Wilson(p.Agreements, p.Pairs, z);
        evidence["all_pairs_ci_upper"] = allUpper;
        if (sure && allUpper < minAgreement && rate < minAgreement)
        {
            var decisive = DecisivelyBelow(p.Agreements, p.Pairs, evidence, "all_pairs_ci_upper_decisive");
            return new(Name, GateVerdict.Fail, Invariant($"{snapshot.Candidate.Version} agrees with {snapshot.Stable.Version} on {p.AgreementRate:P1} of all {p.Pairs} windows, upper bound {allUpper:P1} below {minAgreement:P1}{Decisive(decisive, evidence.GetValueOrDefault("all_pairs_ci_upper_decisive", double.NaN))}, and on {rate:P1} of the {pairs} the champion was sure of."), evidence) { IsDecisive = decisive };
        }

        if (pairs < minSamples)
        {
            return new(Name, GateVerdict.Inconclusive, Invariant($"{pairs} paired windows{(sure ? " the champion was sure of" : string.Empty)}; {minSamples} are needed."), evidence);
        }

        return lower >= minAgreement
            ? new(Name, GateVerdict.Pass, Invariant($"{snapshot.Candidate.Version} agrees with {snapshot.Stable.Version} on {rate:P1} of {on}; lower bound {lower:P1} ≥ {minAgreement:P1}."), evidence)
            : new(Name, GateVerdict.Inconclusive, Invariant($"agreement {rate:P1} on {on}: interval [{lower:P1}, {upper:P1}] straddles {minAgreement:P1}; about {Statistics.NeededSamples(pairs, rate, lower, minAgreement)} paired windows would decide it."), evidence);
    }

    /// <summary>Whether the Wilson upper bound at α² is below the limit too; records that bound as evidence.</summary>
    private bool DecisivelyBelow(long agreements, long pairs, Dictionary<string, double> evidence, string key)
    {
        if (!double.IsFinite(zDecisive))
        {
            return false;
        }

        var (_, strictUpper) = Statistics.Wilson(agreements, pairs, zDecisive);
        evidence[key] = strictUpper;
        return strictUpper < minAgreement;
    }

    private static string Decisive(bool decisive, double bound) => decisive ? Invariant($" (decisive: {bound:P1} at α²)") : string.Empty;

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
