using System.Globalization;
using System.Text;
using Har.Testing;

namespace Har.Drift.Tests.Calibration;

/// <summary>
/// The separability measurement of the frame-step check (docs/drift-calibration.md), run with HAR_DRIFT_MEASURE=step:
/// per 1-minute window (every 30 s) of every HAPT recording, clean and with a fault that starts at a random frame, the
/// statistics of <see cref="ImuPhysics.FrameStep"/>, written as TSV to frame-step.tsv in the temp folder.
/// </summary>
public sealed class FrameStepMeasurement
{
    [Fact]
    public void Measure()
    {
        _ = TestPaths.RequireSharedData();
        if (Environment.GetEnvironmentVariable("HAR_DRIFT_MEASURE") != "step")
        {
            Assert.Skip("the frame-step measurement writes a TSV for docs/drift-calibration.md; run it with HAR_DRIFT_MEASURE=step.");
        }

        string[] faults = ["clean", "rotation 10", "rotation 20", "offset", "flip acc", "flip gyro"];
        var sb = new StringBuilder("split\tsession\tfault\tdraw\tonset\tstart\tpairs\tangle\tseconds\tgyroTurn\tbefore\tafter\n");
        var lockObj = new object();
        Parallel.ForEach(HaptCalibration.AllSessions, s =>
        {
            var local = new StringBuilder();
            var rng = new Random((s.Subject * 1000) + s.Session);
            foreach (var fault in faults)
            {
                for (var draw = 0; draw < (fault == "clean" ? 1 : 3); draw++)
                {
                    var x = (float[])s.Samples.Clone();
                    var frames = x.Length / 6;
                    var onset = fault == "clean" || frames < 215 * 50 ? -1 : 3000 + rng.Next(frames - 7500 - 3000);
                    if (fault != "clean" && onset < 0)
                    {
                        continue;
                    }

                    if (fault.StartsWith("rotation", StringComparison.Ordinal))
                    {
                        var deg = double.Parse(fault[9..], CultureInfo.InvariantCulture) * Math.PI / 180;
                        double kx = Synthetic.Gaussian(rng), ky = Synthetic.Gaussian(rng), kz = Synthetic.Gaussian(rng);
                        var nk = Math.Sqrt((kx * kx) + (ky * ky) + (kz * kz));
                        kx /= nk; ky /= nk; kz /= nk;
                        var (sn, cs) = Math.SinCos(deg);
                        double[] r =
                        [
                            cs + (kx * kx * (1 - cs)), (kx * ky * (1 - cs)) - (kz * sn), (kx * kz * (1 - cs)) + (ky * sn),
                            (ky * kx * (1 - cs)) + (kz * sn), cs + (ky * ky * (1 - cs)), (ky * kz * (1 - cs)) - (kx * sn),
                            (kz * kx * (1 - cs)) - (ky * sn), (kz * ky * (1 - cs)) + (kx * sn), cs + (kz * kz * (1 - cs)),
                        ];
                        for (var f = onset; f < frames; f++)
                        {
                            for (var b = 0; b < 6; b += 3)
                            {
                                double v0 = x[(f * 6) + b], v1 = x[(f * 6) + b + 1], v2 = x[(f * 6) + b + 2];
                                x[(f * 6) + b] = (float)((r[0] * v0) + (r[1] * v1) + (r[2] * v2));
                                x[(f * 6) + b + 1] = (float)((r[3] * v0) + (r[4] * v1) + (r[5] * v2));
                                x[(f * 6) + b + 2] = (float)((r[6] * v0) + (r[7] * v1) + (r[8] * v2));
                            }
                        }
                    }
                    else if (fault == "offset")
                    {
                        var k = rng.Next(3);
                        for (var f = onset; f < frames; f++) x[(f * 6) + k] += 0.1f;
                    }
                    else if (fault.StartsWith("flip", StringComparison.Ordinal))
                    {
                        var k = rng.Next(3) + (fault == "flip gyro" ? 3 : 0);
                        for (var f = onset; f < frames; f++) x[(f * 6) + k] = -x[(f * 6) + k];
                    }

                    for (var start = 0; start + 3000 <= frames; start += 1500)
                    {
                        if (onset >= 0 && (start + 3000 <= onset || start + 3000 > onset + 6000))
                        {
                            continue;
                        }

                        var series = new double[6][];
                        for (var c = 0; c < 6; c++)
                        {
                            series[c] = new double[3000];
                            for (var i = 0; i < 3000; i++) series[c][i] = x[((start + i) * 6) + c];
                        }

                        var st = ImuPhysics.FrameStep(series[..3], series[3..], 50, 1.0);
                        local.Append(CultureInfo.InvariantCulture, $"{s.Split}\t{s.Subject}/{s.Session}\t{fault}\t{draw}\t{onset}\t{start}\t{st.Pairs}\t{st.Angle:G5}\t{st.Seconds:G4}\t{st.GyroTurn:G4}\t{string.Join(',', st.Before.Select(v => v.ToString("G5", CultureInfo.InvariantCulture)))}\t{string.Join(',', st.After.Select(v => v.ToString("G5", CultureInfo.InvariantCulture)))}\n");
                    }
                }
            }

            lock (lockObj) sb.Append(local);
        });
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "frame-step.tsv"), sb.ToString());
    }

}
