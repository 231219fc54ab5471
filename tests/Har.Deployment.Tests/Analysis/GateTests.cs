namespace Har.Deployment.Tests.Analysis;

public sealed class GateTests
{
    private static readonly string[] Labels = ["a", "b", "c", "d"];

    [Theory]
    [InlineData(0, 200, GateVerdict.Pass)]
    [InlineData(40, 200, GateVerdict.Fail)]
    [InlineData(10, 200, GateVerdict.Inconclusive)]
    [InlineData(0, 50, GateVerdict.Inconclusive)]
    [InlineData(15, 40, GateVerdict.Fail)]
    [InlineData(0, 0, GateVerdict.Unmeasurable)]
    public void ErrorRate_WilsonBoundsAgainstFivePercent(int errors, int requests, GateVerdict expected)
    {
        var o = new RolloutObservations();
        for (var i = 0; i < requests; i++)
        {
            if (i < errors)
            {
                o.RecordError("c", TimeSpan.FromMilliseconds(1));
            }
            else
            {
                o.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(1)));
            }
        }

        var gate = new ErrorRateGate(0.05, 0.01, 100, Statistics.NormalQuantile(0.95));
        var result = gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(expected, result.Verdict);
        Assert.Equal(requests, result.Evidence["requests"]);
    }

    [Fact]
    public void Wilson_MatchesIndependentFormulaAndContainsEstimate()
    {
        // 12 of 80 at z = 1.96: Wilson interval [0.0879, 0.2441] (statsmodels proportion_confint(12, 80, method="wilson")).
        var (lo, hi) = Statistics.Wilson(12, 80, 1.959964);
        Assert.Equal(0.0879, lo, 3);
        Assert.Equal(0.2441, hi, 3);
        Assert.Equal(1.6449, Statistics.NormalQuantile(0.95), 3);
        Assert.Equal(-2.3263, Statistics.NormalQuantile(0.01), 3);
    }

    [Fact]
    public void Latency_InflationOfFastCandidateRelativeToChampion_Fails()
    {
        // The candidate computes in 1 ms and the champion in 10 ms (warm-up medians); the candidate serves
        // 3× slower than its own baseline, yet its 3 ms is still far below the champion's 10 ms.
        var o = new RolloutObservations();
        for (var i = 0; i < 300; i++)
        {
            o.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(3)));
            o.RecordPrediction("s", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(10)));
        }

        var snapshot = o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(10));
        var withInflation = new LatencyGate(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 1.5, 1.5, 100).Evaluate(snapshot);
        Assert.Equal(GateVerdict.Fail, withInflation.Verdict);
        Assert.InRange(withInflation.Evidence["relative_inflation"], 2.5, 3.5);
        var ratioOnly = new LatencyGate(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 1.5, null, 100).Evaluate(snapshot);
        Assert.Equal(GateVerdict.Pass, ratioOnly.Verdict);
    }

    [Fact]
    public void Latency_BatchedChampion_DoesNotHideTheContentionTheSingleWindowCandidateShows()
    {
        // A fleet replica under load: the champion (90 % of the traffic) is scored in runs of 8, its windows' share
        // 0.3 ms against its 1 ms single-window baseline; the candidate's windows run alone at 1.6× its 0.4 ms
        // baseline, as the champion's single runs would. Judged on all service times, the champion's batching
        // (a share below its baseline, taken as 1) hid that contention and the candidate failed at 1.6×.
        var o = new RolloutObservations();
        for (var i = 0; i < 600; i++)
        {
            o.RecordPrediction("s", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(0.3), BatchSize: 8));
            if (i % 3 == 0)
            {
                o.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(0.64), BatchSize: 1));
            }
        }

        var gate = new LatencyGate(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 1.5, 1.5, 100);
        var healthy = gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, TimeSpan.FromMilliseconds(0.4), TimeSpan.FromMilliseconds(1), reset: false));
        Assert.Equal(GateVerdict.Pass, healthy.Verdict);
        Assert.Equal(0, healthy.Evidence["like_with_like"]);
        Assert.Equal(0, healthy.Evidence["stable_single_samples"]);
        Assert.InRange(healthy.Evidence["baseline_ratio"], 0.39, 0.41);

        // The same traffic from a candidate whose single-window run is 3× the champion's, both measured now: the
        // ratio is judged on those baselines.
        var slow = gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, TimeSpan.FromMilliseconds(3), TimeSpan.FromMilliseconds(1)));
        Assert.Equal(GateVerdict.Fail, slow.Verdict);
        Assert.InRange(slow.Evidence["baseline_ratio"], 2.9, 3.1);
    }

    [Fact]
    public void Latency_BaselinesMisreadUnderSaturation_AreRefutedByTheTrafficWhenItsBatchingCannotExplainTheGap()
    {
        // 64 callers on two cores: the candidate's forty baseline calls were mostly preempted (18 ms against the
        // champion's 3 ms: 6×), while in the traffic both versions' windows cost about the same per window. Where the
        // candidate was batched no more than the champion, its per-window median is, if anything, an overestimate
        // of its cost, so a traffic ratio within the limit refutes the baselines.
        GateResult Judge(int candidateBatch, int stableBatch, double candidateMs, double stableMs)
        {
            var o = new RolloutObservations();
            for (var i = 0; i < 600; i++)
            {
                o.RecordLatency("s", TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(stableMs), batchSize: stableBatch);
                if (i % 4 == 0)
                {
                    o.RecordLatency("c", TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(candidateMs), batchSize: candidateBatch);
                }
            }

            return new LatencyGate(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 1.5, 1.5, 100)
                .Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, TimeSpan.FromMilliseconds(18), TimeSpan.FromMilliseconds(3)));
        }

        var refuted = Judge(candidateBatch: 4, stableBatch: 32, candidateMs: 0.05, stableMs: 0.045);
        Assert.Equal(GateVerdict.Pass, refuted.Verdict);
        Assert.Equal(0, refuted.Evidence["like_with_like"]);
        Assert.InRange(refuted.Evidence["baseline_ratio"], 5.9, 6.1);
        Assert.InRange(refuted.Evidence["p50_ratio"], 1, 1.5);

        // Both witnesses agree on a slow candidate: it fails.
        var slow = Judge(candidateBatch: 4, stableBatch: 32, candidateMs: 0.2, stableMs: 0.045);
        Assert.Equal(GateVerdict.Fail, slow.Verdict);
        Assert.True(slow.Evidence["p50_ratio"] > 1.5, $"traffic ratio {slow.Evidence["p50_ratio"]}");

        // A candidate batched more than the champion pays less per window than it would at the champion's batching,
        // but a run of more windows never costs less, so at most its share × (its batch / the champion's). Runs of 32
        // against 4 could hide an 8× gap: its traffic cannot refute the baselines, and neither reading is trusted.
        var moreBatched = Judge(candidateBatch: 32, stableBatch: 4, candidateMs: 0.05, stableMs: 0.045);
        Assert.Equal(GateVerdict.Inconclusive, moreBatched.Verdict);
        Assert.Equal((32, 4), (moreBatched.Evidence["candidate_mean_batch"], moreBatched.Evidence["stable_mean_batch"]));
        Assert.True(moreBatched.Evidence["p50_ratio_upper_bound"] > 1.5, $"bound {moreBatched.Evidence["p50_ratio_upper_bound"]}");

        // Runs of 16 against 14 (as a shadowing candidate at 64 callers shows): even granting the candidate the whole
        // advantage of its larger runs it is within the limit, so the traffic refutes the baselines.
        var slightlyMore = Judge(candidateBatch: 16, stableBatch: 14, candidateMs: 0.05, stableMs: 0.045);
        Assert.Equal(GateVerdict.Pass, slightlyMore.Verdict);
        Assert.InRange(slightlyMore.Evidence["p50_ratio_upper_bound"], slightlyMore.Evidence["p50_ratio"] * 16 / 14 * 0.999, 1.5);

        // The same batching with a traffic ratio its larger runs could explain down to the limit: not refuted.
        var explained = Judge(candidateBatch: 16, stableBatch: 12, candidateMs: 0.06, stableMs: 0.045);
        Assert.Equal(GateVerdict.Inconclusive, explained.Verdict);
        Assert.InRange(explained.Evidence["p50_ratio"], 1, 1.5);
        Assert.True(explained.Evidence["p50_ratio_upper_bound"] > 1.5, $"bound {explained.Evidence["p50_ratio_upper_bound"]}");
    }

    [Fact]
    public void Latency_SameExtraTimeOnEveryCall_IsNotARegressionOfTheFasterModel()
    {
        // A busy host adds ~0.14 ms to every single-window run: the 0.27 ms champion serves at 0.40 ms (1.5×), the 0.11 ms
        // candidate at 0.26 ms (2.4×). The ratio of inflations (1.6×) blames the faster model for the shared overhead;
        // with the champion's extra time taken as shared the candidate is at its baseline. A real 3× regression of the
        // candidate on the same host (0.33 + 0.13 ms) fails under both readings.
        var gate = new LatencyGate(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 1.5, 1.5, 100);
        GateResult Judge(double candidateMs)
        {
            var o = new RolloutObservations();
            for (var i = 0; i < 300; i++)
            {
                o.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(candidateMs)));
                o.RecordPrediction("s", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(0.40)));
            }

            return gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, TimeSpan.FromMilliseconds(0.11), TimeSpan.FromMilliseconds(0.27)));
        }

        var shared = Judge(0.26);
        Assert.Equal(GateVerdict.Pass, shared.Verdict);
        Assert.True(shared.Evidence["relative_inflation"] > 1.5, $"relative inflation {shared.Evidence["relative_inflation"]}");
        Assert.InRange(shared.Evidence["additive_inflation"], 1, 1.35);

        var regressed = Judge(0.46);
        Assert.Equal(GateVerdict.Fail, regressed.Verdict);
        Assert.True(regressed.Evidence["additive_inflation"] > 2.5, $"additive inflation {regressed.Evidence["additive_inflation"]}");
    }

    [Fact]
    public void Latency_BothVersionsWithSingleWindowRuns_ComparesThoseOnly()
    {
        // Each version has 200 single-window runs: the candidate's at 3× its baseline, the champion's at its own. The
        // candidate's batched windows (a cheap 0.1 ms share) would pull its overall median below its baseline; they
        // are not what is compared.
        var o = new RolloutObservations();
        for (var i = 0; i < 200; i++)
        {
            o.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(1.2), BatchSize: 1));
            o.RecordPrediction("s", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(1), BatchSize: 1));
            for (var j = 0; j < 3; j++)
            {
                o.RecordLatency("c", TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(0.1), batchSize: 16);
            }
        }

        var result = new LatencyGate(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 1.5, 1.5, 100).Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, TimeSpan.FromMilliseconds(0.4), TimeSpan.FromMilliseconds(1)));
        Assert.Equal(GateVerdict.Fail, result.Verdict);
        Assert.Equal(1, result.Evidence["like_with_like"]);
        Assert.Equal(200, result.Evidence["candidate_single_samples"]);
        Assert.Equal(800, result.Evidence["candidate_samples"]);
        Assert.InRange(result.Evidence["relative_inflation"], 2.5, 3.5);
    }

    [Fact]
    public void Latency_JudgesServiceTimeNotTheQueueingWait()
    {
        // Both versions wait ~800 ms in the same queue (64 requests in flight); each model computes in its own time.
        var o = new RolloutObservations();
        for (var i = 0; i < 300; i++)
        {
            o.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(800 + (i % 7)), TimeSpan.FromMilliseconds(1)));
            o.RecordPrediction("s", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(790 + (i % 5)), TimeSpan.FromMilliseconds(10)));
        }

        var healthy = new LatencyGate(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 1.5, 1.5, 100).Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(10)));
        Assert.Equal(GateVerdict.Pass, healthy.Verdict);
        Assert.Equal(1, healthy.Evidence["basis"]);
        Assert.True(healthy.Evidence["candidate_wait_p95_ms"] >= 800);
        Assert.True(healthy.Evidence["candidate_service_p95_ms"] < 2);

        for (var i = 0; i < 300; i++)
        {
            o.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(800), TimeSpan.FromMilliseconds(3)));
            o.RecordPrediction("s", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(800), TimeSpan.FromMilliseconds(10)));
        }

        var slow = new LatencyGate(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 1.5, 1.5, 100).Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(10)));
        Assert.Equal(GateVerdict.Fail, slow.Verdict);
        Assert.InRange(slow.Evidence["relative_inflation"], 2.5, 3.5);
    }

    [Fact]
    public void ErrorRate_FivePercentWhereTheChampionFailsNone_FailsOnTheIncrease()
    {
        var o = new RolloutObservations();
        for (var i = 0; i < 2000; i++)
        {
            o.RecordPrediction("s", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(1)));
            if (i % 20 == 0)
            {
                o.RecordError("c", TimeSpan.FromMilliseconds(1));
            }
            else
            {
                o.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(1)));
            }
        }

        var snapshot = o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels);
        var z = Statistics.NormalQuantile(0.95);
        Assert.Equal(GateVerdict.Inconclusive, new ErrorRateGate(0.05, null, 100, z).Evaluate(snapshot).Verdict);
        var result = new ErrorRateGate(0.05, 0.01, 100, z).Evaluate(snapshot);
        Assert.Equal(GateVerdict.Fail, result.Verdict);
        Assert.True(result.Evidence["increase_ci_lower"] > 0.01);
    }

    [Fact]
    public void ErrorRate_EveryStreamOnTheCandidate_TheChampionsMirroredRunsAreItsRate()
    {
        // Sticky routing put all streams on the candidate: the champion served nothing, but it ran mirrored on the 1,900
        // windows the candidate scored. 100 errors of 2,000 (5 %) sit on the 5 % limit; against the champion's 0 of 1,900
        // mirrored runs the increase is clear.
        var snapshot = EveryStreamOnTheCandidate(mirrorFails: _ => false);
        var z = Statistics.NormalQuantile(0.95);
        Assert.Equal(0, snapshot.Stable.Requests);
        var result = new ErrorRateGate(0.05, 0.01, 100, z).Evaluate(snapshot);
        Assert.Equal(GateVerdict.Fail, result.Verdict);
        Assert.True(result.IsDecisive);
        Assert.Equal(1900, result.Evidence["stable_mirror_runs"]);
        Assert.Contains("1900 of them mirrored runs", result.Message, StringComparison.Ordinal);
        Assert.Equal(GateVerdict.Inconclusive, new ErrorRateGate(0.05, null, 100, z).Evaluate(snapshot).Verdict); // the limit alone: on it
    }

    [Fact]
    public void ErrorRate_TheChampionsMirroredRunsFailAsOften_NotFailed()
    {
        // The champion's mirrored runs fail as often as the candidate (100 of 1,900, 5.3 %): no increase over the champion.
        var snapshot = EveryStreamOnTheCandidate(mirrorFails: i => i % 20 == 1);
        var result = new ErrorRateGate(0.05, 0.01, 100, Statistics.NormalQuantile(0.95)).Evaluate(snapshot);
        Assert.Equal(GateVerdict.Inconclusive, result.Verdict);
        Assert.Equal(100, result.Evidence["stable_mirror_errors"]);
    }

    /// <summary>2,000 requests all on the candidate "c", every 20th failed; the champion "s" mirrored on each window the candidate scored.</summary>
    private static AnalysisSnapshot EveryStreamOnTheCandidate(Func<int, bool> mirrorFails)
    {
        var o = new RolloutObservations();
        for (var i = 0; i < 2000; i++)
        {
            if (i % 20 == 0)
            {
                o.RecordError("c", TimeSpan.FromMilliseconds(1));
                continue;
            }

            o.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(1)));
            if (mirrorFails(i))
            {
                o.RecordMirrorError("s", TimeSpan.FromMilliseconds(1));
            }
            else
            {
                o.RecordLatency("s", TimeSpan.FromMilliseconds(1));
            }
        }

        return o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels);
    }

    [Fact]
    public void Uncertainty_IntervalStraddlingTheLimit_InconclusiveAndSaysHowManyWindowsWouldDecide()
    {
        // 1,500 paired windows, a true increase of 0.09 against a 0.10 limit: the interval reaches over it.
        var o = new RolloutObservations();
        for (var i = 0; i < 1500; i++)
        {
            var candidateUncertain = i % 100 < 29;
            var stableUncertain = i % 100 < 20;
            o.RecordPair(new PairedObservation(0, 0.6f, candidateUncertain, 0, 0.7f, stableUncertain));
        }

        var result = DifferenceGate.Uncertainty(0.10, 100, Statistics.NormalQuantile(0.95)).Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(GateVerdict.Inconclusive, result.Verdict);
        Assert.True(result.Evidence["ci_lower"] < 0.10 && result.Evidence["ci_upper"] > 0.10);
        Assert.Contains("paired windows would decide it", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Uncertainty_BothVersionsDoubtTheSameWindows_JudgedOnTheDiscordantPairs()
    {
        // Five devices both models doubt on half their windows (the evaluation's seed 91): the champion uncertain on
        // 48.7 % of 950 pairs, the candidate on the same windows and 11.8 % more, against a 0.15 limit.
        const int n = 950;
        var o = new RolloutObservations();
        var differences = new double[n];
        for (var i = 0; i < n; i++)
        {
            var stableUncertain = i % 1000 < 463;
            var candidateUncertain = i % 1000 < 575;
            differences[i] = (candidateUncertain ? 1 : 0) - (stableUncertain ? 1 : 0);
            o.RecordPair(new PairedObservation(0, 0.6f, candidateUncertain, 0, 0.7f, stableUncertain));
        }

        var gate = DifferenceGate.Uncertainty(0.15, 100, Statistics.NormalQuantile(0.95));
        var result = gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, reset: false));

        // The standard error is that of the per-pair differences (population variance over n, as for a mean).
        var mean = differences.Average();
        var expectedSe = Math.Sqrt(differences.Sum(d => (d - mean) * (d - mean)) / n / n);
        Assert.Equal(expectedSe, result.Evidence["standard_error"], 12);
        Assert.Equal(463, result.Evidence["both_uncertain"]); // every window the champion doubts, the candidate doubts too
        Assert.Equal(GateVerdict.Pass, result.Verdict);

        // Judged as two independent rates (a replica that does not ship the both-uncertain count), the same counts leave
        // the interval straddling the limit.
        double rc = 575.0 / n, rs = 463.0 / n;
        var independentSe = Math.Sqrt(((rc * (1 - rc)) + (rs * (1 - rs))) / n);
        Assert.Equal(independentSe, DifferenceGate.PairedRateStandardError(n, 575, 463, -1), 12);
        Assert.True(mean + (Statistics.NormalQuantile(0.95) * independentSe) > 0.15);
    }

    [Fact]
    public void PairedRateStandardError_NoDiscordantPair_KeepsTheIntervalOpen()
    {
        // Both versions uncertain on exactly the same 40 of 400 windows: a difference of 0 measured, but not with certainty.
        var se = DifferenceGate.PairedRateStandardError(400, 40, 40, 40);
        Assert.Equal(Math.Sqrt(1.0 / 400 / 400), se, 12);
        Assert.True(se > 0);
    }

    [Fact]
    public void Confidence_WithoutCalibrationReference_ReportedButNotCounted_WithReference_CountedAgainstTheGap()
    {
        // 2,000 paired windows; the candidate is 0.2 less confident on every window, as often uncertain.
        var o = new RolloutObservations();
        for (var i = 0; i < 2000; i++)
        {
            o.RecordPair(new PairedObservation(i % 4, 0.6f + (i % 3 * 0.05f), false, i % 4, 0.8f + (i % 3 * 0.05f), false));
        }

        var gate = DifferenceGate.Confidence(0.10, 100, Statistics.NormalQuantile(0.95));
        var bare = gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, reset: false));
        Assert.Equal(GateVerdict.Fail, bare.Verdict); // the same statistics
        Assert.False(bare.IsCounted);
        Assert.StartsWith("not counted (no calibration reference", bare.Message, StringComparison.Ordinal);
        Assert.Equal(0, bare.Evidence["calibration_reference"]);
        Assert.Equal(GateVerdict.Pass, AnalysisResult.Combine(AccuracyGate.Counted([bare, new GateResult("error-rate", GateVerdict.Pass, "ok", new Dictionary<string, double>())])));

        // On the reference windows the two versions already differ by 0.15: only 0.05 is left, a Pass.
        var calibrated = gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, candidateReference: new OutputReference(0.70, 0.2, 200), stableReference: new OutputReference(0.85, 0.1, 200), reset: false));
        Assert.True(calibrated.IsCounted);
        Assert.Equal(GateVerdict.Pass, calibrated.Verdict);
        Assert.Equal(0.15, calibrated.Evidence["reference_gap"], 4); // the champion is 0.849975 here, 0.000025 below its reference: a negligible log-odds shift

        // The same reference gap of 0, a counted Fail.
        var degraded = gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, candidateReference: new OutputReference(0.85, 0.1, 200), stableReference: new OutputReference(0.85, 0.1, 200)));
        Assert.True(degraded.IsCounted);
        Assert.Equal(GateVerdict.Fail, degraded.Verdict);
        Assert.Equal(GateVerdict.Fail, AnalysisResult.Combine(AccuracyGate.Counted([degraded])));
    }

    [Fact]
    public void Confidence_ExpectedGapInTheCandidatesFavour_NotRequiredOfIt_ARawDropBeyondTheLimitStillFails()
    {
        // On the reference windows the candidate is the more confident (0.95 vs 0.80): the expected drop is −0.15. On this
        // traffic the champion is as on its reference (0.80) and the candidate 0.08 below it, within the 0.10 limit. Held
        // to its reference advantage it would be judged 0.23 short; the expectation excuses, it does not accuse.
        static RolloutObservations Pairs(float candidateMean)
        {
            var o = new RolloutObservations();
            for (var i = 0; i < 4000; i++)
            {
                var spread = (i % 3 - 1) * 0.05f;
                o.RecordPair(new PairedObservation(i % 4, candidateMean + spread, false, i % 4, 0.80f + spread, false));
            }

            return o;
        }

        var gate = DifferenceGate.Confidence(0.10, 100, Statistics.NormalQuantile(0.95));
        var (candidateReference, stableReference) = (new OutputReference(0.95, 0.05, 200), new OutputReference(0.80, 0.2, 200));
        var result = gate.Evaluate(Pairs(0.72f).TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, candidateReference: candidateReference, stableReference: stableReference));
        Assert.True(result.IsCounted);
        Assert.Equal(GateVerdict.Pass, result.Verdict);
        Assert.Equal(-0.15, result.Evidence["reference_gap"], 3);
        Assert.Equal(0, result.Evidence["reference_gap_applied"]);
        Assert.Equal(result.Evidence["raw_difference"], result.Evidence["confidence_drop"], 9);
        Assert.Contains("in its favour expected but not required", result.Message, StringComparison.Ordinal);

        // A raw drop of 0.2 is beyond the limit whatever the reference says.
        var degraded = gate.Evaluate(Pairs(0.60f).TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, candidateReference: candidateReference, stableReference: stableReference));
        Assert.Equal(GateVerdict.Fail, degraded.Verdict);
    }

    [Fact]
    public void DifferenceGates_ActivityMixAloneWidensTheGap_PassAgainstThePerClassExpectation_BrokenCandidateFails()
    {
        // Reference windows, 20 of each class: on classes 0–2 ("walking") the candidate is about as confident as the
        // champion (0.93 vs 0.95, never uncertain); on class 3 ("sitting") far less (0.72 vs 0.90, uncertain on 30 % vs 5 %).
        // Overall the gap is 0.06 in confidence and 0.0625 in uncertain rate.
        var (candidateReference, stableReference) = (Reference(0.93f, 0.72f, 6), Reference(0.95f, 0.90f, 1));
        Assert.Equal(0.06, stableReference.MeanConfidence - candidateReference.MeanConfidence, 6);
        Assert.Equal(0.0625, candidateReference.UncertainRate - stableReference.UncertainRate, 6);

        // An interval in which every device sits: both versions behave exactly as on their reference sitting windows,
        // so the whole 0.18 confidence drop and 0.25 uncertain-rate increase come from the activity mix.
        var healthy = Sitting(candidateMean: 0.72f, candidateUncertainPerTen: 3);
        var z = Statistics.NormalQuantile(0.95);
        var gates = new[] { DifferenceGate.Confidence(0.10, 100, z), DifferenceGate.Uncertainty(0.15, 100, z) };
        foreach (var gate in gates)
        {
            // Against the overall gap (0.18 − 0.06 = 0.12 > 0.10; 0.25 − 0.0625 = 0.19 > 0.15) the mix alone would fail the
            // candidate; against what each version's reference leads to expect for the class it predicted, it passes.
            var result = gate.Evaluate(healthy.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, candidateReference: candidateReference, stableReference: stableReference, reset: false));
            Assert.True(result.IsCounted);
            Assert.Equal(GateVerdict.Pass, result.Verdict);
            Assert.Equal(1, result.Evidence["candidate_class_covered"], 6);
            Assert.Equal(gate.Name == "confidence" ? 0.18 : 0.25, result.Evidence["reference_gap"], 4);
            Assert.Equal(gate.Name == "confidence" ? 0.06 : 0.0625, result.Evidence["overall_reference_gap"], 6);
            Assert.Equal(0, result.Evidence["stable_shift_log_odds"], 4); // the champion is as on its reference sitting windows
            Assert.True(result.Evidence["raw_difference"] - result.Evidence["overall_reference_gap"] - (z * result.Evidence["standard_error"]) > result.Evidence["threshold"]);
        }

        // A candidate that is less confident than its own reference on the same activity (0.50 on sitting, always uncertain) still fails both.
        var broken = Sitting(candidateMean: 0.50f, candidateUncertainPerTen: 10);
        foreach (var gate in gates)
        {
            var result = gate.Evaluate(broken.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, candidateReference: candidateReference, stableReference: stableReference, reset: false));
            Assert.True(result.IsCounted);
            Assert.Equal(GateVerdict.Fail, result.Verdict);
        }

        static OutputReference Reference(float walking, float sitting, int sittingUncertain)
        {
            var classes = new int[80];
            var confidence = new float[80];
            var uncertain = new bool[80];
            for (var i = 0; i < 80; i++)
            {
                classes[i] = i % 4;
                confidence[i] = classes[i] == 3 ? sitting : walking;
                uncertain[i] = classes[i] == 3 && i / 4 < sittingUncertain;
            }

            return OutputReference.From(4, classes, confidence, uncertain);
        }

        static RolloutObservations Sitting(float candidateMean, int candidateUncertainPerTen)
        {
            var o = new RolloutObservations();
            for (var i = 0; i < 2000; i++)
            {
                var candidate = candidateMean + (((i % 3) - 1) * 0.05f);
                var stable = 0.90f + (((i % 5) - 2) * 0.02f);
                o.RecordPair(new PairedObservation(3, candidate, i % 10 < candidateUncertainPerTen, 3, stable, i % 20 == 0));
            }

            return o;
        }
    }

    [Fact]
    public void UncertainRate_TrafficHarderForTheChampionToo_CandidateExpectedAtTheSameLogOddsShift_NotWithoutTheShift()
    {
        // Reference windows, 20 of each class: the candidate is uncertain on 30 %, the champion on 5 %, every class alike.
        var classes = new int[80];
        var candidateUncertain = new bool[80];
        var stableUncertain = new bool[80];
        for (var i = 0; i < 80; i++)
        {
            classes[i] = i % 4;
            candidateUncertain[i] = i / 4 % 10 < 3;
            stableUncertain[i] = i / 4 == 0;
        }

        var candidateReference = OutputReference.From(4, classes, [.. Enumerable.Repeat(0.8f, 80)], candidateUncertain);
        var stableReference = OutputReference.From(4, classes, [.. Enumerable.Repeat(0.9f, 80)], stableUncertain);
        var gate = DifferenceGate.Uncertainty(0.15, 100, Statistics.NormalQuantile(0.95));

        // Traffic on which the champion is uncertain on 40 %: log-odds 2.54 above its reference. The same shift takes the
        // candidate's 30 % to 84.4 %; a candidate at 84 % is as healthy as the champion there (the additive expectation,
        // 40 % + 25 points, would fail it: 0.44 − 0.25 = 0.19 > 0.15).
        var hard = Pairs(candidatePerThousand: 840, stablePerThousand: 400);
        var result = gate.Evaluate(hard.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, candidateReference: candidateReference, stableReference: stableReference));
        Assert.Equal(GateVerdict.Pass, result.Verdict);
        Assert.Equal(Math.Log(0.4 / 0.6) - Math.Log(0.05 / 0.95), result.Evidence["stable_shift_log_odds"], 6);
        Assert.Equal(0.844, result.Evidence["candidate_expected_on_this_traffic"], 3);
        Assert.Equal(0.25, result.Evidence["additive_reference_gap"], 6);
        Assert.True(result.Evidence["raw_difference"] - result.Evidence["additive_reference_gap"] > 0.18);

        // The same candidate figure where the champion is as on its reference windows: nothing excuses it.
        var alone = Pairs(candidatePerThousand: 840, stablePerThousand: 50);
        var failed = gate.Evaluate(alone.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, candidateReference: candidateReference, stableReference: stableReference));
        Assert.Equal(GateVerdict.Fail, failed.Verdict);
        Assert.Equal(0, failed.Evidence["stable_shift_log_odds"], 6);

        static RolloutObservations Pairs(int candidatePerThousand, int stablePerThousand)
        {
            var o = new RolloutObservations();
            for (var i = 0; i < 2000; i++)
            {
                o.RecordPair(new PairedObservation(i % 4, 0.6f, i % 1000 < candidatePerThousand, i % 4, 0.8f, (i * 7 % 1000) < stablePerThousand));
            }

            return o;
        }
    }

    [Fact]
    public void Agreement_JudgedOnWindowsTheChampionWasSureOf_BrokenCandidateStillFails()
    {
        // 1,000 pairs: on the 700 the champion is sure of the candidate agrees on 90 %; on the 300 it is unsure of, on 30 %.
        // All pairs: 72 %, below the 75 % limit; the windows the champion was sure of: 90 %.
        var healthy = new RolloutObservations();
        var broken = new RolloutObservations();
        for (var i = 0; i < 1000; i++)
        {
            var stableUnsure = i >= 700;
            var agree = stableUnsure ? i % 10 < 3 : i % 10 != 0;
            healthy.RecordPair(new PairedObservation(agree ? 1 : 2, 0.8f, false, 1, stableUnsure ? 0.5f : 0.9f, stableUnsure));

            // A broken candidate disagrees where the champion is sure as often as where it is not (50 %).
            broken.RecordPair(new PairedObservation(i % 2 == 0 ? 1 : 2, 0.8f, false, 1, stableUnsure ? 0.5f : 0.9f, stableUnsure));
        }

        var gate = new AgreementGate(0.75, 100, Statistics.NormalQuantile(0.95));
        var result = gate.Evaluate(healthy.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(0.72, result.Evidence["agreement_rate"], 6);
        Assert.Equal(700, result.Evidence["stable_sure_pairs"]);
        Assert.Equal(0.9, result.Evidence["judged_agreement_rate"], 6);
        Assert.Equal(GateVerdict.Pass, result.Verdict);

        var failed = gate.Evaluate(broken.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(GateVerdict.Fail, failed.Verdict);
        Assert.Contains("windows the champion was sure of", failed.Message, StringComparison.Ordinal);

        // Few pairs (an interval at 10 windows/s): 33 of the 48 sure pairs agree (69 %, upper bound 78 %: not proven below
        // 75 % alone), none of the 12 others; all 60 pairs prove it (55 %, upper bound 65 %), and the sure ones agree: Fail.
        var few = new RolloutObservations();
        for (var i = 0; i < 60; i++)
        {
            few.RecordPair(new PairedObservation(i < 33 ? 1 : 2, 0.8f, false, 1, i < 48 ? 0.9f : 0.5f, i >= 48));
        }

        var early = gate.Evaluate(few.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.True(early.Evidence["ci_upper"] >= 0.75);
        Assert.True(early.Evidence["all_pairs_ci_upper"] < 0.75);
        Assert.Equal(GateVerdict.Fail, early.Verdict);
        Assert.Contains("of all 60 windows", early.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(31, true)] // 51.7 % of 60: Wilson upper bound 62.0 % at α = 0.05, 68.5 % at α² = 0.0025
    [InlineData(36, false)] // 60.0 %: 69.8 % at α, 75.6 % at α²: failed, but one interval is not proof enough alone
    public void Agreement_FailureThatHoldsAtAlphaSquared_IsDecisive(int agreements, bool decisive)
    {
        // 60 pairs the champion was sure of (one interval at a 10 % step of 10 windows/s).
        var o = new RolloutObservations();
        for (var i = 0; i < 60; i++)
        {
            o.RecordPair(new PairedObservation(i < agreements ? 1 : 2, 0.8f, false, 1, 0.9f, false));
        }

        var gate = new AgreementGate(0.75, 100, Statistics.NormalQuantile(0.95), Statistics.NormalQuantile(1 - (0.05 * 0.05)));
        var result = gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, reset: false));
        Assert.Equal(GateVerdict.Fail, result.Verdict);
        Assert.Equal(decisive, result.IsDecisive);
        Assert.Equal(decisive ? 0.6850 : 0.7557, result.Evidence["ci_upper_decisive"], 3);
        Assert.Equal(decisive, result.Message.Contains("decisive", StringComparison.Ordinal));

        // Without a decisive level (the gate as constructed before) no failure is decisive.
        var lenient = new AgreementGate(0.75, 100, Statistics.NormalQuantile(0.95)).Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(GateVerdict.Fail, lenient.Verdict);
        Assert.False(lenient.IsDecisive);
    }

    [Fact]
    public void Agreement_SureWindowsFailIt_AllPairsProveItAtAlphaSquared_Decisive()
    {
        // 40 pairs the champion was sure of, 24 agreeing (60 %: Wilson upper bound 71.7 % at α, 78.3 % at α²: failed, not
        // decisively), and 40 it doubted, 8 agreeing: all 80 pairs agree on 32 (40 %), upper bound 55.6 % at α². Both point
        // the same way, and all pairs, more of them, prove it.
        var o = new RolloutObservations();
        for (var i = 0; i < 40; i++)
        {
            o.RecordPair(new PairedObservation(i < 24 ? 1 : 2, 0.8f, false, 1, 0.9f, false));
            o.RecordPair(new PairedObservation(i < 8 ? 1 : 2, 0.5f, true, 1, 0.4f, true));
        }

        var result = new AgreementGate(0.75, 100, Statistics.NormalQuantile(0.95), Statistics.NormalQuantile(1 - (0.05 * 0.05))).Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(GateVerdict.Fail, result.Verdict);
        Assert.Equal(1, result.Evidence["stable_sure_basis"]);
        Assert.Equal(0.7171, result.Evidence["ci_upper"], 3);
        Assert.Equal(0.7830, result.Evidence["ci_upper_decisive"], 3);
        Assert.Equal(0.5559, result.Evidence["all_pairs_ci_upper_decisive"], 3);
        Assert.True(result.IsDecisive);
        Assert.Contains("on all 80 windows", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OutputReference_Expected_WeighsClassFiguresByTheIntervalsMix_FallsBackToOverallForThinClasses()
    {
        // 10 windows predicted as class 0 (confidence 0.9), 10 as class 1 (0.6), 2 as class 2 (0.3): too few for class 2's own figure.
        var classes = new int[22];
        var confidence = new float[22];
        for (var i = 0; i < 22; i++)
        {
            classes[i] = i < 10 ? 0 : i < 20 ? 1 : 2;
            confidence[i] = classes[i] switch { 0 => 0.9f, 1 => 0.6f, _ => 0.3f };
        }

        var reference = OutputReference.From(4, classes, confidence, new bool[22]);
        var overall = reference.MeanConfidence;
        Assert.Equal((9 + 6 + 0.6) / 22, overall, 6);

        var (expected, covered) = reference.Expected(false, [30, 10, 0, 0]);
        Assert.Equal((0.75 * 0.9) + (0.25 * 0.6), expected, 6);
        Assert.Equal(1, covered, 6);

        // Class 2 (2 reference windows) and class 3 (none) take the overall mean.
        (expected, covered) = reference.Expected(false, [10, 0, 5, 5]);
        Assert.Equal((0.5 * 0.9) + (0.5 * overall), expected, 6);
        Assert.Equal(0.5, covered, 6);

        // A reference without class figures expects the overall mean whatever the mix.
        Assert.Equal(overall, new OutputReference(overall, 0, 22).Expected(false, [30, 10, 0, 0]).Expected, 6);
        Assert.Throws<ArgumentOutOfRangeException>(() => OutputReference.From(2, [0, 3], [0.5f, 0.5f], [false, false]));
    }

    [Fact]
    public void ClassMix_LargeSampleSmallShift_PassesBecauseOfEffectSizeFloor()
    {
        var o = new RolloutObservations();
        for (var i = 0; i < 20_000; i++)
        {
            var stable = i % 4;
            var candidate = i % 50 == 0 ? (stable + 1) % 4 : stable; // 2 % of windows move class
            o.RecordPair(new PairedObservation(candidate, 0.9f, false, stable, 0.9f, false));
        }

        var snapshot = o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels);
        var result = new ClassMixGate(DriftClassMixTest.Instance, 0.15, 0.01, 100).Evaluate(snapshot);
        Assert.Equal(GateVerdict.Pass, result.Verdict);
        Assert.True(result.Evidence["js_distance"] < 0.15);
    }

    [Fact]
    public void ClassMix_JudgedOnWindowsTheChampionWasSureOf_BrokenCandidateStillFails()
    {
        // 700 pairs the champion is sure of, spread over four classes, on which the candidate agrees; 300 it is unsure of,
        // all read as class 3 by the champion and as class 0 by the candidate (a more accurate model correcting them).
        // All pairs: [175, 175, 175, 475] vs [475, 175, 175, 175], far apart; the sure pairs: identical.
        var healthy = new RolloutObservations();
        var broken = new RolloutObservations();
        for (var i = 0; i < 1000; i++)
        {
            var stableUnsure = i >= 700;
            var stable = stableUnsure ? 3 : i % 4;
            healthy.RecordPair(new PairedObservation(stableUnsure ? 0 : stable, 0.8f, false, stable, stableUnsure ? 0.5f : 0.9f, stableUnsure));

            // A broken candidate answers class 0 where the champion is sure too.
            broken.RecordPair(new PairedObservation(0, 0.8f, false, stable, stableUnsure ? 0.5f : 0.9f, stableUnsure));
        }

        var gate = new ClassMixGate(DriftClassMixTest.Instance, 0.15, 0.01, 100);
        var allPairs = DriftClassMixTest.Instance.Compare([175, 175, 175, 475], [475, 175, 175, 175]);
        Assert.True(allPairs.JensenShannonDistance > 0.15 && allPairs.PValue < 0.01, "all pairs alone would fail the healthy candidate");

        var passed = gate.Evaluate(healthy.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(GateVerdict.Pass, passed.Verdict);
        Assert.Equal(1, passed.Evidence["stable_sure_basis"]);
        Assert.Equal(700, passed.Evidence["n_candidate"]);
        Assert.Equal(0, passed.Evidence["js_distance"], 9);
        Assert.Contains("on the windows the champion was sure of", passed.Message, StringComparison.Ordinal);

        var failed = gate.Evaluate(broken.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(GateVerdict.Fail, failed.Verdict);
        Assert.Equal(1, failed.Evidence["stable_sure_basis"]);
    }

    [Fact]
    public void ClassMix_SureClassCountsShippedByReplicas_MissingFromOneReplica_JudgesAllPairs()
    {
        var leader = new RolloutObservations();
        var replica = new RolloutObservations();
        for (var i = 0; i < 1000; i++)
        {
            var stableUnsure = i >= 700;
            var stable = stableUnsure ? 3 : i % 4;
            replica.RecordPair(new PairedObservation(stableUnsure ? 0 : stable, 0.8f, false, stable, stableUnsure ? 0.5f : 0.9f, stableUnsure));
        }

        var delta = replica.Drain();
        Assert.Equal([175L, 175, 175, 175], delta.Pairs!.SureCandidate!.Take(4));
        leader.Merge(delta);
        var gate = new ClassMixGate(DriftClassMixTest.Instance, 0.15, 0.01, 100);
        Assert.Equal(1, gate.Evaluate(leader.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, reset: false)).Evidence["stable_sure_basis"]);

        // A replica of an earlier release ships no sure class counts: the interval's sure counts are incomplete, so all pairs are judged.
        leader.Merge(new ObservationDelta { Pairs = delta.Pairs with { SureCandidate = null, SureStable = null } });
        var result = gate.Evaluate(leader.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(0, result.Evidence["stable_sure_basis"]);
        Assert.Equal(2000, result.Evidence["n_candidate"]);
        Assert.Equal(GateVerdict.Fail, result.Verdict);
    }

    [Fact]
    public void ClassMix_FewerPairsThanTheMinimum_WhereTheChampionServedNothing_IsInconclusiveOnThePairs()
    {
        // A 100 % step: every stream on the candidate, the champion only mirrors. 60 pairs, 100 needed: the unpaired
        // counts have nothing of the champion's, so judging them said Unmeasurable although there was evidence.
        var o = new RolloutObservations();
        for (var i = 0; i < 60; i++)
        {
            o.RecordPrediction("c", new PredictionObservation(i % 4, 0.9f, false, TimeSpan.FromMilliseconds(1)));
            o.RecordPair(new PairedObservation(i % 4, 0.9f, false, i % 4, 0.9f, false));
        }

        var gate = new ClassMixGate(DriftClassMixTest.Instance, 0.15, 0.01, 100);
        var result = gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, reset: false));
        Assert.Equal(GateVerdict.Inconclusive, result.Verdict);
        Assert.Equal(1, result.Evidence["paired"]);
        Assert.Equal(60, result.Evidence["n_candidate"]);
        Assert.Equal(60, result.Evidence["n_stable"]);

        // Enough pairs: judged on them, as before.
        for (var i = 0; i < 60; i++)
        {
            o.RecordPrediction("c", new PredictionObservation(i % 4, 0.9f, false, TimeSpan.FromMilliseconds(1)));
            o.RecordPair(new PairedObservation(i % 4, 0.9f, false, i % 4, 0.9f, false));
        }

        Assert.Equal(GateVerdict.Pass, gate.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels)).Verdict);
    }

    [Fact]
    public void ClassMix_FewerPairsThanTheMinimum_BothServing_IsJudgedUnpaired()
    {
        // A partial step: both versions served on their own, so the unpaired mixes (more windows) are compared, as before.
        var o = new RolloutObservations();
        for (var i = 0; i < 400; i++)
        {
            o.RecordPrediction(i % 2 == 0 ? "c" : "s", new PredictionObservation(i / 2 % 4, 0.9f, false, TimeSpan.FromMilliseconds(1)));
        }

        for (var i = 0; i < 10; i++)
        {
            o.RecordPair(new PairedObservation(0, 0.9f, false, 0, 0.9f, false));
        }

        var result = new ClassMixGate(DriftClassMixTest.Instance, 0.15, 0.01, 100).Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(0, result.Evidence["paired"]);
        Assert.Equal(200, result.Evidence["n_candidate"]);
        Assert.Equal(GateVerdict.Pass, result.Verdict);
    }

    [Fact]
    public void ClassMix_CandidateCollapsesToOneClass_Fails()
    {
        var o = new RolloutObservations();
        for (var i = 0; i < 400; i++)
        {
            o.RecordPair(new PairedObservation(0, 0.9f, false, i % 4, 0.9f, false));
        }

        var result = new ClassMixGate(DriftClassMixTest.Instance, 0.15, 0.01, 100).Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
        Assert.Equal(GateVerdict.Fail, result.Verdict);
        Assert.True(result.Evidence["p_value"] < 0.01);
    }

    [Fact]
    public void Analyzer_ThrowingUserGate_Unmeasurable()
    {
        var options = new AnalysisOptions();
        options.Gates.Add(new ThrowingGate());
        var analyzer = new RolloutAnalyzer(options, DriftClassMixTest.Instance);
        var o = new RolloutObservations();
        for (var i = 0; i < 200; i++)
        {
            o.RecordPrediction("c", new PredictionObservation(i % 4, 0.9f, false, TimeSpan.FromMilliseconds(5)));
            o.RecordPrediction("s", new PredictionObservation(i % 4, 0.9f, false, TimeSpan.FromMilliseconds(5)));
        }

        var result = analyzer.Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels), paired: false);
        Assert.Equal(GateVerdict.Unmeasurable, result.Verdict);
        Assert.Contains("boom", result.Gates.Single(g => g.Gate == "throws").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LatencyHistogram_QuantilesWithinResolutionOfExact()
    {
        var rng = new Random(9);
        var h = new LatencyHistogram();
        var values = new List<double>();
        for (var i = 0; i < 10_000; i++)
        {
            var micros = Math.Exp(rng.NextDouble() * 12);
            values.Add(micros);
            h.Record(TimeSpan.FromTicks((long)(micros * 10)));
        }

        values.Sort();
        foreach (var q in new[] { 0.5, 0.95, 0.99 })
        {
            var exact = values[(int)Math.Ceiling(q * values.Count) - 1];
            var approx = h.Quantile(q).TotalMicroseconds;
            Assert.InRange(approx, exact * 0.999 - 1, (exact * 1.0625) + 1);
        }
    }

    private sealed class ThrowingGate : IAnalysisGate
    {
        public string Name => "throws";

        public GateResult Evaluate(AnalysisSnapshot snapshot) => throw new InvalidOperationException("boom");
    }
}
