using Microsoft.Extensions.Time.Testing;

namespace Har.Deployment.Tests.Feedback;

public sealed class AccuracyGateTests
{
    private static readonly string[] Activities = ["WALKING", "SITTING", "STANDING"];
    private static readonly double Z95 = Statistics.NormalQuantile(0.95);

    // Reference values: an independent implementation of the same formulas in plain Python 3 (math, statistics.NormalDist),
    // written at test-writing time:
    //   wilson(x, n, z): p = x/n; centre = (p + z²/2n)/(1 + z²/n); half = z·√(p(1−p)/n + z²/4n²)/(1 + z²/n)
    //   paired(a, b, c, d, z): p1 = (a+b)/n, p2 = (a+c)/n; B = ad − bc; C = B − n/2 if B > n/2, B if B < 0, else 0;
    //     φ = C/√((a+b)(c+d)(a+c)(b+d)); L = D − √((p1−l1)² − 2φ(p1−l1)(u2−p2) + (u2−p2)²);
    //     U = D + √((p2−l2)² − 2φ(p2−l2)(u1−p1) + (u1−p1)²)
    //   z = NormalDist().inv_cdf(0.95) = 1.6448536269514715, inv_cdf(0.975) = 1.9599639845400536.
    [Theory]
    [InlineData(850, 60, 20, 70, 0.95, 0.0254636832, 0.0550321697)] // φ = 0.6006 (corrected: ad − bc − n/2)
    [InlineData(12, 5, 1, 2, 0.95, -0.0112924798, 0.3928695896)]
    [InlineData(5, 10, 12, 1, 0.95, -0.3284508277, 0.1968041114)] // ad − bc < 0: φ = −0.6022
    [InlineData(40, 3, 2, 5, 0.975, -0.0839104622, 0.1260844107)]
    [InlineData(1, 1, 7, 12, 0.975, -0.5069202267, -0.0255591242)] // 0 ≤ ad − bc ≤ n/2: φ = 0
    public void PairedDifference_MatchesIndependentComputation(int a, int b, int c, int d, double level, double lower, double upper)
    {
        var (lo, hi) = AccuracyGate.PairedDifference(a, b, c, d, Statistics.NormalQuantile(level));
        Assert.Equal(lower, lo, 6);
        Assert.Equal(upper, hi, 6);
    }

    [Fact]
    public void IndependentDifference_MatchesNewcombesPublishedExampleAndIndependentComputation()
    {
        // Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 − 48/80, method 10: 0.0524 to 0.3339.
        var (lo, hi) = AccuracyGate.IndependentDifference(56, 70, 48, 80, Statistics.NormalQuantile(0.975));
        Assert.Equal(0.0524, lo, 4);
        Assert.Equal(0.3339, hi, 4);

        // 930/1000 − 880/1000 at one-sided 95 % (Python as above): [0.0285156266, 0.0716608365].
        (lo, hi) = AccuracyGate.IndependentDifference(930, 1000, 880, 1000, Z95);
        Assert.Equal(0.0285156266, lo, 6);
        Assert.Equal(0.0716608365, hi, 6);
    }

    [Theory]
    // Paired 1,000 windows, champion 91 %, candidate 87 %: drop 0.04, interval [0.0255, 0.0550] (above) > 0.02 → Fail.
    [InlineData(850, 60, 20, 70, GateVerdict.Fail)]
    // Candidate better (champion 87 %, candidate 91 %): upper bound < 0 ≤ 0.02 → Pass.
    [InlineData(850, 20, 60, 70, GateVerdict.Pass)]
    // Equal accuracy on 1,000 windows with 40 discordant: interval ±0.0107 → upper 0.0107 ≤ 0.02 → Pass.
    [InlineData(880, 20, 20, 80, GateVerdict.Pass)]
    // Equal accuracy but only 120 windows (10 discordant): interval ±0.0479, upper > 0.02, lower < 0.02 → Inconclusive.
    [InlineData(100, 5, 5, 10, GateVerdict.Inconclusive)]
    // 50 labelled windows < 100 needed → Inconclusive whatever they say.
    [InlineData(20, 25, 0, 5, GateVerdict.Inconclusive)]
    public void Verdicts_OnPairedLabelledWindows(int bothRight, int stableOnly, int candidateOnly, int bothWrong, GateVerdict expected)
    {
        var store = Store(bothRight, stableOnly, candidateOnly, bothWrong);
        var result = new AccuracyGate(store, 0.02, 100, Z95).Evaluate(Snapshot());
        Assert.Equal(expected, result.Verdict);
        Assert.Equal(bothRight + stableOnly + candidateOnly + bothWrong, result.Evidence["paired"]);
        if (result.Evidence.TryGetValue("ci_upper", out var upper))
        {
            var (lo, hi) = AccuracyGate.PairedDifference(bothRight, stableOnly, candidateOnly, bothWrong, Z95);
            Assert.Equal(hi, upper, 12);
            Assert.Equal(lo, result.Evidence["ci_lower"], 12);
            Assert.Equal(1, result.Evidence["basis_paired"]);
        }
    }

    [Theory]
    // Python as above, z = NormalDist().inv_cdf(1 − 0.05²) = 2.8070337683: 850/60/20/70 (drop 0.04) at α² is
    // [0.0150621, 0.0663318], lower bound below the 0.02 margin → a plain Fail; 840/70/10/80 (drop 0.06) at α² is
    // [0.0357341, 0.0862827], lower bound above it → decisive (two failing intervals in one).
    [InlineData(850, 60, 20, 70, 0.0150621, false)]
    [InlineData(840, 70, 10, 80, 0.0357341, true)]
    public void Fail_IsDecisiveWhenItsBoundHoldsAtAlphaSquared(int bothRight, int stableOnly, int candidateOnly, int bothWrong, double strictLower, bool decisive)
    {
        var store = Store(bothRight, stableOnly, candidateOnly, bothWrong);
        var result = new AccuracyGate(store, 0.02, 100, Z95, Statistics.NormalQuantile(1 - (0.05 * 0.05))).Evaluate(Snapshot());
        Assert.Equal(GateVerdict.Fail, result.Verdict);
        Assert.Equal(decisive, result.IsDecisive);
        Assert.Equal(strictLower, result.Evidence["ci_lower_decisive"], 6);
        Assert.Equal(decisive, result.Message.Contains("decisive", StringComparison.Ordinal));
    }

    [Fact]
    public void WithoutPairs_ComparesEachVersionsOwnLabelledWindows()
    {
        // Canary without mirroring: the candidate served d-c (880/1000 right), the champion d-s (930/1000 right).
        var time = new FakeTimeProvider();
        var store = new FeedbackStore(Activities, 128, 50, _ => null, time);
        var starts = Enumerable.Range(0, 1000).Select(i => (long)i * 128).ToArray();
        FeedbackStoreTests.Record(store, "d-c", "c", PredictionRole.Served, starts, [.. Enumerable.Range(0, 1000).Select(i => i < 880 ? 0 : 1)]);
        FeedbackStoreTests.Record(store, "d-s", "s", PredictionRole.Served, starts, [.. Enumerable.Range(0, 1000).Select(i => i < 930 ? 0 : 1)]);
        Assert.Equal(1000, store.Report("d-c", "WALKING", 0, 1000 * 128));
        Assert.Equal(1000, store.Report("d-s", "WALKING", 0, 1000 * 128));

        var result = new AccuracyGate(store, 0.02, 100, Z95).Evaluate(Snapshot());

        // Independent interval of 0.93 − 0.88: [0.0285, 0.0717] (above): lower bound > 0.02 → Fail.
        Assert.Equal(GateVerdict.Fail, result.Verdict);
        Assert.Equal(0, result.Evidence["basis_paired"]);
        Assert.Equal(0.0285156266, result.Evidence["ci_lower"], 6);
        Assert.Contains("unpaired", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoFeedback_IsUnmeasurable()
    {
        var store = new FeedbackStore(Activities, 128, 50, _ => null, new FakeTimeProvider());
        Assert.Equal(GateVerdict.Unmeasurable, new AccuracyGate(store, 0.02, 100, Z95).Evaluate(Snapshot()).Verdict);
    }

    [Theory]
    // accuracy, agreement, class-mix, error-rate → combined
    [InlineData(GateVerdict.Pass, GateVerdict.Fail, GateVerdict.Fail, GateVerdict.Pass, GateVerdict.Pass)] // accuracy outranks both
    [InlineData(GateVerdict.Pass, GateVerdict.Inconclusive, GateVerdict.Pass, GateVerdict.Pass, GateVerdict.Pass)]
    [InlineData(GateVerdict.Pass, GateVerdict.Pass, GateVerdict.Pass, GateVerdict.Fail, GateVerdict.Fail)] // never outranks error rate
    [InlineData(GateVerdict.Fail, GateVerdict.Pass, GateVerdict.Pass, GateVerdict.Pass, GateVerdict.Fail)]
    [InlineData(GateVerdict.Inconclusive, GateVerdict.Pass, GateVerdict.Pass, GateVerdict.Pass, GateVerdict.Pass)] // too few labels: not counted
    [InlineData(GateVerdict.Unmeasurable, GateVerdict.Pass, GateVerdict.Pass, GateVerdict.Pass, GateVerdict.Pass)] // no labels: not counted
    [InlineData(GateVerdict.Inconclusive, GateVerdict.Fail, GateVerdict.Pass, GateVerdict.Pass, GateVerdict.Fail)] // the guards decide
    public void Counted_AccuracyOutranksTheOutputProxiesOnlyWhenDecisive(GateVerdict accuracy, GateVerdict agreement, GateVerdict classMix, GateVerdict errorRate, GateVerdict combined)
    {
        // The confidence and uncertain-rate gates are proxies like agreement and class mix: they take the class-mix verdict here.
        GateResult[] results = [Result("error-rate", errorRate), Result("class-mix", classMix), Result("accuracy", accuracy), Result("agreement", agreement), Result("confidence", classMix), Result("uncertain-rate", classMix)];
        var counted = AccuracyGate.Counted(results);
        Assert.Equal(combined, AnalysisResult.Combine(counted));
        foreach (var i in new[] { 1, 3, 4, 5 })
        {
            Assert.Equal(accuracy == GateVerdict.Pass, results[i].Message.StartsWith("outranked by accuracy: ", StringComparison.Ordinal));
        }

        Assert.Equal(classMix, results[1].Verdict); // the verdict is kept as evidence, only not counted
        Assert.Equal(6, results.Length);
    }

    [Fact]
    public void Counted_AResultItsGateMarkedNotCounted_NeverCounts()
    {
        GateResult[] results = [Result("error-rate", GateVerdict.Pass), Result("confidence", GateVerdict.Fail), Result("accuracy", GateVerdict.Inconclusive)];
        results[1] = new GateResult("confidence", GateVerdict.Fail, "not counted: no reference", new Dictionary<string, double>()) { IsCounted = false };
        Assert.Equal(GateVerdict.Pass, AnalysisResult.Combine(AccuracyGate.Counted(results)));
        Assert.Equal(GateVerdict.Pass, AnalysisResult.Combine(AccuracyGate.Counted([results[0], results[1]]))); // without an accuracy gate too
    }

    private static GateResult Result(string gate, GateVerdict verdict) => new(gate, verdict, gate + " said " + verdict, new Dictionary<string, double>());

    private static FeedbackStore Store(int bothRight, int stableOnly, int candidateOnly, int bothWrong)
    {
        // One stream; each window served by the champion "s" and mirrored to the candidate "c"; truth WALKING (0), a wrong answer SITTING (1).
        // The stream's ring holds all 2 × 1,000 runs.
        var store = new FeedbackStore(Activities, 128, 50, _ => null, new FakeTimeProvider(), limits: new FeedbackLimits { WindowsPerStream = 4096 });
        var s = new List<int>();
        var c = new List<int>();
        void Add(int count, bool stableRight, bool candidateRight)
        {
            for (var i = 0; i < count; i++)
            {
                s.Add(stableRight ? 0 : 1);
                c.Add(candidateRight ? 0 : 1);
            }
        }

        Add(bothRight, true, true);
        Add(stableOnly, true, false);
        Add(candidateOnly, false, true);
        Add(bothWrong, false, false);
        var starts = Enumerable.Range(0, s.Count).Select(i => (long)i * 128).ToArray();
        FeedbackStoreTests.Record(store, "d1", "s", PredictionRole.Served, starts, [.. s]);
        FeedbackStoreTests.Record(store, "d1", "c", PredictionRole.Mirror, starts, [.. c]);
        Assert.Equal(s.Count, store.Report("d1", "WALKING", 0, s.Count * 128L));
        return store;
    }

    private static AnalysisSnapshot Snapshot() => new RolloutObservations().TakeSnapshot("c", "s", DateTimeOffset.UnixEpoch, Activities);
}
