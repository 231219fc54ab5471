using System.Buffers;

namespace Har.Drift;

/// <summary>The largest supported turn of the gravity direction between two still moments that the gyroscope did not see.</summary>
/// <param name="Pairs">Still-to-still pairs the gyroscope measured (almost) no turn over.</param>
/// <param name="Angle">The <see cref="ImuPhysics.FrameStepRank"/>-th largest angle (degrees) between such a pair's gravity directions, or NaN with fewer pairs.</param>
/// <param name="Seconds">Time between the two moments of the pair at that angle.</param>
/// <param name="GyroTurn">The gyroscope's turn (degrees) over that pair.</param>
/// <param name="Before">The accelerometer's mean at the first moment, turned by the gyroscope to the second (profile unit).</param>
/// <param name="After">The accelerometer's mean at the second moment.</param>
internal readonly record struct FrameStepStatistics(int Pairs, double Angle, double Seconds, double GyroTurn, double[] Before, double[] After);

/// <content>The frame step: a turn of the gravity direction between still moments that the gyroscope did not measure.</content>
internal static partial class ImuPhysics
{
    /// <summary>
    /// Largest turn (degrees) the gyroscope may have measured between the two still moments of a pair for the pair to
    /// count: a gyroscope error (a flipped axis, a gain, another stream rate) scales or mirrors the measured turn, so with
    /// at most 1° measured it cannot leave more than a few degrees unexplained; a frame that turned without the device
    /// turning leaves its whole turn.
    /// </summary>
    public const double FrameStepGyroTurnDegrees = 1.0;

    /// <summary>Shortest time between the two moments of a pair, in seconds (the smoothing windows do not overlap).</summary>
    public const double FrameStepMinSeconds = SmoothSeconds;

    /// <summary>
    /// Which largest angle over the window's pairs is its statistic: the third, so that one pair spoiled by a knock
    /// between two still moments does not count, while a step in the frame puts every pair that straddles it at the
    /// same angle.
    /// </summary>
    public const int FrameStepRank = 3;

    /// <summary>
    /// The frame step of a window: over every pair of still moments (per-axis deviation below
    /// <see cref="StillDeviation"/> of gravity over <see cref="SmoothSeconds"/>, magnitude within
    /// <see cref="SteadyNormTolerance"/> of it) between <see cref="FrameStepMinSeconds"/> and <see cref="MaxPairSeconds"/>
    /// apart over which the gyroscope measured at most <see cref="FrameStepGyroTurnDegrees"/>, the angle between the
    /// gravity direction of the first moment (turned by the gyroscope) and of the second. A healthy device's gravity does
    /// not turn unless the device does; a device whose frame changed between two still moments (re-mounted while the
    /// stream paused, another device on the same stream, axes remapped by software, or an accelerometer reading that
    /// stepped) shows the step in every pair that straddles it.
    /// </summary>
    public static FrameStepStatistics FrameStep(double[][] acc, double[][] gyro, double sampleRateHz, double gravity)
    {
        var n = CommonLength(acc, gyro);
        var k = Math.Max(2, (int)Math.Round(SmoothSeconds * sampleRateHz));
        var step = Math.Max(1, (int)Math.Round(StepSeconds * sampleRateHz));
        var minLag = Math.Max(step, (int)Math.Round(FrameStepMinSeconds * sampleRateHz));
        var maxLag = Math.Max(minLag, (int)Math.Round(MaxPairSeconds * sampleRateHz));
        var dt = 1.0 / sampleRateHz;
        var centre = k / 2;
        var moments = n - k + 1;
        var empty = new FrameStepStatistics(0, double.NaN, double.NaN, double.NaN, [], []);
        if (moments < 2)
        {
            return empty;
        }

        var mean = ArrayPool<double>.Shared.Rent(moments * 3);
        var norm = ArrayPool<double>.Shared.Rent(moments);
        var deviation = ArrayPool<double>.Shared.Rent(moments);
        var still = ArrayPool<bool>.Shared.Rent(moments);
        var prefix = ArrayPool<double>.Shared.Rent(4 * (n + 1));
        try
        {
            MovingMoments(acc, n, k, mean, norm, deviation);
            for (var m = 0; m < moments; m++)
            {
                still[m] = deviation[m] < StillDeviation * gravity && Math.Abs((norm[m] / gravity) - 1) < SteadyNormTolerance;
            }

            PrefixTurns(Identity, gyro, n, dt, prefix);
            // Angles are compared by their cosines (no arctangent per pair): a pair counts when the cosine of the
            // gyroscope's turn of the first direction is at least that of the limit, and the pairs whose directions
            // disagree most are those with the smallest cosine.
            var limit = Math.Cos(FrameStepGyroTurnDegrees * Math.PI / 180);

            // The FrameStepRank smallest cosines (largest angles), with the pair each came from (ascending).
            Span<double> top = stackalloc double[FrameStepRank];
            Span<int> from = stackalloc int[FrameStepRank];
            Span<int> to = stackalloc int[FrameStepRank];
            top.Fill(double.PositiveInfinity);
            var pairs = 0;
            for (var p = 0; p < moments; p += step)
            {
                if (!still[p])
                {
                    continue;
                }

                double ax = mean[p * 3], ay = mean[(p * 3) + 1], az = mean[(p * 3) + 2];
                var n2 = (ax * ax) + (ay * ay) + (az * az);
                for (var j = (minLag + step - 1) / step * step; j <= maxLag; j += step)
                {
                    var q = p + j;
                    if (q >= moments || !still[q])
                    {
                        continue;
                    }

                    var (tw, tx, ty, tz) = Between(prefix, p + centre, q + centre);
                    var (vx, vy, vz) = Apply(tw, tx, ty, tz, ax, ay, az);
                    if ((ax * vx) + (ay * vy) + (az * vz) < limit * n2)
                    {
                        continue;
                    }

                    pairs++;
                    var cos = ((vx * mean[q * 3]) + (vy * mean[(q * 3) + 1]) + (vz * mean[(q * 3) + 2])) / (norm[p] * norm[q]);
                    for (var r = 0; r < FrameStepRank; r++)
                    {
                        if (cos < top[r])
                        {
                            for (var s = FrameStepRank - 1; s > r; s--)
                            {
                                top[s] = top[s - 1];
                                from[s] = from[s - 1];
                                to[s] = to[s - 1];
                            }

                            top[r] = cos;
                            from[r] = p;
                            to[r] = q;
                            break;
                        }
                    }
                }
            }

            if (pairs < FrameStepRank)
            {
                return empty with { Pairs = pairs };
            }

            int first = from[FrameStepRank - 1], second = to[FrameStepRank - 1];
            var (w, x, y, z) = Between(prefix, first + centre, second + centre);
            double bx = mean[first * 3], by = mean[(first * 3) + 1], bz = mean[(first * 3) + 2];
            double cx = mean[second * 3], cy = mean[(second * 3) + 1], cz = mean[(second * 3) + 2];
            var (rx, ry, rz) = Apply(w, x, y, z, bx, by, bz);
            return new FrameStepStatistics(
                pairs,
                Angle(rx, ry, rz, cx, cy, cz) * 180 / Math.PI,
                (second - first) * dt,
                Angle(bx, by, bz, rx, ry, rz) * 180 / Math.PI,
                [rx, ry, rz],
                [cx, cy, cz]);
        }
        finally
        {
            ArrayPool<double>.Shared.Return(mean);
            ArrayPool<double>.Shared.Return(norm);
            ArrayPool<double>.Shared.Return(deviation);
            ArrayPool<bool>.Shared.Return(still);
            ArrayPool<double>.Shared.Return(prefix);
        }
    }

    /// <summary>
    /// Moving means of the accelerometer over <paramref name="k"/> samples: for every moment m (samples [m, m + k)) its
    /// mean vector (<paramref name="mean"/>, 3 values per moment), the mean's magnitude (<paramref name="norm"/>) and
    /// the largest per-axis standard deviation (<paramref name="deviation"/>). Every moment below n − k + 1 is written.
    /// </summary>
    private static void MovingMoments(double[][] acc, int n, int k, double[] mean, double[] norm, double[] deviation)
    {
        Span<double> sum = stackalloc double[3];
        Span<double> sumSq = stackalloc double[3];
        sum.Clear();
        sumSq.Clear();
        for (var i = 0; i < n; i++)
        {
            for (var a = 0; a < 3; a++)
            {
                var v = acc[a][i];
                sum[a] += v;
                sumSq[a] += v * v;
                if (i >= k)
                {
                    var old = acc[a][i - k];
                    sum[a] -= old;
                    sumSq[a] -= old * old;
                }
            }

            if (i < k - 1)
            {
                continue;
            }

            var m = i - k + 1;
            double worst = 0, norm2 = 0;
            for (var a = 0; a < 3; a++)
            {
                var mu = sum[a] / k;
                worst = Math.Max(worst, Math.Max(0, (sumSq[a] / k) - (mu * mu)));
                norm2 += mu * mu;
                mean[(m * 3) + a] = mu;
            }

            norm[m] = Math.Sqrt(norm2);
            deviation[m] = Math.Sqrt(worst);
        }
    }
}
