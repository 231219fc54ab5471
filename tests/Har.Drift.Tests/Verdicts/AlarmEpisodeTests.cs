using Har.Drift.Tests.Calibration;
using Har.Testing;

namespace Har.Drift.Tests.Verdicts;

/// <summary>
/// The cause a raised alarm names over its episode (<see cref="AlarmState.Name"/>): kept while later scorings name
/// nothing, or name another cause while the check that holds the alarm up did not fail; a definite cause kept against
/// a less definite one; forgotten once the alarm lowers. Found from outside: a HAPT test session streamed into the
/// service with its frame turned 15° while the person lay still raised `Rotation`, then stayed raised for three
/// minutes naming `None` ("Every check passed"); a flipped ay named `SignFlip (ay)`, then `Gain` once the windows held
/// no turns of their own. Replayed below through the scorer, both fail without the episode naming.
/// </summary>
public sealed class AlarmEpisodeTests
{
    private static (DriftCause, IReadOnlyList<string>, string) Named(DriftCause cause, params string[] channels) => (cause, channels, $"{cause} text");

    [Fact]
    public void Raised_ThenNothingNamed_KeepsTheCauseItWasRaisedFor_UntilItLowers()
    {
        var state = new AlarmState();
        Assert.Equal(DriftCause.Rotation, state.Name(true, true, Named(DriftCause.Rotation)).Cause);

        var kept = state.Name(true, true, (DriftCause.None, [], "Every check passed."));
        Assert.Equal(DriftCause.Rotation, kept.Cause);
        Assert.Contains("Rotation text", kept.Text, StringComparison.Ordinal);
        Assert.Contains("no check failed in this scoring", kept.Text, StringComparison.Ordinal);
        Assert.Equal(DriftCause.Rotation, state.Name(true, true, Named(DriftCause.Unknown, "ax")).Cause);
        Assert.EndsWith("(The cause this alarm was raised for; this window is too short.)", state.Name(true, false, (DriftCause.None, [], "short"), "this window is too short").Text, StringComparison.Ordinal);

        // Lowered: the scoring's own cause, and the episode is forgotten.
        Assert.Equal(DriftCause.None, state.Name(false, true, (DriftCause.None, [], "Every check passed.")).Cause);
        Assert.Equal(DriftCause.Gain, state.Name(true, true, Named(DriftCause.Gain, "ax", "ay", "az")).Cause);
    }

    [Fact]
    public void DefiniteCause_IsNotReplacedByALessDefiniteOne_ButByAnotherDefiniteOne()
    {
        var state = new AlarmState();
        Assert.Equal(DriftCause.SignFlip, state.Name(true, true, Named(DriftCause.SignFlip, "ay")).Cause);

        var kept = state.Name(true, true, Named(DriftCause.Gain, "gx", "gy", "gz"));
        Assert.Equal(DriftCause.SignFlip, kept.Cause);
        Assert.Equal(["ay"], kept.Channels);
        Assert.Contains("this scoring alone points at Gain (gx, gy, gz), which the SignFlip outranks", kept.Text, StringComparison.Ordinal);

        var units = state.Name(true, true, Named(DriftCause.Units, "gx", "gy", "gz"));
        Assert.Equal(DriftCause.Units, units.Cause);
        Assert.Equal("Units text", units.Text);
    }

    [Fact]
    public void LessDefiniteCause_GivesWayToALaterOne()
    {
        var state = new AlarmState();
        Assert.Equal(DriftCause.Offset, state.Name(true, true, Named(DriftCause.Offset, "ax")).Cause);
        Assert.Equal(DriftCause.Units, state.Name(true, true, Named(DriftCause.Units, "gx")).Cause);

        var other = new AlarmState();
        Assert.Equal(DriftCause.Unknown, other.Name(true, true, Named(DriftCause.Unknown, "ay")).Cause);
        Assert.Equal(DriftCause.Unknown, other.Name(true, false, (DriftCause.None, [], "Every check passed.")).Cause);
        // An alarm raised without a sensor cause takes the first one named, even while another check holds it up.
        Assert.Equal(DriftCause.Gain, other.Name(true, false, Named(DriftCause.Gain, "ax", "ay", "az")).Cause);
        Assert.Equal(DriftCause.Offset, other.Name(true, true, Named(DriftCause.Offset, "ax")).Cause);
    }

    [Fact]
    public void LaterFinding_WhileTheLeadingCheckDidNotFail_DoesNotRenameTheAlarm()
    {
        // The frame step raised it and leads while its CUSUM decays; a later window's marginal gravity magnitude
        // (another check, far below its own threshold) does not rename it. Once the leading check fails again and names
        // another cause, that cause is named.
        var state = new AlarmState();
        Assert.Equal(DriftCause.Rotation, state.Name(true, true, Named(DriftCause.Rotation)).Cause);
        var kept = state.Name(true, false, Named(DriftCause.Gain, "ax", "ay", "az"));
        Assert.Equal(DriftCause.Rotation, kept.Cause);
        Assert.Contains("this scoring's findings point at Gain (ax, ay, az), but the alarm stands on the earlier evidence", kept.Text, StringComparison.Ordinal);
        Assert.Equal(DriftCause.Gain, state.Name(true, true, Named(DriftCause.Gain, "ax", "ay", "az")).Cause);
    }

    [Fact]
    public void RaisedWithNothingNamedYet_IsUnknown_NotNone()
    {
        var state = new AlarmState();
        var named = state.Name(true, true, (DriftCause.None, [], "window too short for the alarm."));
        Assert.Equal(DriftCause.Unknown, named.Cause);
        Assert.Contains("earlier scorings", named.Text, StringComparison.Ordinal);

        state.Reset();
        Assert.Equal(DriftCause.Rotation, state.Name(true, true, Named(DriftCause.Rotation)).Cause);
        state.Reset();
        Assert.Equal(DriftCause.Unknown, state.Name(true, true, (DriftCause.None, [], "x")).Cause);
    }

    /// <summary>The two streams of the outside check, replayed through the scorer as the service scores them (the last 60 s every 30 s).</summary>
    [Theory]
    [InlineData(3, 95, "rotation")]
    [InlineData(4, 120, "flip-ay")]
    public void HaptStream_EveryRaisedScoringNamesTheCause(int session, int onsetSeconds, string fault)
    {
        TestPaths.RequireSharedData();
        var s = HaptCalibration.AllSessions.Single(x => x.Session == session);
        var onset = onsetSeconds * 50;
        var expected = fault == "rotation" ? DriftCause.Rotation : DriftCause.SignFlip;
        var n = Math.Sqrt((0.3 * 0.3) + 1 + (0.2 * 0.2));
        var samples = fault == "rotation" ? AlarmStudy.RotateFrom(s.Samples, onset, 0.3 / n, 1 / n, 0.2 / n, 15).Samples : (float[])s.Samples.Clone();
        for (var i = onset; fault == "flip-ay" && i < s.Length; i++)
        {
            samples[(i * 6) + 1] = -samples[(i * 6) + 1];
        }

        var profile = HaptCalibration.Profile;
        var scorings = AlarmStudy.Stream(new DriftScorer(profile, new DriftScoringOptions()), samples, profile.SegmentLength, profile.SegmentLength / 2);
        var raised = scorings.Where(x => x.Report.Alarm is { Raised: true }).ToList();

        // These draws are seen (the outside check saw both); the clean part before the onset raises nothing.
        Assert.NotEmpty(raised);
        Assert.All(raised, x => Assert.True(x.End > onset, $"raised at frame {x.End}, before the onset {onset}"));
        var first = raised[0].Report.Alarm!;
        Assert.Equal(expected, first.Cause);

        // Every later raised scoring of the episode names it too: never None, never a lesser cause.
        Assert.All(raised, x => Assert.Equal(expected, x.Report.Alarm!.Cause));
        if (fault == "flip-ay")
        {
            Assert.All(raised, x => Assert.Equal(["ay"], x.Report.Alarm!.Channels));
        }
    }
}
