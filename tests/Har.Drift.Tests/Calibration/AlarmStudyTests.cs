using System.Globalization;
using Har.Testing;

namespace Har.Drift.Tests.Calibration;

/// <summary>
/// The alarm study on ../shared/data/uci-hapt (skipped when the data is absent). The full study (every test session,
/// several random draws per fault) is the calibration runner: it runs only with HAR_DRIFT_CALIBRATION=full and then
/// rewrites the alarm section of docs/drift-calibration.md. The quick check below runs in the normal test run.
/// </summary>
public sealed class AlarmStudyTests
{
    private const string Begin = "<!-- alarm-study:begin -->";
    private const string End = "<!-- alarm-study:end -->";
    private const string AccuracyBegin = "<!-- accuracy-study:begin -->";
    private const string AccuracyEnd = "<!-- accuracy-study:end -->";

    [Fact]
    public void FullStudy_RewritesTheReport()
    {
        var data = TestPaths.RequireSharedData();
        if (Environment.GetEnvironmentVariable("HAR_DRIFT_CALIBRATION") != "full")
        {
            Assert.Skip("Skipped: the full alarm study takes minutes; run it with HAR_DRIFT_CALIBRATION=full (see docs/drift-calibration.md).");
        }

        _ = data;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("HAR_DRIFT_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : Random.Shared.Next(1, 1_000_000);
        var draws = int.TryParse(Environment.GetEnvironmentVariable("HAR_DRIFT_DRAWS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var d) ? d : 3;
        var test = HaptCalibration.AllSessions.Where(x => x.Split == "test").ToList();
        var result = AlarmStudyReport.Run(HaptCalibration.Profile, test, draws, seed, AlarmStudy.Faults);
        var section = AlarmStudyReport.Markdown(result) + "\n" + AlarmStudyReport.Bounds(HaptCalibration.Profile, HaptCalibration.TrainEvidence);
        var path = Path.Combine(TestPaths.RepoRoot, "docs", "drift-calibration.md");
        var doc = File.ReadAllText(path).ReplaceLineEndings("\n");
        var from = doc.IndexOf(Begin, StringComparison.Ordinal);
        var to = doc.IndexOf(End, StringComparison.Ordinal);
        Assert.True(from >= 0 && to > from, $"docs/drift-calibration.md has no '{Begin}' … '{End}' section to rewrite.");
        doc = doc[..(from + Begin.Length)] + "\n" + section + doc[to..];
        var accuracy = AccuracyStudy.Markdown(AccuracyStudy.Run(HaptCalibration.AllSessions, test, AlarmStudy.Faults, seed));
        from = doc.IndexOf(AccuracyBegin, StringComparison.Ordinal);
        to = doc.IndexOf(AccuracyEnd, StringComparison.Ordinal);
        Assert.True(from >= 0 && to > from, $"docs/drift-calibration.md has no '{AccuracyBegin}' … '{AccuracyEnd}' section to rewrite.");
        File.WriteAllText(path, doc[..(from + AccuracyBegin.Length)] + "\n" + accuracy + doc[to..]);
        Assert.True(result.CleanSessions > 0);
    }

    [Fact]
    public void QuickStudy_UnitErrorsAndGainDetected_CleanDevicesQuiet()
    {
        TestPaths.RequireSharedData();
        var test = HaptCalibration.AllSessions.Where(x => x.Split == "test").Take(3).ToList();
        var faults = AlarmStudy.Faults.Where(f => f.Expected is DriftCause.Units or DriftCause.Gain).ToList();

        // Seeded: onsets and parameters are drawn at random, but the same ones on every run.
        var result = AlarmStudyReport.Run(HaptCalibration.Profile, test, 1, 20261203, faults);
        var units = Assert.Single(result.Faults, f => f.Expected == DriftCause.Units);
        Assert.True(units.Within2Min == units.Runs, $"{units.Fault}: {units.Within2Min} of {units.Runs} detected within 2 minutes");

        // A deg/s gyroscope is named Units, or Saturation where the scaled turns clip at the range first (see the report).
        Assert.All(units.Causes.Keys, c => Assert.Contains(c, new[] { nameof(DriftCause.Units), nameof(DriftCause.Saturation) }));

        // An acc gain of 5 % is detected on every device, in a median time within the 2 minutes.
        var gain = Assert.Single(result.Faults, f => f.Expected == DriftCause.Gain);
        Assert.True(gain.Detected == gain.Runs, $"{gain.Fault}: {gain.Detected} of {gain.Runs} detected");
        Assert.True(gain.MedianSeconds <= 120, $"{gain.Fault}: median time to detect {gain.MedianSeconds:F0} s");

        Assert.True(result.CleanAlarms == 0, $"{result.CleanAlarms} alarms on {result.CleanSessions} clean sessions ({result.CleanHours:F2} device-hours)");
    }
}
