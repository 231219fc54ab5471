namespace Har.Deployment.Tests.Analysis;

/// <summary>
/// Below their minimum sample sizes the error-rate and latency gates never pass, but they fail on evidence
/// that exact (or distribution-free) tests at the configured confidence already find conclusive. Expected
/// values are derived by hand from the closed forms (hypergeometric and binomial sums), not from the code.
/// </summary>
public sealed class ConclusiveEvidenceTests
{
    private static readonly string[] Labels = ["a", "b", "c", "d"];

    [Theory]
    // Candidate 3/60 vs champion 0/540: with no errors among the champion's, the one-sided p-value is
    // P(all 3 errors fall in the candidate's 60 of 600 requests) = C(60,3) / C(600,3) = 34220 / 35820200.
    [InlineData(3, 60, 0, 540, 9.553268825969704e-4)]
    // C(60,2) / C(600,2) = 1770 / 179700.
    [InlineData(2, 60, 0, 540, 9.84974958263773e-3)]
    // One error: 60 / 600.
    [InlineData(1, 60, 0, 540, 0.1)]
    // Fisher's lady tasting tea, table [[3, 1], [1, 3]]: P(X ≥ 3) = (C(4,3)·C(4,1) + C(4,4)·C(4,0)) / C(8,4) = 17/70.
    [InlineData(3, 4, 1, 4, 17.0 / 70)]
    [InlineData(0, 60, 0, 540, 1.0)]
    public void FisherGreater_MatchesTheHypergeometricTail(int a, int n1, int b, int n2, double expected)
    {
        Assert.Equal(expected, Statistics.FisherGreater(a, n1, b, n2), 12);
    }

    [Fact]
    public void BinomialAtLeast_MatchesTheClosedForm()
    {
        // P(X ≥ 3 | 60, 0.05) = 1 − Σ_{x=0..2} C(60,x) 0.05^x 0.95^(60−x) = 0.5825642313398331.
        Assert.Equal(0.5825642313398331, Statistics.BinomialAtLeast(3, 60, 0.05), 12);
        // P(X ≥ 8 | 60, 0.05) = 0.009789148709941485.
        Assert.Equal(0.009789148709941485, Statistics.BinomialAtLeast(8, 60, 0.05), 12);
        Assert.Equal(1, Statistics.BinomialAtLeast(0, 60, 0.05));
        Assert.Equal(0, Statistics.BinomialAtLeast(61, 60, 0.05));
    }

    [Theory]
    // Median of 60 at α = 0.025 each side: the 22nd smallest is a lower bound (P(Bin(60, ½) ≥ 22) ≥ 0.975, not so for 23),
    // the 39th an upper bound. Of 5 samples at α = 0.05 the smallest and the largest; for the p95 of 60 the 54th.
    [InlineData(60, 0.5, 0.025, 22, 39)]
    [InlineData(5, 0.5, 0.05, 1, 5)]
    public void QuantileRanks_AreTheBinomialOrderStatistics(int n, double q, double alpha, long lower, long upper)
    {
        Assert.Equal(lower, Statistics.QuantileLowerRank(n, q, alpha));
        Assert.Equal(upper, Statistics.QuantileUpperRank(n, q, alpha));
        Assert.Equal(54, Statistics.QuantileLowerRank(60, 0.95, 0.05));
        Assert.Equal(0, Statistics.QuantileLowerRank(3, 0.5, 0.05)); // P(Bin(3, ½) ≥ 1) = 7/8 < 0.95: no bound
    }

    [Theory]
    [InlineData(3, GateVerdict.Fail, true)]          // p = 9.6e-4 ≤ 0.05² = 0.0025: decisive
    [InlineData(2, GateVerdict.Fail, false)]         // p = 0.0098 ≤ 0.05, not ≤ 0.0025
    [InlineData(1, GateVerdict.Inconclusive, false)] // p = 0.1
    [InlineData(0, GateVerdict.Inconclusive, false)] // no errors: a pass still needs 100 requests
    public void ErrorRate_BelowTheMinimum_FailsOnlyOnAnExactTest(int errors, GateVerdict expected, bool decisive)
    {
        var result = ErrorRate(60, errors, 540, 0);
        Assert.Equal(expected, result.Verdict);
        Assert.Equal(decisive, result.IsDecisive);
        Assert.Equal(60, result.Evidence["requests"]);
    }

    [Theory]
    // From the minimum (100) on, the same exact tests still fail a candidate: 3 errors in 120 against the champion's 0 in
    // 1,080 fail neither asymptotic interval, but p = C(120,3)/C(1200,3) = 9.78e-4 ≤ 0.0025 (decisive); 2 in 120:
    // C(120,2)/C(1200,2) = 9.92e-3 ≤ 0.05; 1 in 120: p = 0.1, and its Wilson upper bound (3.9 %) passes it.
    [InlineData(3, GateVerdict.Fail, true)]
    [InlineData(2, GateVerdict.Fail, false)]
    [InlineData(1, GateVerdict.Pass, false)]
    public void ErrorRate_FromTheMinimumOn_ExactTestsStillFail(int errors, GateVerdict expected, bool decisive)
    {
        var result = ErrorRate(120, errors, 1080, 0);
        Assert.Equal(expected, result.Verdict);
        Assert.Equal(decisive, result.IsDecisive);
        Assert.True(result.Evidence["ci_lower"] < 0.05); // the Wilson interval alone would not fail it
    }

    [Fact]
    public void ErrorRate_BelowTheMinimum_SameRateAsTheChampion_NotFailed()
    {
        // 1/60 vs 9/540: the same 1.7 % on both sides; neither the limit nor the champion's rate is exceeded.
        var result = ErrorRate(60, 1, 540, 9);
        Assert.Equal(GateVerdict.Inconclusive, result.Verdict);
        Assert.False(result.IsDecisive);
    }

    /// <summary>The error-rate gate (5 % limit, 1-point margin, minimum 100, α = 0.05) on the candidate's and the champion's counts.</summary>
    private static GateResult ErrorRate(int requests, int errors, int stableRequests, int stableErrors)
    {
        var o = new RolloutObservations();
        Record(o, "c", requests, errors);
        Record(o, "s", stableRequests, stableErrors);
        return new ErrorRateGate(0.05, 0.01, 100, Statistics.NormalQuantile(0.95), 0.05).Evaluate(o.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels));
    }

    [Fact]
    public void Latency_BelowTheMinimum_ThreeTimesSlowerThanItsBaseline_Fails_SameSpeed_Inconclusive()
    {
        // 60 candidate samples (of the 100 a pass needs) serving at 3× its 1 ms single-window median, the champion at its 10 ms.
        var slow = new RolloutObservations();
        var healthy = new RolloutObservations();
        for (var i = 0; i < 540; i++)
        {
            var stable = new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(9 + (i % 3)));
            slow.RecordPrediction("s", stable);
            healthy.RecordPrediction("s", stable);
            if (i < 60)
            {
                slow.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(2.8 + (0.01 * i))));
                healthy.RecordPrediction("c", new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(0.9 + (0.005 * i))));
            }
        }

        var gate = new LatencyGate(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 1.5, 1.5, 100, 0.05);
        var failed = gate.Evaluate(slow.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(10)));
        Assert.Equal(GateVerdict.Fail, failed.Verdict);
        Assert.True(failed.IsDecisive, failed.Message);
        // The 22nd of 60 samples (2.8 + 0.21 ms) is the median's lower bound; its bucket's lower edge is ≥ 2.8 ms.
        Assert.InRange(failed.Evidence["candidate_service_p50_lower_bound_ms"], 2.8, 3.01);
        Assert.True(failed.Evidence["relative_inflation_lower_bound"] > 1.5);

        var passed = gate.Evaluate(healthy.TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Labels, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(10)));
        Assert.Equal(GateVerdict.Inconclusive, passed.Verdict);
    }

    [Fact]
    public void LatencyHistogram_Bounds_BracketTheExactOrderStatistics()
    {
        var h = new LatencyHistogram();
        for (var i = 1; i <= 60; i++)
        {
            h.Record(TimeSpan.FromMicroseconds(100 * i));
        }

        // Lower bound: the 22nd smallest (2200 µs) at its bucket's lower edge; upper: the 39th (3900 µs) at its bucket's upper edge.
        var lower = h.LowerBound(0.5, 0.025);
        var upper = h.UpperBound(0.5, 0.025);
        Assert.InRange(lower.TotalMicroseconds, 2200 / 1.0625, 2200);
        Assert.InRange(upper.TotalMicroseconds, 3900, 3900 * 1.0625);
        Assert.Equal(TimeSpan.Zero, new LatencyHistogram().LowerBound(0.5, 0.05));
    }

    private static void Record(RolloutObservations o, string version, int requests, int errors)
    {
        for (var i = 0; i < requests; i++)
        {
            if (i < errors)
            {
                o.RecordError(version, TimeSpan.FromMilliseconds(1));
            }
            else
            {
                o.RecordPrediction(version, new PredictionObservation(0, 0.9f, false, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1)));
            }
        }
    }
}
