using System.Globalization;
using System.Text;
using Har.Inference.Data;
using Har.Testing;

namespace Har.Drift.Tests.Calibration;

/// <summary>
/// False alarms on clean devices that start streaming part-way through a recording (HAR_DRIFT_MEASURE=fresh): each clean
/// test session streamed from starts every 10 s (HAR_DRIFT_START_STEP seconds) (not only from the recording's start, as the alarm study does), with a
/// fresh device history, scored every 30 s on the last 60 s to the recording's end.
/// </summary>
public sealed class FreshStartMeasurement(ITestOutputHelper output)
{
    [Fact]
    public void Measure()
    {
        _ = TestPaths.RequireSharedData();
        if (Environment.GetEnvironmentVariable("HAR_DRIFT_MEASURE") != "fresh")
        {
            Assert.Skip("the fresh-start measurement writes a table for docs/drift-calibration.md; run it with HAR_DRIFT_MEASURE=fresh.");
        }

        var profile = HaptCalibration.Profile;
        var scorer = new DriftScorer(profile, new DriftScoringOptions());
        var window = profile.SegmentLength;
        var step = window / 2;
        var startSeconds = int.TryParse(Environment.GetEnvironmentVariable("HAR_DRIFT_START_STEP"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var st) ? st : 10;
        var startStep = (int)(startSeconds * AlarmStudy.Rate);
        var split = Environment.GetEnvironmentVariable("HAR_DRIFT_SPLIT") ?? "test";
        var sessions = HaptCalibration.AllSessions.Where(x => x.Split == split).ToList();
        var jobs = new List<(SensorSession Session, int Start)>();
        // HAR_DRIFT_RANDOM_STARTS=n: n starts per session drawn uniformly over its frames instead (a device's first frame
        // falls anywhere, not on a grid of seconds; seed 20261206).
        var randomStarts = int.TryParse(Environment.GetEnvironmentVariable("HAR_DRIFT_RANDOM_STARTS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var rs) ? rs : 0;
        var rng = new Random(20261206);
        foreach (var s in sessions)
        {
            for (var start = 0; randomStarts == 0 && start + window <= s.Length; start += startStep)
            {
                jobs.Add((s, start));
            }

            for (var i = 0; i < randomStarts; i++)
            {
                jobs.Add((s, rng.Next(s.Length - window + 1)));
            }
        }

        var results = jobs.AsParallel().AsOrdered().Select(j =>
        {
            var samples = j.Session.Samples.AsSpan(j.Start * AlarmStudy.Channels).ToArray();
            var scorings = AlarmStudy.Stream(scorer, samples, window, step);
            var first = scorings.FindIndex(x => x.Report.Alarm?.Raised == true);
            return (j.Session, j.Start, Frames: samples.Length / AlarmStudy.Channels, Scorings: scorings.Count, First: first, Alarm: first < 0 ? null : scorings[first].Report.Alarm);
        }).ToList();

        var sb = new StringBuilder();
        var alarmed = results.Where(r => r.First >= 0).ToList();
        var hours = results.Sum(r => r.Frames / AlarmStudy.Rate / 3600);
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{split} sessions {sessions.Count}, runs {results.Count} ({(randomStarts > 0 ? $"{randomStarts} random starts per session" : $"starts every {startSeconds} s")}), device-hours {hours:0.00}, runs with an alarm {alarmed.Count} ({100.0 * alarmed.Count / results.Count:0.0} %), first-scoring alarms {alarmed.Count(r => r.First == 0)}"));
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"alarms per 10 device-hours (first episode of each run): {10 * alarmed.Count / hours:0.00}"));
        foreach (var g in alarmed.GroupBy(r => AlarmStudy.Name(r.Session)))
        {
            var runs = string.Join("; ", g.Select(r => string.Create(CultureInfo.InvariantCulture, $"start {r.Start / AlarmStudy.Rate:0} s, scoring {r.First}, {r.Alarm!.Cause} {string.Join(',', r.Alarm.Channels)}: {r.Alarm}")));
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{g.Key}: {g.Count()} of {results.Count(r => r.Session == g.First().Session)} starts; {runs}"));
        }

        var text = sb.ToString();
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "fresh.md"), text);
        output.WriteLine(text);
        Assert.NotEmpty(results);
    }
}
