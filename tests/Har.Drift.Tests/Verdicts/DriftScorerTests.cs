namespace Har.Drift.Tests.Verdicts;

public sealed class DriftScorerTests
{
    private static readonly Lazy<ReferenceProfile> Shared = new(() => Synthetic.Profile());

    [Fact]
    public void Score_SameProcessNewSubject_Stable()
    {
        var scorer = new DriftScorer(Shared.Value);
        var report = scorer.Score(Synthetic.Recording(999, 1000, tilt: 0.05));
        Assert.All(report.Channels, c => Assert.Equal(DriftVerdict.Stable, c.Verdict));
        Assert.Equal(Shared.Value.Hash, report.ReferenceHash);
        Assert.Equal(8, report.MatchedSegments.Count);
    }

    [Fact]
    public void Score_EmptyWindow_InsufficientNotAnError_WhereObserveRefusesIt()
    {
        // Deliberately different (documented on both): a window scored on its own may hold too little to judge, as a
        // monitor's ScoreNow of a stream with no frames yet does; Observe takes one prediction's input, never empty.
        var report = new DriftScorer(Shared.Value).Score([]);

        Assert.Equal(DriftVerdict.Insufficient, report.Verdict);
        Assert.All(report.Channels, c => Assert.Equal((DriftVerdict.Insufficient, 0), (c.Verdict, c.N)));
        using var monitor = new DeviceDriftMonitor(Shared.Value, new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() });
        var ex = Assert.Throws<ArgumentException>(() => monitor.Observe("phone-1", [], 0, 0, 0.9f, 0.1f));
        Assert.Contains("at least one", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Score_StuckChannel_DriftedWithFlatlineFinding()
    {
        var w = Synthetic.Recording(998, 1000);
        for (var i = 5; i < w.Length; i += 6)
        {
            w[i] = 0.25f;
        }

        var report = new DriftScorer(Shared.Value).Score(w);
        Assert.Equal(DriftVerdict.Drifted, report.Channels[5].Verdict);
        Assert.Contains(report.Findings, f => f.Kind == SensorFindingKind.Flatline && f.Channel == "gz");
        var ks = report.Channels[5].Ks!;
        Assert.True(ks.Significant && ks.AboveFloor && ks.AdjustedPValue >= ks.PValue);
    }

    [Fact]
    public void Score_Evidence_ReplaysTheVerdict()
    {
        var w = Synthetic.Recording(997, 1000);
        for (var i = 0; i < w.Length; i += 6)
        {
            w[i] += 1.5f;
        }

        var report = new DriftScorer(Shared.Value).Score(w);
        foreach (var c in report.Channels)
        {
            var ks = c.Ks!;
            var psi = c.Psi!;
            var replay = (ks.AdjustedPValue <= report.Alpha && ks.Statistic >= ks.Floor) || (psi.AdjustedPValue <= report.Alpha && psi.Statistic >= psi.Floor);
            Assert.Equal(replay, c.Verdict == DriftVerdict.Drifted);
            Assert.Equal(psi.Statistic, PopulationStabilityIndex.FromCounts(psi.ReferenceCounts!, psi.CurrentCounts!), 12);
            Assert.InRange(c.EffectiveN, 1, c.N);
        }

        Assert.Equal(DriftVerdict.Drifted, report.Channels[0].Verdict);
    }

    [Fact]
    public void Score_TooFewSamples_Insufficient()
    {
        var report = new DriftScorer(Shared.Value).Score(Synthetic.Recording(1, 100));
        Assert.All(report.Channels, c => Assert.Equal(DriftVerdict.Insufficient, c.Verdict));
    }

    [Fact]
    public void Score_NonFinite_ReportedAndExcluded()
    {
        var w = Synthetic.Recording(996, 1000);
        w[6 * 10] = float.NaN;
        w[6 * 11] = float.PositiveInfinity;
        var report = new DriftScorer(Shared.Value).Score(w);
        Assert.Contains(report.Findings, f => f.Kind == SensorFindingKind.NonFinite && f.Channel == "ax");
        Assert.Equal(998, report.Channels[0].N);
    }

    [Fact]
    public void Score_Saturation_Reported()
    {
        var w = Synthetic.Recording(995, 1000);
        for (var f = 0; f < 20; f++)
        {
            w[(f * 6) + 1] = 8f;
        }

        var report = new DriftScorer(Shared.Value).Score(w);
        Assert.Contains(report.Findings, f => f.Kind == SensorFindingKind.Saturation && f.Channel == "ay");
    }

    [Fact]
    public void Score_GyroscopeFarBeyondItsRange_IsAUnitErrorNotSaturation()
    {
        // A gyroscope in deg/s: 0.5 rad/s of turning reads 28.6, and a turn of 3 rad/s reads 172, five times the ±34.9 range.
        var w = Synthetic.Recording(995, 1000);
        for (var f = 0; f < 20; f++)
        {
            w[(f * 6) + 3] = 172f;
        }

        var report = new DriftScorer(Shared.Value).Score(w);
        var units = Assert.Single(report.Findings, f => f.Kind == SensorFindingKind.Units);
        Assert.Equal("gx", units.Channel);
        Assert.Contains("deg/s", units.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(report.Findings, f => f.Kind == SensorFindingKind.Saturation);

        // A unit is the sensor's: the finding, and so the alarm (Diagnosis names a Units finding's implicated
        // channels), names all three gyroscope axes, not only the one that crossed the range.
        Assert.Equal(["gx", "gy", "gz"], units.Implicated);
        Assert.Contains("(gx, gy, gz)", units.Message, StringComparison.Ordinal);
        Assert.Equal(["gx", "gy", "gz"], Diagnosis.Name([], report.Findings).Channels);
    }

    [Fact]
    public void SensorAxesOf_NamesTheAxesOfTheChannelsSensor()
    {
        // What the alarm names for clipping on a device whose unit error is proven (Diagnosis.Name's sensorAxes): a unit
        // is the sensor's, so all its axes, as the unit finding names them.
        var scorer = new DriftScorer(Shared.Value);
        Assert.Equal(["gx", "gy", "gz"], scorer.SensorAxesOf("gy"));
        Assert.Equal(["ax", "ay", "az"], scorer.SensorAxesOf("az"));
        Assert.Equal(["temperature"], scorer.SensorAxesOf("temperature"));
    }

    [Fact]
    public void Score_EveryGyroscopeAxisFarBeyondItsRange_IsOneUnitFinding_NamingTheSensor()
    {
        var w = Synthetic.Recording(995, 1000);
        for (var f = 0; f < 20; f++)
        {
            w[(f * 6) + 3] = 172f;
            w[(f * 6) + 4] = -150f;
            w[(f * 6) + 5] = 120f;
        }

        var report = new DriftScorer(Shared.Value).Score(w);
        var units = Assert.Single(report.Findings, f => f.Kind == SensorFindingKind.Units);
        Assert.Equal(["gx", "gy", "gz"], units.Implicated);
    }

    [Fact]
    public void Score_JitteredTimestamps_Reported_RegularOnesNot()
    {
        var w = Synthetic.Recording(994, 1000);
        var regular = Enumerable.Range(0, 1000).Select(i => i * 20L).ToArray();
        var rng = new Random(1);
        var jittered = Enumerable.Range(0, 1000).Select(i => (i * 20L) + rng.Next(0, 15)).ToArray();
        var scorer = new DriftScorer(Shared.Value);
        Assert.DoesNotContain(scorer.Score(w, regular).Findings, f => f.Kind == SensorFindingKind.SampleRateJitter);
        Assert.Contains(scorer.Score(w, jittered).Findings, f => f.Kind == SensorFindingKind.SampleRateJitter);
    }

    [Fact]
    public void Score_GravityOnAnotherAxis_OrientationChange()
    {
        var w = Synthetic.Recording(993, 1000);
        for (var f = 0; f < w.Length; f += 6)
        {
            (w[f], w[f + 2]) = (w[f + 2], w[f]);
        }

        var report = new DriftScorer(Shared.Value).Score(w);
        Assert.Contains(report.Findings, f => f.Kind == SensorFindingKind.OrientationChange);
    }

    [Fact]
    public void Score_PartialFrame_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => new DriftScorer(Shared.Value).Score(new float[13]));
        Assert.Contains("6-channel frames", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(MultipleTestingCorrection.Holm, new[] { 0.01, 0.04, 0.03, 0.005 }, new[] { 0.03, 0.06, 0.06, 0.02 })]
    [InlineData(MultipleTestingCorrection.BenjaminiHochberg, new[] { 0.01, 0.04, 0.03, 0.005 }, new[] { 0.02, 0.04, 0.04, 0.02 })]
    public void Adjust_KnownFamilies_MatchTextbook(MultipleTestingCorrection correction, double[] p, double[] expected)
    {
        // Values from statsmodels.stats.multitest.multipletests(p, method='holm' / 'fdr_bh').
        var adjusted = MultipleTesting.Adjust(p, correction);
        Assert.Equal(expected, adjusted, (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void EffectiveSize_WhiteNoise_NearN_Ar1_NearTheory()
    {
        var rng = new Random(5);
        var white = Enumerable.Range(0, 20_000).Select(_ => rng.NextDouble()).ToArray();
        Assert.InRange(Sketch.EffectiveSize(white, 100), 18_000, 20_000);

        // AR(1) with phi = 0.9: n_eff ≈ n (1 − φ)/(1 + φ) ≈ n / 19 (truncated sum slightly larger).
        var ar = new double[20_000];
        for (var i = 1; i < ar.Length; i++)
        {
            ar[i] = (0.9 * ar[i - 1]) + rng.NextDouble() - 0.5;
        }

        Assert.InRange(Sketch.EffectiveSize(ar, 200), 20_000 / 25.0, 20_000 / 14.0);
    }
}
