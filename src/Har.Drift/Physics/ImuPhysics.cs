namespace Har.Drift;

/// <summary>
/// Physics-based statistics of one window of a 6-axis IMU (accelerometer + gyroscope): invariants that hold for
/// every person and every activity, so that they separate sensor faults from natural differences between people.
/// </summary>
/// <remarks>
/// <para><b>Gravity magnitude.</b> Averaged over a few seconds the accelerometer measures gravity (the body's
/// linear acceleration averages out), so the norm of a 2-second block mean is the reference device's gravity
/// magnitude whatever the posture. The reference device's own calibration (a small offset vector b₀ and radius r₀)
/// is fitted once on the training blocks (a sphere fit over all their orientations); a window's residual per block
/// is r = |v − b₀| / r₀ − 1. An offset δ on the accelerometer moves r by δ·u (u the gravity direction) to first
/// order: offsets along gravity are seen at once, offsets across it only in blocks whose gravity has a component
/// along the offset axis.</para>
/// <para><b>Rotation consistency.</b> Between two quasi-static moments (accelerometer near rest over 0.5 s: per-axis deviation below 0.12 g, magnitude within 20 % of gravity), the
/// gravity direction measured by the accelerometer must have turned exactly as the integrated gyroscope rate says
/// (a vector fixed in the world obeys du/dt = −ω × u in the sensor frame). For each such pair at least 30° apart
/// and at most 6 s apart, the gyroscope-predicted turn angle divided by the measured one is a gain (1 for a healthy
/// device, 1.2 for a gyroscope reading 20 % high) and the angle between the predicted and measured direction,
/// relative to the turn, is a residual (near 0 when the axes agree; large when two axes are swapped on either
/// sensor). Both are robust (medians over pairs) and need no model of the person.</para>
/// </remarks>
internal static class ImuPhysics
{
    /// <summary>Block length for the gravity magnitude, in seconds.</summary>
    public const double BlockSeconds = 2.0;

    /// <summary>A block counts towards an axis when its gravity direction has at least this component along it.</summary>
    public const double AxisCut = 0.5;

    /// <summary>Blocks needed before an axis statistic is computed.</summary>
    public const int MinAxisBlocks = 3;

    /// <summary>Smoothing window of the accelerometer for the gravity direction, in seconds.</summary>
    public const double SmoothSeconds = 0.5;

    /// <summary>Largest per-axis standard deviation (relative to the gravity magnitude) of a quasi-static moment.</summary>
    public const double SteadyDeviation = 0.12;

    /// <summary>Largest relative deviation of |a| from the gravity magnitude at a quasi-static moment.</summary>
    public const double SteadyNormTolerance = 0.2;

    /// <summary>Spacing of the moments considered, in seconds.</summary>
    public const double StepSeconds = 0.2;

    /// <summary>Longest time between the two moments of a pair, in seconds (limits gyroscope integration error).</summary>
    public const double MaxPairSeconds = 6.0;

    /// <summary>Smallest measured turn of the gravity direction for a pair to count, in degrees.</summary>
    public const double MinTurnDegrees = 30.0;

    /// <summary>Pairs needed before the rotation statistics are computed.</summary>
    public const int MinPairs = 3;

    /// <summary>Per-axis (x, y, z) 2-second block means of the accelerometer.</summary>
    public static double[][] BlockMeans(ReadOnlySpan<double> x, ReadOnlySpan<double> y, ReadOnlySpan<double> z, double sampleRateHz)
    {
        var n = Math.Min(x.Length, Math.Min(y.Length, z.Length));
        var len = Math.Max(1, (int)Math.Round(BlockSeconds * sampleRateHz));
        var blocks = new double[n / len][];
        for (var b = 0; b < blocks.Length; b++)
        {
            double sx = 0, sy = 0, sz = 0;
            for (var i = b * len; i < (b + 1) * len; i++)
            {
                sx += x[i];
                sy += y[i];
                sz += z[i];
            }

            blocks[b] = [sx / len, sy / len, sz / len];
        }

        return blocks;
    }

    /// <summary>
    /// Least-squares sphere through block means: |v − b|² = r², solved linearly as |v|² = 2 v·b + (r² − |b|²).
    /// Returns null when the blocks do not span enough orientations to determine it.
    /// </summary>
    public static (double[] Offset, double Radius)? SphereFit(IEnumerable<double[]> blocks)
    {
        var ata = new double[4, 4];
        var atb = new double[4];
        var count = 0;
        Span<double> row = stackalloc double[4];
        foreach (var v in blocks)
        {
            row[0] = 2 * v[0];
            row[1] = 2 * v[1];
            row[2] = 2 * v[2];
            row[3] = 1;
            var target = (v[0] * v[0]) + (v[1] * v[1]) + (v[2] * v[2]);
            for (var i = 0; i < 4; i++)
            {
                atb[i] += row[i] * target;
                for (var j = 0; j < 4; j++)
                {
                    ata[i, j] += row[i] * row[j];
                }
            }

            count++;
        }

        if (count < 4 || Solve(ata, atb) is not { } th)
        {
            return null;
        }

        var r2 = th[3] + (th[0] * th[0]) + (th[1] * th[1]) + (th[2] * th[2]);
        return r2 > 0 ? ([th[0], th[1], th[2]], Math.Sqrt(r2)) : null;
    }

    /// <summary>The gravity-magnitude statistics of a window's blocks against the reference device's sphere.</summary>
    /// <returns>Median residual over all blocks, per-axis medians of r·sign(u_k) over blocks with |u_k| ≥ <see cref="AxisCut"/> (NaN when fewer than <see cref="MinAxisBlocks"/>), blocks per axis, and the mean gravity direction.</returns>
    public static GravityStatistics Gravity(double[][] blocks, ReadOnlySpan<double> offset, double radius)
    {
        var residuals = new double[blocks.Length];
        var signed = new List<double>[] { [], [], [] };
        double mx = 0, my = 0, mz = 0;
        for (var b = 0; b < blocks.Length; b++)
        {
            var dx = blocks[b][0] - offset[0];
            var dy = blocks[b][1] - offset[1];
            var dz = blocks[b][2] - offset[2];
            var norm = Math.Sqrt((dx * dx) + (dy * dy) + (dz * dz));
            var r = (norm / radius) - 1;
            residuals[b] = r;
            if (norm <= 0)
            {
                continue;
            }

            ReadOnlySpan<double> u = [dx / norm, dy / norm, dz / norm];
            mx += u[0];
            my += u[1];
            mz += u[2];
            for (var k = 0; k < 3; k++)
            {
                if (Math.Abs(u[k]) >= AxisCut)
                {
                    signed[k].Add(r * Math.Sign(u[k]));
                }
            }
        }

        var axes = new double[3];
        var counts = new int[3];
        for (var k = 0; k < 3; k++)
        {
            counts[k] = signed[k].Count;
            axes[k] = counts[k] >= MinAxisBlocks ? Median([.. signed[k]]) : double.NaN;
        }

        var m = Math.Sqrt((mx * mx) + (my * my) + (mz * mz));
        double[] direction = m > 0 ? [mx / m, my / m, mz / m] : [0, 0, 0];
        return new GravityStatistics(blocks.Length == 0 ? double.NaN : Median(residuals), axes, blocks.Length, counts, direction);
    }

    /// <summary>
    /// Rotation-consistency statistics: median gain (gyroscope turn / accelerometer turn) and median relative
    /// residual angle over pairs of quasi-static moments, with the gyroscope rate mapped by <paramref name="gyroMap"/>
    /// (row-major 3×3; identity for the data as recorded).
    /// </summary>
    public static RotationStatistics Rotation(double[][] acc, double[][] gyro, double sampleRateHz, double gravity, ReadOnlySpan<double> gyroMap)
    {
        var n = Math.Min(Math.Min(acc[0].Length, acc[1].Length), Math.Min(acc[2].Length, Math.Min(gyro[0].Length, Math.Min(gyro[1].Length, gyro[2].Length))));
        var k = Math.Max(2, (int)Math.Round(SmoothSeconds * sampleRateHz));
        var step = Math.Max(1, (int)Math.Round(StepSeconds * sampleRateHz));
        var maxLag = Math.Max(step, (int)Math.Round(MaxPairSeconds * sampleRateHz));
        var dt = 1.0 / sampleRateHz;
        var centre = k / 2;
        var moments = n - k + 1;
        if (moments < 2)
        {
            return RotationStatistics.Empty;
        }

        // Smoothed direction and steadiness of every moment (window [i, i + k)).
        var u = new double[moments * 3];
        var steady = new bool[moments];
        var sum = new double[3];
        var sumSq = new double[3];
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
                var mean = sum[a] / k;
                worst = Math.Max(worst, Math.Max(0, (sumSq[a] / k) - (mean * mean)));
                norm2 += mean * mean;
                u[(m * 3) + a] = mean;
            }

            var norm = Math.Sqrt(norm2);
            steady[m] = Math.Sqrt(worst) < SteadyDeviation * gravity && Math.Abs((norm / gravity) - 1) < SteadyNormTolerance;
            if (norm > 0)
            {
                for (var a = 0; a < 3; a++)
                {
                    u[(m * 3) + a] /= norm;
                }
            }
        }

        var minTurn = MinTurnDegrees * Math.PI / 180;
        var gains = new List<double>();
        var residuals = new List<double>();
        Span<double> w = stackalloc double[3];
        for (var p = 0; p < moments; p += step)
        {
            if (!steady[p])
            {
                continue;
            }

            double vx = u[p * 3], vy = u[(p * 3) + 1], vz = u[(p * 3) + 2];
            for (var j = 1; j <= maxLag; j++)
            {
                var t = p + centre + j - 1;
                if (t >= n)
                {
                    break;
                }

                for (var r = 0; r < 3; r++)
                {
                    w[r] = (gyroMap[r * 3] * gyro[0][t]) + (gyroMap[(r * 3) + 1] * gyro[1][t]) + (gyroMap[(r * 3) + 2] * gyro[2][t]);
                }

                Rotate(ref vx, ref vy, ref vz, w, dt);
                if (j % step != 0)
                {
                    continue;
                }

                var q = p + j;
                if (q >= moments || !steady[q])
                {
                    continue;
                }

                double u1x = u[p * 3], u1y = u[(p * 3) + 1], u1z = u[(p * 3) + 2];
                double u2x = u[q * 3], u2y = u[(q * 3) + 1], u2z = u[(q * 3) + 2];
                var measured = Angle(u1x, u1y, u1z, u2x, u2y, u2z);
                if (measured < minTurn)
                {
                    continue;
                }

                gains.Add(Angle(u1x, u1y, u1z, vx, vy, vz) / measured);
                residuals.Add(Angle(vx, vy, vz, u2x, u2y, u2z) / measured);
            }
        }

        return gains.Count < MinPairs
            ? RotationStatistics.Empty with { Pairs = gains.Count }
            : new RotationStatistics(Median([.. gains]), Median([.. residuals]), gains.Count);
    }

    /// <summary>The identity gyroscope map.</summary>
    public static ReadOnlySpan<double> Identity => [1, 0, 0, 0, 1, 0, 0, 0, 1];

    public static double Median(double[] values)
    {
        Array.Sort(values);
        var n = values.Length;
        return n == 0 ? double.NaN : n % 2 == 1 ? values[n / 2] : 0.5 * (values[(n / 2) - 1] + values[n / 2]);
    }

    /// <summary>Rotates v by exp(−[ω]× dt): a world-fixed vector seen from a sensor turning at ω.</summary>
    private static void Rotate(ref double vx, ref double vy, ref double vz, ReadOnlySpan<double> w, double dt)
    {
        var rate = Math.Sqrt((w[0] * w[0]) + (w[1] * w[1]) + (w[2] * w[2]));
        var theta = rate * dt;
        if (theta < 1e-12)
        {
            return;
        }

        double kx = -w[0] / rate, ky = -w[1] / rate, kz = -w[2] / rate;
        var c = Math.Cos(theta);
        var s = Math.Sin(theta);
        var dot = (kx * vx) + (ky * vy) + (kz * vz);
        var cx = (ky * vz) - (kz * vy);
        var cy = (kz * vx) - (kx * vz);
        var cz = (kx * vy) - (ky * vx);
        var nx = (vx * c) + (cx * s) + (kx * dot * (1 - c));
        var ny = (vy * c) + (cy * s) + (ky * dot * (1 - c));
        var nz = (vz * c) + (cz * s) + (kz * dot * (1 - c));
        vx = nx;
        vy = ny;
        vz = nz;
    }

    private static double Angle(double ax, double ay, double az, double bx, double by, double bz)
    {
        // atan2(|a × b|, a·b) is accurate for small and large angles alike.
        var cx = (ay * bz) - (az * by);
        var cy = (az * bx) - (ax * bz);
        var cz = (ax * by) - (ay * bx);
        return Math.Atan2(Math.Sqrt((cx * cx) + (cy * cy) + (cz * cz)), (ax * bx) + (ay * by) + (az * bz));
    }

    private static double[]? Solve(double[,] a, double[] b)
    {
        var n = b.Length;
        var m = (double[,])a.Clone();
        var x = (double[])b.Clone();
        for (var col = 0; col < n; col++)
        {
            var pivot = col;
            for (var r = col + 1; r < n; r++)
            {
                if (Math.Abs(m[r, col]) > Math.Abs(m[pivot, col]))
                {
                    pivot = r;
                }
            }

            if (Math.Abs(m[pivot, col]) < 1e-12)
            {
                return null;
            }

            if (pivot != col)
            {
                for (var c = 0; c < n; c++)
                {
                    (m[col, c], m[pivot, c]) = (m[pivot, c], m[col, c]);
                }

                (x[col], x[pivot]) = (x[pivot], x[col]);
            }

            for (var r = col + 1; r < n; r++)
            {
                var f = m[r, col] / m[col, col];
                for (var c = col; c < n; c++)
                {
                    m[r, c] -= f * m[col, c];
                }

                x[r] -= f * x[col];
            }
        }

        for (var r = n - 1; r >= 0; r--)
        {
            var s = x[r];
            for (var c = r + 1; c < n; c++)
            {
                s -= m[r, c] * x[c];
            }

            x[r] = s / m[r, r];
        }

        return x;
    }
}

/// <summary>Gravity-magnitude statistics of one window.</summary>
internal readonly record struct GravityStatistics(double MedianResidual, double[] AxisResidual, int Blocks, int[] AxisBlocks, double[] Direction);

/// <summary>Rotation-consistency statistics of one window (NaN when fewer than <see cref="ImuPhysics.MinPairs"/> pairs).</summary>
internal readonly record struct RotationStatistics(double Gain, double Residual, int Pairs)
{
    public static RotationStatistics Empty => new(double.NaN, double.NaN, 0);

    public bool Testable => !double.IsNaN(Gain);
}
