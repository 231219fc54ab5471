using System.Globalization;
using System.Text;
using Har.Testing;

namespace Har.Drift.Tests.Calibration;

/// <summary>
/// How long a detected fault's alarm stays raised (docs/drift-calibration.md, "How long an alarm stays raised"), run
/// with HAR_DRIFT_MEASURE=episodes (HAR_DRIFT_SEED, HAR_DRIFT_DRAWS as the alarm study): the alarm study's runs, and
/// per fault how the first episode after the onset ended — still raised at the stream's last scoring, or lowered while
/// the fault went on, after how long. An alerting rule that waits (Prometheus <c>for: 2m</c>) sees only episodes that
/// last that long. Writes the table to episodes.md in the temp folder and to the test output.
/// </summary>
public sealed class EpisodeMeasurement(ITestOutputHelper output)
{
    /// <summary>An episode this long is seen by an alert that waits 2 minutes (the gauge holds between scorings; rules are evaluated every 15–30 s).</summary>
    private const double LongSeconds = 150;

    [Fact]
    public void Measure()
    {
        _ = TestPaths.RequireSharedData();
        if (Environment.GetEnvironmentVariable("HAR_DRIFT_MEASURE") != "episodes")
        {
            Assert.Skip("the episode measurement writes a table for docs/drift-calibration.md; run it with HAR_DRIFT_MEASURE=episodes.");
        }

        var seed = int.TryParse(Environment.GetEnvironmentVariable("HAR_DRIFT_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 20261203;
        var draws = int.TryParse(Environment.GetEnvironmentVariable("HAR_DRIFT_DRAWS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var d) ? d : 2;
        var profile = HaptCalibration.Profile;
        var scorer = new DriftScorer(profile, new DriftScoringOptions());
        var window = profile.SegmentLength;
        var step = window / 2;
        var seconds = step / AlarmStudy.Rate;
        var test = HaptCalibration.AllSessions.Where(x => x.Split == "test").ToList();
        var sb = new StringBuilder(string.Create(CultureInfo.InvariantCulture,
            $"Seed {seed}, {draws} draw(s) per test session and fault (the alarm study's runs), scored every {seconds:0} s on the last {window / AlarmStudy.Rate:0} s. First episode after the onset; its length counts its raised scorings × {seconds:0} s.\n\n"));
        sb.AppendLine("| fault | detected | raised to the stream's end | lowered while the fault went on | of those, raised < 150 s | raised ≥ 150 s | scorings raised (median) | scorings raised by the lowered ones | causes named over the episode |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---|---|");
        for (var i = 0; i < AlarmStudy.Faults.Length; i++)
        {
            var kind = AlarmStudy.Faults[i];
            var runs = AlarmStudy.RunFault(scorer, kind, test, draws, seed + (1000 * (i + 1)), window, step);
            int detected = 0, toEnd = 0, lowered = 0, shortLowered = 0, longEpisodes = 0;
            var lengths = new List<int>();
            var loweredLengths = new List<int>();
            var causes = new SortedDictionary<string, int>(StringComparer.Ordinal);
            foreach (var run in runs)
            {
                var (episode, toTheEnd) = AlarmStudy.FirstEpisode(run);
                if (episode.Count == 0)
                {
                    continue;
                }

                detected++;
                var n = episode.Count;
                lengths.Add(n);
                var key = string.Join(" → ", episode.Select(a => a.Cause.ToString()).Distinct());
                causes[key] = causes.GetValueOrDefault(key) + 1;
                longEpisodes += n * seconds >= LongSeconds ? 1 : 0;
                if (toTheEnd)
                {
                    toEnd++;
                }
                else
                {
                    lowered++;
                    loweredLengths.Add(n);
                    shortLowered += n * seconds < LongSeconds ? 1 : 0;
                }
            }

            lengths.Sort();
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {kind.Name} | {detected} of {runs.Count} | {toEnd} | {lowered} | {shortLowered} | {longEpisodes} | {(lengths.Count > 0 ? lengths[lengths.Count / 2] : 0)} | {string.Join(", ", loweredLengths.Order())} | {string.Join("; ", causes.Select(c => $"{c.Key} {c.Value}"))} |"));
        }

        var text = sb.ToString();
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "episodes.md"), text);
        output.WriteLine(text);
        Assert.Contains("|", text, StringComparison.Ordinal);
    }
}
