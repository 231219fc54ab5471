using System.Globalization;
using System.Text;
using Har.Testing;

namespace Har.Drift.Tests.Calibration;

/// <summary>
/// The separability measurement of the motion consistency check (docs/drift-calibration.md), run with
/// HAR_DRIFT_MEASURE=motion: per 1-minute window (every 30 s) of every HAPT recording, clean and with a fault applied to
/// the whole recording, the fit of <see cref="MotionConsistency"/>, written as TSV to motion-consistency.tsv in the temp folder.
/// </summary>
public sealed class MotionConsistencyMeasurement
{
    [Fact]
    public void Measure()
    {
        _ = TestPaths.RequireSharedData();
        if (Environment.GetEnvironmentVariable("HAR_DRIFT_MEASURE") != "motion")
        {
            Assert.Skip("the motion-consistency measurement writes a TSV for docs/drift-calibration.md; run it with HAR_DRIFT_MEASURE=motion.");
        }

        var from = int.TryParse(Environment.GetEnvironmentVariable("HAR_DRIFT_MEASURE_FROM"), CultureInfo.InvariantCulture, out var fr) ? fr : 0;
        string[] faults = ["clean", "flip ax", "flip ay", "flip az", "flip gx", "flip gy", "flip gz", "40Hz", "swap gxgy", "swap axay"];
        var sb = new StringBuilder("split\tsession\tfault\tstart\tpoints\tobserved\tbest\tratio\tscale0\tpred0\tscaleBest\trss0\n");
        var lockObj = new object();
        Parallel.ForEach(HaptCalibration.AllSessions, s =>
        {
            var local = new StringBuilder();
            foreach (var fault in faults)
            {
                var x = (float[])s.Samples.Clone();
                var frames = x.Length / 6;
                if (fault.StartsWith("flip", StringComparison.Ordinal))
                {
                    var k = Array.IndexOf(HaptCalibration.ChannelNames, fault[5..]);
                    for (var f = 0; f < frames; f++) x[(f * 6) + k] = -x[(f * 6) + k];
                }
                else if (fault.StartsWith("swap", StringComparison.Ordinal))
                {
                    var a = fault[5] == 'g' ? 3 : 0;
                    for (var f = 0; f < frames; f++) (x[(f * 6) + a], x[(f * 6) + a + 1]) = (x[(f * 6) + a + 1], x[(f * 6) + a]);
                }
                else if (fault == "40Hz")
                {
                    var after = (int)Math.Floor((frames - 1) * 40 / 50.0);
                    var r = new float[after * 6];
                    for (var j = 0; j < after; j++)
                    {
                        var t = j * 50 / 40.0;
                        var i = (int)t;
                        var w = (float)(t - i);
                        for (var c = 0; c < 6; c++) r[(j * 6) + c] = ((1 - w) * x[(i * 6) + c]) + (w * x[((i + 1) * 6) + c]);
                    }

                    x = r;
                    frames = after;
                }

                for (var start = 0; start + 3000 <= frames; start += 1500)
                {
                    var series = new double[6][];
                    for (var c = 0; c < 6; c++)
                    {
                        series[c] = new double[3000];
                        for (var i = 0; i < 3000; i++) series[c][i] = x[((start + i) * 6) + c];
                    }

                    var fit = MotionConsistency.Compute(series, [0, 1, 2], [3, 4, 5], 50, 1.0, from);
                    local.Append(CultureInfo.InvariantCulture, $"{s.Split}\t{s.Subject}/{s.Session}\t{fault}\t{start}\t{fit.Points}\t{fit.Observed:G5}\t{fit.Best}\t{fit.Ratio:G5}\t{fit.Scale[0]:G5}\t{fit.Predicted[0]:G5}\t{fit.Scale[fit.Best]:G5}\t{fit.Rss[0]:G5}\n");
                }
            }

            lock (lockObj) sb.Append(local);
        });
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "motion-consistency.tsv"), sb.ToString());
    }
}
