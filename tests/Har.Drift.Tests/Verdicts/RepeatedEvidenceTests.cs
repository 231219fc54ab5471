using Har.Drift.Tests.Calibration;
using Har.Testing;

namespace Har.Drift.Tests.Verdicts;

/// <summary>
/// Devices that start streaming part-way through a recording (found from outside: 900 clean devices streamed into the
/// service from random points of the HAPT test sessions, 3 alarmed, then 1). Two causes, two rules.
/// A scoring adds to the alarm only evidence it has not already counted. The rotation-consistency and turn-offset checks
/// pool a device's still-to-still turns over the last 150 s; a window with no turns of its own re-judges the same earlier
/// turns, and used to add their failure to the CUSUM again in each of up to five scorings. Found from outside: 900 clean
/// devices streamed into the service from random points of the HAPT test sessions, and three alarmed (a device that
/// streams from a recording's start pools those turns with many earlier ones, which the alarm study does).
/// And a median over a device's few turns is past its bound only when its confidence bound is: a healthy device that
/// started where its first window held 4 turns read a gyroscope gain of 1.22 (bound 1.14) and alarmed.
/// </summary>
public sealed class RepeatedEvidenceTests
{
    [Fact]
    public void Evidence_AFindingOnTurnsAnEarlierScoringJudged_AddsNothing()
    {
        var mismatch = new SensorFinding(SensorFindingKind.RotationMismatch, null, 0.17, 0.13, "median misfit 0.17", 26, ["gx", "gy", "gz", "ax", "ay", "az"]);
        Assert.Equal(1.31, Assert.Single(Diagnosis.Evidence([], [mismatch])).Weight, 2);
        Assert.Empty(Diagnosis.Evidence([], [mismatch.AsRepeated()]));

        // It keeps feeding the check it names, should it be named again.
        var repeated = mismatch.WithCheck("FrameStep").AsRepeated();
        Assert.Equal("FrameStep", Diagnosis.Key(repeated));
        Assert.True(repeated.WithCheck("x").Repeated);
    }

    /// <summary>The order statistic bounding a median at 95 %: k with P(Binomial(n, ½) ≤ k) ≤ 0.05 &lt; P(… ≤ k + 1), from exact binomial sums.</summary>
    [Theory]
    [InlineData(4, -1)]
    [InlineData(5, 0)]
    [InlineData(20, 5)]
    [InlineData(100, 41)]
    [InlineData(1101, 522)]
    [InlineData(2000, 962)]
    public void MedianBound_IsTheBinomialOrderStatistic(int n, int k) => Assert.Equal(k, ImuPhysics.MedianBound(n));

    /// <summary>Subject 9's session from frame 12,428 (248.56 s), the device that still alarmed in the service after the first rule.</summary>
    [Fact]
    public void HaptStream_DeviceWhoseFirstWindowHoldsFourTurns_NoGainFindingOnThem()
    {
        TestPaths.RequireSharedData();
        var s = HaptCalibration.AllSessions.Single(x => x.Session == 18);
        var profile = HaptCalibration.Profile;
        var samples = s.Samples.AsSpan(12_428 * 6, profile.SegmentLength * 6).ToArray();
        var report = AlarmStudy.Stream(new DriftScorer(profile, new DriftScoringOptions()), samples, profile.SegmentLength, profile.SegmentLength / 2).Single().Report;

        Assert.DoesNotContain(report.Findings, f => f.Kind == SensorFindingKind.RotationMismatch);
        Assert.False(report.Alarm!.Raised, report.Alarm.ToString());
    }

    /// <summary>
    /// Subject 9's session streamed from 120 s with a fresh history, as a device that starts there: its turns in the
    /// first 30 s disagree with the gyroscope by a median 0.17 of the turn (limit 0.13), and the next windows have none
    /// of their own. The finding is reported in each of those scorings; the alarm stays quiet.
    /// </summary>
    [Fact]
    public void HaptStream_DeviceStartingWhereItsOnlyTurnsDisagree_ReportsThemButDoesNotAlarm()
    {
        TestPaths.RequireSharedData();
        var s = HaptCalibration.AllSessions.Single(x => x.Session == 18);
        var profile = HaptCalibration.Profile;
        var samples = s.Samples.AsSpan(120 * 50 * 6).ToArray();
        var scorings = AlarmStudy.Stream(new DriftScorer(profile, new DriftScoringOptions()), samples, profile.SegmentLength, profile.SegmentLength / 2);

        // The turns of the first window fail the check, and later windows without turns of their own repeat them.
        var withFinding = scorings.Where(x => x.Report.Findings.Any(f => f.Kind == SensorFindingKind.RotationMismatch)).ToList();
        Assert.True(withFinding.Count >= 3, $"the rotation finding was reported in {withFinding.Count} scorings");
        Assert.Contains(withFinding, x => x.Report.Findings.Any(f => f.Kind == SensorFindingKind.RotationMismatch && f.Repeated));

        Assert.All(scorings, x => Assert.False(x.Report.Alarm!.Raised, $"alarm at frame {x.End}: {x.Report.Alarm}"));
    }
}
