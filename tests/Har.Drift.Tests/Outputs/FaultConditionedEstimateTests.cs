namespace Har.Drift.Tests.Outputs;

/// <summary>The accuracy estimate conditioned on the input fault the drift checks name (<see cref="OutputReference.WithFaultAccuracy(InputFault, ReadOnlySpan{int}, ReadOnlySpan{int})"/>).</summary>
public sealed class FaultConditionedEstimateTests
{
    private static readonly string[] Channels = ["ax", "ay", "az", "gx", "gy", "gz"];

    /// <summary>A reference whose labelled windows are right 90 % of the time, and 21 % with the gyroscope in deg/s.</summary>
    private static OutputReference Reference()
    {
        var (c, conf, _) = OutputSamples.Draw(seed: 11, n: 2000, OutputSamples.ReferenceMix);
        var truth = new int[c.Length];
        for (var i = 0; i < c.Length; i++)
        {
            truth[i] = i % 10 == 0 ? (c[i] + 1) % OutputSamples.Labels.Length : c[i];
        }

        var faultTruth = new int[c.Length];
        for (var i = 0; i < c.Length; i++)
        {
            faultTruth[i] = i % 100 < 21 ? c[i] : (c[i] + 1) % OutputSamples.Labels.Length;
        }

        var degrees = InputFault.Standard(Channels, 50).Single(f => f is { Cause: DriftCause.Units, Description: "gyroscope in deg/s" });
        return OutputSamples.Reference().WithAccuracy(c, conf, truth).WithFaultAccuracy(degrees, c, faultTruth);
    }

    private static DriftAlarm Raised(DriftCause cause, params string[] channels) => new(true, 100, 2, cause, channels, $"{cause} named");

    [Fact]
    public void Profile_WithFaultTable_RoundTripsThroughJsonWithItsHash()
    {
        var profile = Synthetic.Profile().WithOutputs(Reference());
        var back = ReferenceProfile.FromJson(profile.ToJson());

        Assert.Equal(profile.Hash, back.Hash);
        var entry = Assert.Single(back.Outputs!.FaultAccuracies!);
        Assert.Equal(DriftCause.Units, entry.Cause);
        Assert.Equal(["gx", "gy", "gz"], entry.Channels);
        Assert.Equal("gyroscope in deg/s", entry.Description);
        Assert.Equal(2000, entry.Windows);
        Assert.Equal(0.21, entry.Accuracy, 3);
    }

    [Fact]
    public void Profile_WithoutFaultTable_LoadsAndKeepsItsHash()
    {
        // A profile written before the fault table existed has no FaultAccuracies member at all.
        var old = Synthetic.Profile().WithOutputs(OutputSamples.Reference());
        var json = old.ToJson();
        Assert.DoesNotContain("FaultAccuracies", json, StringComparison.Ordinal);

        var back = ReferenceProfile.FromJson(json);
        Assert.Equal(old.Hash, back.Hash);
        Assert.Null(back.Outputs!.FaultAccuracies);
        var (c, conf, ent) = OutputSamples.Draw(seed: 12, n: 300, OutputSamples.ReferenceMix);
        var v = new DriftScorer(back).ScoreOutputs(c, conf, ent, [.. c.Select(_ => (DriftAlarm?)null)]);
        Assert.True(v.EstimateReliable);
        Assert.Empty(v.NamedFaults);
    }

    [Fact]
    public void ScoreOutputs_ReferenceWithoutLabels_SaysTheEstimateIsTheMeanConfidence()
    {
        // Found from outside: "estimated accuracy 0.93" for a model measured at 0.884, from a profile without labelled
        // accuracy, with nothing saying that the figure was the mean confidence.
        var (rc, rconf, rent) = OutputSamples.Draw(seed: 11, n: 2000, OutputSamples.ReferenceMix);
        var unlabelled = new DriftScorer(Synthetic.Profile().WithOutputs(OutputReference.FromPredictions(OutputSamples.Labels, rc, rconf, rent)));
        var labelled = new DriftScorer(Synthetic.Profile().WithOutputs(Reference()));
        var (c, conf, ent) = OutputSamples.Draw(seed: 13, n: 400, OutputSamples.ReferenceMix);

        var verdict = unlabelled.ScoreOutputs(c, conf, ent);

        Assert.Null(verdict.ReferenceAccuracy);
        Assert.Equal(conf.Average(x => (double)x), verdict.EstimatedAccuracy!.Value, 4);
        Assert.Contains("(the mean confidence: the reference holds no labelled accuracy", verdict.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("the mean confidence", labelled.ScoreOutputs(c, conf, ent).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ScoreOutputs_NamedCauseWithAnEntry_EstimateIsTheAccuracyUnderTheFault()
    {
        var scorer = new DriftScorer(Synthetic.Profile().WithOutputs(Reference()));
        var (c, conf, ent) = OutputSamples.Draw(seed: 13, n: 400, OutputSamples.ReferenceMix);

        var plain = scorer.ScoreOutputs(c, conf, ent);
        // The diagnosis names a unit error on the first gyroscope channel that leaves the range.
        var named = scorer.ScoreOutputs(c, conf, ent, [.. c.Select(_ => (DriftAlarm?)Raised(DriftCause.Units, "gx"))]);

        Assert.True(plain.EstimatedAccuracy > 0.8, plain.ToString());
        Assert.Equal(0.21, named.EstimatedAccuracy!.Value, 3);
        Assert.True(named.EstimateReliable);
        var fault = Assert.Single(named.NamedFaults);

        // The margin holds the reference's binomial error under the fault (2000 windows) and the current sampling error.
        Assert.Equal(1.96 * Math.Sqrt(0.21 * 0.79 / 2000), fault.Margin, 3);
        Assert.InRange(named.EstimatedAccuracyMargin!.Value, fault.Margin + 0.001, 0.1);
        Assert.Equal(400, fault.Predictions);
        Assert.Contains("estimated accuracy 0.21 ± ", named.ToString(), StringComparison.Ordinal);
        Assert.Contains("under the named fault gyroscope in deg/s (reference 0.90)", named.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ScoreOutputs_NamedOnHalfThePredictions_MixesBothEstimates()
    {
        var scorer = new DriftScorer(Synthetic.Profile().WithOutputs(Reference()));
        var (c, conf, ent) = OutputSamples.Draw(seed: 14, n: 400, OutputSamples.ReferenceMix);
        var plain = scorer.ScoreOutputs(c, conf, ent);
        var alarms = c.Select((_, i) => i < 200 ? null : (DriftAlarm?)Raised(DriftCause.Units, "gx", "gy", "gz")).ToList();
        // A quiet alarm (not raised) names nothing.
        alarms[0] = new DriftAlarm(false, 1, 2, DriftCause.Units, ["gx"], "leading");

        var half = scorer.ScoreOutputs(c, conf, ent, alarms);

        var cbpeFirstHalf = scorer.ScoreOutputs(c.AsSpan(0, 200), conf.AsSpan(0, 200), ent.AsSpan(0, 200)).EstimatedAccuracy!.Value;
        Assert.Equal((cbpeFirstHalf + 0.21) / 2, half.EstimatedAccuracy!.Value, 3);
        Assert.True(half.EstimatedAccuracy < plain.EstimatedAccuracy);
        Assert.Contains("50 % of predictions under named faults: gyroscope in deg/s 0.21", half.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ScoreOutputs_NamedCauseWithoutAnEntry_MarkedUnreliable()
    {
        var scorer = new DriftScorer(Synthetic.Profile().WithOutputs(Reference()));
        var (c, conf, ent) = OutputSamples.Draw(seed: 15, n: 300, OutputSamples.ReferenceMix);
        var plain = scorer.ScoreOutputs(c, conf, ent);

        // A sign flip of ay: the reference measured no such fault.
        var v = scorer.ScoreOutputs(c, conf, ent, [.. c.Select(_ => (DriftAlarm?)Raised(DriftCause.SignFlip, "ay"))]);

        Assert.False(v.EstimateReliable);
        Assert.Equal(["SignFlip (ay)"], v.UnmatchedCauses);
        Assert.Equal(300, v.UnmatchedPredictions);
        Assert.Empty(v.NamedFaults);
        Assert.Equal(plain.EstimatedAccuracy, v.EstimatedAccuracy);
        Assert.Contains("unreliable: 100 % of predictions were made while the input checks named SignFlip (ay)", v.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ScoreOutputs_AlarmCountDiffersFromPredictions_Throws()
    {
        var scorer = new DriftScorer(Synthetic.Profile().WithOutputs(Reference()));
        var (c, conf, ent) = OutputSamples.Draw(seed: 16, n: 100, OutputSamples.ReferenceMix);

        var ex = Assert.Throws<ArgumentException>(() => scorer.ScoreOutputs(c, conf, ent, [null]));
        Assert.Contains("one alarm per prediction", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WithFaultAccuracy_SameFaultTwice_ReplacesTheEntry()
    {
        var flip = InputFault.Standard(Channels, 50).Single(f => f.Cause == DriftCause.SignFlip && f.Channels[0] == "ay");
        var r = OutputSamples.Reference().WithFaultAccuracy(flip, [0, 1, 2, 3], [0, 1, 2, 2]).WithFaultAccuracy(flip, [0, 1], [0, 0]);

        var entry = Assert.Single(r.FaultAccuracies!);
        Assert.Equal(0.5, entry.Accuracy);
        Assert.Same(entry, r.FindFault(DriftCause.SignFlip, ["ay"]));
        Assert.Null(r.FindFault(DriftCause.SignFlip, ["ax"]));
    }

    [Fact]
    public void Standard_SixAxisImu_NamesEveryFaultTheDiagnosisNames()
    {
        var faults = InputFault.Standard(Channels, 50);

        Assert.Equal(2, faults.Count(f => f.Cause == DriftCause.Units));
        Assert.Equal(Channels, faults.Where(f => f.Cause == DriftCause.SignFlip).Select(f => f.Channels[0]));
        Assert.Equal(6, faults.Count(f => f.Cause == DriftCause.AxisSwap));
        Assert.Equal(6, faults.Count(f => f.Cause == DriftCause.Stuck));
        var rate = Assert.Single(faults, f => f.Cause == DriftCause.SampleRate);
        Assert.Equal("40 Hz fed as 50 Hz", rate.Description);
        Assert.Equal(1.25, rate.SourceFramesPerFrame);
    }

    [Fact]
    public void Apply_EachKind_ChangesTheRecordingAsDescribed()
    {
        // Three frames: channel c of frame f holds 10 f + c + 1.
        float[] frames = [.. Enumerable.Range(0, 18).Select(i => (float)((10 * (i / 6)) + (i % 6) + 1))];
        var faults = InputFault.Standard(Channels, 50);

        var degrees = faults.Single(f => f.Description == "gyroscope in deg/s").Apply(frames, 6);
        Assert.Equal(frames[3] * (float)(180 / Math.PI), degrees[3], 3);
        Assert.Equal(frames[0], degrees[0]);

        var flip = faults.Single(f => f.Cause == DriftCause.SignFlip && f.Channels[0] == "gy").Apply(frames, 6);
        Assert.Equal(-frames[10], flip[10]);

        var swap = faults.Single(f => f.Cause == DriftCause.AxisSwap && f.Channels.SequenceEqual(["ax", "az"])).Apply(frames, 6);
        Assert.Equal((frames[8], frames[6]), (swap[6], swap[8]));

        var stuck = faults.Single(f => f.Cause == DriftCause.Stuck && f.Channels[0] == "az").Apply(frames, 6);
        Assert.Equal([frames[2], frames[2], frames[2]], [stuck[2], stuck[8], stuck[14]]);

        // 40 Hz read as 50 Hz: frame 1 of the stream is frame 1.25 of the recording.
        var rate = faults.Single(f => f.Cause == DriftCause.SampleRate).Apply(frames, 6);
        Assert.Equal(2, rate.Length / 6);
        Assert.Equal(13.5f, rate[6], 4);
    }
}
