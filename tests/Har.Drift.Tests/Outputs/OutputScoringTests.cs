using Prometheus;

namespace Har.Drift.Tests.Outputs;

public sealed class OutputScoringTests
{
    private static readonly Lazy<ReferenceProfile> Shared = new(() => OutputSamples.Profile(Synthetic.Profile()));

    [Fact]
    public void ScoreOutputs_SameMixAndConfidence_Stable()
    {
        var (c, conf, ent) = OutputSamples.Draw(seed: 2, n: 600, OutputSamples.ReferenceMix);
        var v = new DriftScorer(Shared.Value).ScoreOutputs(c, conf, ent);

        Assert.Equal(DriftVerdict.Stable, v.Verdict);
        Assert.Equal(600, v.Predictions);
        Assert.True(v.ClassMix!.Statistic < v.ClassMix.Floor, v.ToString());
        Assert.Equal(OutputSamples.Labels, v.Labels);
        Assert.Equal(600, v.ClassMix.CurrentCounts!.Sum());
    }

    [Fact]
    public void ScoreOutputs_ClassMixShifted_DriftedOnTheClassMixWithEvidence()
    {
        // Half the windows are now WALKING (20 % in the reference): a shift of 30 points.
        double[] shifted = [0.5, 0.1, 0.1, 0.1, 0.1, 0.1];
        var (c, conf, ent) = OutputSamples.Draw(seed: 3, n: 600, shifted);
        var v = new DriftScorer(Shared.Value).ScoreOutputs(c, conf, ent);

        Assert.Equal(DriftVerdict.Drifted, v.Verdict);
        var mix = v.ClassMix!;
        Assert.Equal("class_mix", mix.Test);
        Assert.True(mix.Significant && mix.AboveFloor, mix.ToString());
        Assert.Equal(CategoricalTests.JensenShannonDistance(mix.ReferenceCounts, mix.CurrentCounts), mix.Statistic, 12);
        Assert.False(v.Confidence!.Significant && v.Confidence.AboveFloor, v.Confidence.ToString());
    }

    [Fact]
    public void ScoreOutputs_ConfidenceDropped_DriftedOnConfidenceAndEntropy()
    {
        var (c, conf, ent) = OutputSamples.Draw(seed: 4, n: 600, OutputSamples.ReferenceMix, confidenceShift: 0.2);
        var v = new DriftScorer(Shared.Value).ScoreOutputs(c, conf, ent);

        Assert.Equal(DriftVerdict.Drifted, v.Verdict);
        Assert.True(v.Confidence!.Significant && v.Confidence.AboveFloor, v.Confidence.ToString());
        Assert.True(v.Entropy!.Significant && v.Entropy.AboveFloor, v.Entropy.ToString());
        Assert.False(v.ClassMix!.AboveFloor, v.ClassMix.ToString());
    }

    [Fact]
    public void ScoreOutputs_LongRunsOfOneClass_EffectiveSizeBelowN()
    {
        var (c, conf, ent) = OutputSamples.Draw(seed: 5, n: 600, OutputSamples.ReferenceMix, maxRun: 30);
        var v = new DriftScorer(Shared.Value).ScoreOutputs(c, conf, ent);

        Assert.InRange(v.EffectiveN, 1, 300);
    }

    [Fact]
    public void ScoreOutputs_FewerThanMinimum_Insufficient()
    {
        var (c, conf, ent) = OutputSamples.Draw(seed: 6, n: 10, OutputSamples.ReferenceMix);
        var v = new DriftScorer(Shared.Value, new DriftScoringOptions { MinPredictions = 30 }).ScoreOutputs(c, conf, ent);

        Assert.Equal(DriftVerdict.Insufficient, v.Verdict);
        Assert.Null(v.ClassMix);
    }

    [Fact]
    public void ScoreOutputs_ActivitiesTheProfileLacks_CountAsOneMoreClassTheReferenceNeverPredicted()
    {
        // A model version with a class the profile's model did not have: its predictions of that class are passed as
        // OtherActivity. A few of them are counted and named; many of them drift the class mix.
        var (c, conf, ent) = OutputSamples.Draw(seed: 8, n: 600, OutputSamples.ReferenceMix);
        var scorer = new DriftScorer(Shared.Value);
        var stable = scorer.ScoreOutputs(c, conf, ent);
        c[17] = OutputReference.OtherActivity;
        c[311] = OutputReference.OtherActivity;
        var few = scorer.ScoreOutputs(c, conf, ent);

        Assert.Equal(2, few.OtherActivityPredictions);
        Assert.Equal(600, few.Predictions);
        Assert.Equal([.. OutputSamples.Labels, "(activities the profile lacks)"], few.Labels);
        Assert.Equal(2, few.ClassMix!.CurrentCounts![^1]);
        Assert.Equal(0, few.ClassMix.ReferenceCounts![^1]);
        Assert.Equal(600, few.ClassMix.CurrentCounts.Sum());
        Assert.Equal(CategoricalTests.JensenShannonDistance(few.ClassMix.ReferenceCounts, few.ClassMix.CurrentCounts), few.ClassMix.Statistic, 12);
        Assert.True(few.ClassMix.Statistic > stable.ClassMix!.Statistic, $"{few} against {stable}");
        Assert.Contains("2 (0.3 %) of activities the profile lacks", few.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, stable.OtherActivityPredictions);
        Assert.Equal(OutputSamples.Labels, stable.Labels);

        // A third of the windows are the new activity: the class mix drifts.
        for (var i = 0; i < c.Length; i += 3)
        {
            c[i] = OutputReference.OtherActivity;
        }

        var many = scorer.ScoreOutputs(c, conf, ent);
        Assert.Equal(DriftVerdict.Drifted, many.Verdict);
        Assert.True(many.ClassMix!.Significant && many.ClassMix.AboveFloor, many.ToString());
        Assert.Equal(202, many.OtherActivityPredictions); // every third window, and the two above
    }

    [Fact]
    public void ScoreOutputs_NegativeClassOtherThanOtherActivity_ThrowsNamingIt()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new DriftScorer(Shared.Value).ScoreOutputs([0, -2], [0.9f, 0.9f], [0.1f, 0.1f]));
        Assert.Contains("OtherActivity", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ScoreOutputs_ProfileWithoutOutputs_SaysHowToAttachThem()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => new DriftScorer(Synthetic.Profile()).ScoreOutputs([0], [0.9f], [0.1f]));
        Assert.Contains("WithOutputs", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RecordPrediction_ClassOutsideTheLabels_ThrowsNamingTheLabels()
    {
        using var monitor = new DriftMonitor(Shared.Value, new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = Metrics.NewCustomRegistry() });
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => monitor.RecordPrediction(6, 0.9f, 0.2f));
        Assert.Contains("LAYING", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DriftMonitor_RecordedPredictions_ReportAndMetricsCarryOutputDrift()
    {
        var registry = Metrics.NewCustomRegistry();
        using var monitor = new DriftMonitor(Shared.Value, new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = registry, MonitorName = "m1" });
        monitor.Append(Synthetic.Recording(44, 1000));
        var (c, conf, ent) = OutputSamples.Draw(seed: 7, n: 400, [0.6, 0.08, 0.08, 0.08, 0.08, 0.08]);
        for (var i = 0; i < c.Length; i++)
        {
            monitor.RecordPrediction(c[i], conf[i], ent[i]);
        }

        var report = monitor.ScoreNow();

        Assert.Equal(DriftVerdict.Drifted, report.Outputs!.Verdict);
        Assert.Equal(DriftVerdict.Drifted, report.Verdict);
        Assert.True(report.AnyDrifted);
        Assert.Contains("outputs Drifted", report.ToString(), StringComparison.Ordinal);
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream, TestContext.Current.CancellationToken);
        var text = System.Text.Encoding.UTF8.GetString(stream.ToArray());
        Assert.Contains("har_drift_output_verdict{monitor=\"m1\",test=\"class_mix\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("har_drift_output_statistic{monitor=\"m1\",test=\"confidence\"}", text, StringComparison.Ordinal);
        Assert.Contains("har_drift_output_predictions{monitor=\"m1\"} 400", text, StringComparison.Ordinal);
        Assert.Contains("har_drift_output_other_activity_predictions{monitor=\"m1\"} 0", text, StringComparison.Ordinal);
    }
}
