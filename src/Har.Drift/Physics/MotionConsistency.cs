using System.Buffers;
using System.Globalization;

namespace Har.Drift;

/// <summary>
/// Gyroscope/accelerometer agreement during motion (walking, stairs), not only between still moments. In the device
/// frame the gravity direction g (the low-passed accelerometer, normalised) obeys dg/dt = −ω × g = g × ω. Over a window
/// the observed dg/dt is compared with g × (M ω) for a few remappings M: the identity (a healthy device), a flipped
/// gyroscope axis, a flipped accelerometer axis (a mirror: dg′/dt = g′ × (−F ω)), and swapped axes of either sensor.
/// The one with the smallest residual names the wiring; its least-squares scale s (observed ≈ s · predicted) is 1
/// on a healthy device, 0.8 for a 40 Hz stream fed as 50 Hz (the gravity direction changes 0.8× as fast per declared
/// second, the gyroscope's rate is right), 1/57.3 for a gyroscope in deg/s. A rotation about gravity (turning on the
/// spot) does not move g and says nothing, except through a wrong mapping, which makes it predict a gravity turn.
/// </summary>
internal static class MotionConsistency
{
    /// <summary>The remappings tried: 0 the identity, 1–3 a flipped gx/gy/gz, 4–6 a flipped ax/ay/az, 7–9 swapped gyroscope pairs (xy, xz, yz), 10–12 swapped accelerometer pairs.</summary>
    public const int Hypotheses = 13;

    /// <summary>Low-pass length (s): a moving mean of 1 s, whose zeros fall on the stride and step frequencies of gait.</summary>
    public const double LowPassSeconds = 1.0;

    /// <summary>Half the span (s) of the central difference of the gravity direction.</summary>
    public const double DifferenceSeconds = 0.25;

    /// <summary>Points are taken every this many seconds.</summary>
    public const double StepSeconds = 0.1;

    /// <summary>
    /// A remapping is reported when its residual is below this fraction of the identity's. On the 467 one-minute windows
    /// of the training recordings (every 30 s) the smallest ratio was 0.80; a flipped or swapped axis puts a median 0.24
    /// (in the windows with motion far below 0.1).
    /// </summary>
    public const double RemapRatio = 0.5;

    /// <summary>
    /// Upper bound of the identity's scale (observed over gyroscope-predicted gravity turn) in a window with at least
    /// <see cref="MinPredicted"/> of predicted turn: the training windows' largest was 1.037 (median 0.925: the 1-s low
    /// pass rounds the gravity turn off); a 40 Hz stream fed as 50 Hz reads 1.25× that (median 1.15).
    /// </summary>
    public const double ScaleUpper = 1.06;

    /// <summary>Typical scale of a healthy device (the training windows' median), the reference of the rate estimate.</summary>
    public const double HealthyScale = 0.925;

    /// <summary>Least Σ |g × ω|² (rad²/s², over the window's points) for the scale to be judged: 64 % of the training windows have it.</summary>
    public const double MinPredicted = 10;

    /// <summary>Least points for either test.</summary>
    public const int MinPoints = 100;

    private static readonly string[][] Implicated =
    [
        [], ["gx"], ["gy"], ["gz"], ["ax"], ["ay"], ["az"], ["gx", "gy"], ["gx", "gz"], ["gy", "gz"], ["ax", "ay"], ["ax", "az"], ["ay", "az"],
    ];

    /// <summary>
    /// Runs the motion consistency check on a window and appends its findings: a remapping (<see cref="SensorFindingKind.RotationMismatch"/>
    /// naming the flipped axis or the swapped pair) and a stream rate (<see cref="SensorFindingKind.SampleRate"/> on every
    /// channel); or a note when the window had too little motion.
    /// </summary>
    public static void Check(IReadOnlyList<string> channels, double[][] series, int[] acc, int[] gyro, double sampleRateHz, double gravity, List<SensorFinding> findings, List<string> notes)
    {
        if (acc.Length != 3 || gyro.Length != 3)
        {
            return;
        }

        // The whole window, then its second half alone (what is new since the previous scoring of a monitor that scores
        // every half window): a fault that began inside the window outweighs the healthy part there first.
        var n = series.Length == 0 ? 0 : series.Min(s => s.Length);
        var whole = Compute(series, acc, gyro, sampleRateHz, gravity);
        if (whole.Points < MinPoints || whole.Predicted[0] <= 0)
        {
            notes.Add("too little gravity-direction data in this window: the motion consistency check was not possible");
            return;
        }

        if (Judge(channels, whole, acc, gyro, sampleRateHz, ScaleUpper, MinPredicted, string.Empty, findings))
        {
            return;
        }

        var recent = Compute(series, acc, gyro, sampleRateHz, gravity, n / 2);
        if (recent.Points >= MinPoints / 2 && Judge(channels, recent, acc, gyro, sampleRateHz, RecentScaleUpper, MinPredicted / 2, " over the second half of the window", findings))
        {
            return;
        }

        if (whole.Predicted[0] < MinPredicted)
        {
            notes.Add("too little rotation in this window: the motion consistency (sample-rate) check was not possible");
        }
    }

    /// <summary>
    /// Upper bound of the scale over the second half of a window (with half of <see cref="MinPredicted"/>): the training
    /// windows' largest was 1.068 (median 0.938); a 40 Hz stream reads a median 1.17.
    /// </summary>
    public const double RecentScaleUpper = 1.08;

    private static bool Judge(IReadOnlyList<string> channels, Fit fit, int[] acc, int[] gyro, double sampleRateHz, double scaleUpper, double minPredicted, string span, List<SensorFinding> findings)
    {
        var inv = CultureInfo.InvariantCulture;
        var best = fit.Best;
        var ratio = fit.Ratio;
        if (best != 0 && ratio < RemapRatio)
        {
            // Names by the profile's channel names: acc / gyro axes in their order.
            var names = Implicated[best].Select(n => channels[n[0] == 'a' ? acc[n[1] - 'x'] : gyro[n[1] - 'x']]).ToArray();
            var what = names.Length == 1 ? $"a sign flip of {names[0]}" : $"swapped axes {names[0]} ↔ {names[1]}";
            findings.Add(new SensorFinding(SensorFindingKind.RotationMismatch, null, ratio, RemapRatio, string.Create(inv,
                $"During motion{span} the gravity direction turns as the gyroscope predicts only under {what}: that remapping leaves {ratio:P0} of the residual of the sensors as wired (healthy devices ≥ {RemapRatio:P0}; {fit.Points} points)."),
                fit.Points, names));
            return true;
        }

        var scale = fit.Scale[0];
        if (best == 0 && fit.Predicted[0] >= minPredicted && scale > scaleUpper)
        {
            var factor = scale / HealthyScale;
            findings.Add(new SensorFinding(SensorFindingKind.SampleRate, null, scale, scaleUpper, string.Create(inv,
                $"During motion{span} the gravity direction turns {factor:F2}× as fast as the gyroscope predicts (scale {scale:F3}, healthy ≤ {scaleUpper:F2}) while the axes agree: the samples arrive at about {sampleRateHz / factor:F0} Hz, not the declared {sampleRateHz:F0} Hz."),
                fit.Points, [.. channels]) { Ideal = HealthyScale });
            return true;
        }

        return false;
    }

    private static readonly int[][] Perm =
    [
        [0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2],
        [1, 0, 2], [2, 1, 0], [0, 2, 1], [1, 0, 2], [2, 1, 0], [0, 2, 1],
    ];

    private static readonly double[][] Sign =
    [
        [1, 1, 1], [-1, 1, 1], [1, -1, 1], [1, 1, -1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1],
        [1, 1, 1], [1, 1, 1], [1, 1, 1], [-1, -1, -1], [-1, -1, -1], [-1, -1, -1],
    ];

    /// <summary>The fit of one window.</summary>
    /// <param name="Points">Points (every <see cref="StepSeconds"/>) with a usable gravity estimate.</param>
    /// <param name="Observed">Σ |dg/dt|² over the points.</param>
    /// <param name="Rss">Per remapping, Σ |dg/dt − s·g × (M ω)|² at its own least-squares scale s.</param>
    /// <param name="Scale">Per remapping, the least-squares scale s of dg/dt ≈ s · g × (M ω).</param>
    /// <param name="Predicted">Per remapping, Σ |g × (M ω)|².</param>
    public readonly record struct Fit(int Points, double Observed, double[] Rss, double[] Scale, double[] Predicted)
    {
        /// <summary>Gets the remapping with the smallest residual at its own scale.</summary>
        public int Best
        {
            get
            {
                var best = 0;
                for (var h = 1; h < Hypotheses; h++)
                {
                    if (Rss[h] < Rss[best])
                    {
                        best = h;
                    }
                }

                return best;
            }
        }

        /// <summary>Gets the best remapping's residual over the identity's (1 healthy, small for a remapped axis; NaN without signal).</summary>
        public double Ratio => Rss[0] > 0 ? Rss[Best] / Rss[0] : double.NaN;
    }

    /// <summary>Computes the fit of a window (acc in the profile's unit, gravity its magnitude; gyroscope in rad/s).</summary>
    public static Fit Compute(double[][] series, int[] acc, int[] gyro, double sampleRateHz, double gravity, int from = 0)
    {
        var n = int.MaxValue;
        foreach (var s in series)
        {
            n = Math.Min(n, s.Length);
        }

        var rss = new double[Hypotheses];
        var scale = new double[Hypotheses];
        var pred = new double[Hypotheses];
        var cross = new double[Hypotheses];
        var len = Math.Max(3, (int)Math.Round(LowPassSeconds * sampleRateHz));
        var d = Math.Max(1, (int)Math.Round(DifferenceSeconds * sampleRateHz));
        var step = Math.Max(1, (int)Math.Round(StepSeconds * sampleRateHz));
        if (acc.Length != 3 || gyro.Length != 3 || n < len + (2 * d) + 1)
        {
            return new Fit(0, 0, rss, scale, pred);
        }

        var pool = ArrayPool<double>.Shared;
        var lp = new double[6][];
        for (var c = 0; c < 6; c++)
        {
            lp[c] = pool.Rent(n);
            var x = series[c < 3 ? acc[c] : gyro[c - 3]];
            double sum = 0;
            for (var i = 0; i < n; i++)
            {
                sum += x[i];
                if (i >= len)
                {
                    sum -= x[i - len];
                }

                // Centred moving mean: entry i - len/2 holds the mean of [i - len + 1, i].
                if (i >= len - 1)
                {
                    lp[c][i - (len / 2)] = sum / len;
                }
            }
        }

        var points = 0;
        double observed = 0;
        Span<double> g = stackalloc double[3];
        Span<double> ga = stackalloc double[3];
        Span<double> gb = stackalloc double[3];
        Span<double> o = stackalloc double[3];
        Span<double> w = stackalloc double[3];
        Span<double> mw = stackalloc double[3];
        var dt = 2.0 * d / sampleRateHz;
        var first = Math.Max(from, 0) + (len / 2) + d;
        var last = n - 1 - (len / 2) - d;
        Span<double> p = stackalloc double[3];
        for (var i = first; i <= last; i += step)
        {
            if (!Direction(lp, i, gravity, g) || !Direction(lp, i - d, gravity, ga) || !Direction(lp, i + d, gravity, gb))
            {
                continue;
            }

            for (var k = 0; k < 3; k++)
            {
                o[k] = (gb[k] - ga[k]) / dt;
                w[k] = lp[3 + k][i];
            }

            points++;
            observed += (o[0] * o[0]) + (o[1] * o[1]) + (o[2] * o[2]);
            for (var h = 0; h < Hypotheses; h++)
            {
                for (var k = 0; k < 3; k++)
                {
                    mw[k] = Sign[h][k] * w[Perm[h][k]];
                }

                p[0] = (g[1] * mw[2]) - (g[2] * mw[1]);
                p[1] = (g[2] * mw[0]) - (g[0] * mw[2]);
                p[2] = (g[0] * mw[1]) - (g[1] * mw[0]);
                pred[h] += (p[0] * p[0]) + (p[1] * p[1]) + (p[2] * p[2]);
                cross[h] += (o[0] * p[0]) + (o[1] * p[1]) + (o[2] * p[2]);
            }
        }

        foreach (var a in lp)
        {
            pool.Return(a);
        }

        for (var h = 0; h < Hypotheses; h++)
        {
            scale[h] = pred[h] > 0 ? cross[h] / pred[h] : double.NaN;
            // Σ|o − s p|² at the least-squares s = Σ o·p / Σ|p|², for s > 0 only: a negative scale would make a
            // flipped accelerometer axis (M = −F) and the same flipped gyroscope axis (M = F) the same hypothesis.
            rss[h] = pred[h] > 0 && cross[h] > 0 ? observed - (cross[h] * cross[h] / pred[h]) : observed;
        }

        return new Fit(points, observed, rss, scale, pred);
    }

    /// <summary>The unit direction of the low-passed accelerometer at <paramref name="i"/>, when its magnitude is within 30 % of gravity.</summary>
    private static bool Direction(double[][] lp, int i, double gravity, Span<double> u)
    {
        double x = lp[0][i], y = lp[1][i], z = lp[2][i];
        var norm = Math.Sqrt((x * x) + (y * y) + (z * z));
        if (!(norm > 0.7 * gravity && norm < 1.3 * gravity))
        {
            return false;
        }

        u[0] = x / norm;
        u[1] = y / norm;
        u[2] = z / norm;
        return true;
    }
}
