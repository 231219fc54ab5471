using System.Buffers;

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
internal static partial class ImuPhysics
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

    /// <summary>Largest per-axis standard deviation within a 2-second block, relative to the block mean's norm, for the block to count as still.</summary>
    public const double StillDeviation = 0.02;

    /// <summary>
    /// The still 2-second blocks of a window (per-axis standard deviation below <see cref="StillDeviation"/> of the
    /// mean's norm): the moments when the accelerometer reads gravity alone, so that |v − b₀| = r₀ holds exactly for a
    /// healthy device.
    /// </summary>
    public static List<StillBlock> StillBlocks(ReadOnlySpan<double> x, ReadOnlySpan<double> y, ReadOnlySpan<double> z, double sampleRateHz)
    {
        var n = Math.Min(x.Length, Math.Min(y.Length, z.Length));
        var len = Math.Max(2, (int)Math.Round(BlockSeconds * sampleRateHz));
        var result = new List<StillBlock>();
        for (var b = 0; (b + 1) * len <= n; b++)
        {
            double sx = 0, sy = 0, sz = 0, qx = 0, qy = 0, qz = 0;
            for (var i = b * len; i < (b + 1) * len; i++)
            {
                sx += x[i];
                sy += y[i];
                sz += z[i];
                qx += x[i] * x[i];
                qy += y[i] * y[i];
                qz += z[i] * z[i];
            }

            double mx = sx / len, my = sy / len, mz = sz / len;
            var norm = Math.Sqrt((mx * mx) + (my * my) + (mz * mz));
            var worst = Math.Max(Math.Max((qx / len) - (mx * mx), (qy / len) - (my * my)), (qz / len) - (mz * mz));
            if (norm > 0 && Math.Sqrt(Math.Max(0, worst)) < StillDeviation * norm)
            {
                result.Add(new StillBlock(b * len, [mx, my, mz]));
            }
        }

        return result;
    }

    /// <summary>
    /// Per accelerometer axis, the median signed gravity-magnitude residual (|v − b₀| / r₀ − 1)·sign(u_k) over the
    /// still blocks whose gravity direction u has |u_k| ≥ <see cref="AxisCut"/> (NaN below <see cref="MinAxisBlocks"/>
    /// blocks), and the number of such blocks. An offset δ on axis k moves it by about δ·|u_k| ≥ δ/2.
    /// </summary>
    public static (double[] Residual, int[] Blocks) AxisResiduals(IEnumerable<double[]> blocks, ReadOnlySpan<double> offset, double radius)
    {
        var signed = new List<double>[] { [], [], [] };
        foreach (var v in blocks)
        {
            var dx = v[0] - offset[0];
            var dy = v[1] - offset[1];
            var dz = v[2] - offset[2];
            var norm = Math.Sqrt((dx * dx) + (dy * dy) + (dz * dz));
            if (norm <= 0)
            {
                continue;
            }

            var r = (norm / radius) - 1;
            ReadOnlySpan<double> u = [dx / norm, dy / norm, dz / norm];
            for (var k = 0; k < 3; k++)
            {
                if (Math.Abs(u[k]) >= AxisCut)
                {
                    signed[k].Add(r * Math.Sign(u[k]));
                }
            }
        }

        var residual = new double[3];
        var counts = new int[3];
        for (var k = 0; k < 3; k++)
        {
            counts[k] = signed[k].Count;
            residual[k] = counts[k] >= MinAxisBlocks ? Median([.. signed[k]]) : double.NaN;
        }

        return (residual, counts);
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
        var pairs = Pairs(acc, gyro, sampleRateHz, gravity, [gyroMap.ToArray()]);
        return Summarize(pairs, 0);
    }

    /// <summary>
    /// The order statistic that bounds a median at 95 %, one-sided, whatever the distribution: of n sorted values the
    /// (k+1)-th smallest is a lower bound and the (k+1)-th largest an upper bound, with k the largest index for which
    /// P(Binomial(n, ½) ≤ k) ≤ 0.05 (the median lies below the first with probability at most 0.05). −1 when n is too small
    /// for any (n &lt; 5).
    /// </summary>
    internal static int MedianBound(int n)
    {
        // Scorings ask for the same few hundred n over and over (every gyroscope map, twice per window): each is
        // computed once. A racing first computation writes the same value.
        if (n < MedianBounds.Length)
        {
            var known = Volatile.Read(ref MedianBounds[n]);
            if (known != int.MinValue)
            {
                return known;
            }

            var k = ComputeMedianBound(n);
            Volatile.Write(ref MedianBounds[n], k);
            return k;
        }

        return ComputeMedianBound(n);
    }

    /// <summary><see cref="MedianBound"/> per n below 4,096 once computed (int.MinValue before).</summary>
    private static readonly int[] MedianBounds = Enumerable.Repeat(int.MinValue, 4096).ToArray();

    private static int ComputeMedianBound(int n)
    {
        const double Alpha = 0.05;
        var logPmf = n * Math.Log(0.5); // in logs: 0.5^n underflows past n ≈ 1,074
        var cdf = Math.Exp(logPmf);
        var k = -1;
        for (var j = 0; j < n && cdf <= Alpha; j++)
        {
            k = j;
            logPmf += Math.Log((double)(n - j) / (j + 1));
            cdf += Math.Exp(logPmf);
        }

        return k;
    }

    /// <summary>The values of a sorted span after its leading NaNs.</summary>
    private static Span<double> Finite(Span<double> sorted)
    {
        var i = 0;
        while (i < sorted.Length && double.IsNaN(sorted[i]))
        {
            i++;
        }

        return sorted[i..];
    }

    /// <summary>Median gain and misfit (under map <paramref name="map"/>) of pairs; empty below <see cref="MinPairs"/>.</summary>
    public static RotationStatistics Summarize(IReadOnlyList<RotationPair> pairs, int map)
    {
        if (pairs.Count < MinPairs)
        {
            return RotationStatistics.Empty with { Pairs = pairs.Count };
        }

        var buffer = ArrayPool<double>.Shared.Rent(2 * pairs.Count);
        try
        {
            var gains = buffer.AsSpan(0, pairs.Count);
            var misfits = buffer.AsSpan(pairs.Count, pairs.Count);
            for (var i = 0; i < pairs.Count; i++)
            {
                gains[i] = pairs[i].Gains[map];
                misfits[i] = pairs[i].Misfits[map];
            }

            gains.Sort(); // NaN first
            misfits.Sort();
            var g = Finite(gains);
            var m = Finite(misfits);
            var k = MedianBound(g.Length);
            return new RotationStatistics(SortHelper.Median(gains), SortHelper.Median(misfits), pairs.Count,
                k < 0 ? double.NaN : g[k],
                k < 0 ? double.NaN : g[^(k + 1)],
                MedianBound(m.Length) is var km && km >= 0 ? m[km] : double.NaN);
        }
        finally
        {
            ArrayPool<double>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Every still-to-still pair of a window (frame indices relative to the window), with the gain and misfit of the
    /// gyroscope rate mapped by each of <paramref name="maps"/> (row-major 3×3). The pairs depend on the
    /// accelerometer only, so they are the same for every map.
    /// </summary>
    public static List<RotationPair> Pairs(double[][] acc, double[][] gyro, double sampleRateHz, double gravity, double[][] maps)
    {
        var n = CommonLength(acc, gyro);
        var k = Math.Max(2, (int)Math.Round(SmoothSeconds * sampleRateHz));
        var step = Math.Max(1, (int)Math.Round(StepSeconds * sampleRateHz));
        var maxLag = Math.Max(step, (int)Math.Round(MaxPairSeconds * sampleRateHz));
        var dt = 1.0 / sampleRateHz;
        var centre = k / 2;
        var moments = n - k + 1;
        var result = new List<RotationPair>();
        if (moments < 2)
        {
            return result;
        }

        // Smoothed direction and steadiness of every moment (window [i, i + k)).
        // Working arrays from the pool (returned below): every element below moments is written before it is read.
        var u = ArrayPool<double>.Shared.Rent(moments * 3);
        var means = ArrayPool<double>.Shared.Rent(moments);
        var deviation = ArrayPool<double>.Shared.Rent(moments);
        var steady = ArrayPool<bool>.Shared.Rent(moments);
        var quiet = ArrayPool<bool>.Shared.Rent(moments);
        MovingMoments(acc, n, k, u, means, deviation);
        for (var m = 0; m < moments; m++)
        {
            var norm = means[m];
            quiet[m] = deviation[m] < QuietDeviation * gravity;
            steady[m] = deviation[m] < SteadyDeviation * gravity && Math.Abs((norm / gravity) - 1) < SteadyNormTolerance;
            if (norm > 0)
            {
                for (var a = 0; a < 3; a++)
                {
                    u[(m * 3) + a] /= norm;
                }
            }
        }

        var minTurn = MinTurnDegrees * Math.PI / 180;

        // Per map, the turn from the first sample to every later one as a unit quaternion: prefix products of the
        // per-sample turns exp(−[Mω]× dt). The turn between any two samples is then one product, Q_b ⊗ Q_a*, instead of
        // an integration over the up to MaxPairSeconds of samples between them for every start and every map.
        var prefix = ArrayPool<double>.Shared.Rent(4 * (n + 1));
        try
        {
            for (var h = 0; h < maps.Length; h++)
            {
                PrefixTurns(maps[h], gyro, n, dt, prefix);
                var next = 0; // which pairs qualify depends on the accelerometer only: every map visits them in the same order
                for (var p = 0; p < moments; p += step)
                {
                    if (!steady[p])
                    {
                        continue;
                    }

                    var t0 = p + centre;
                    double u1x = u[p * 3], u1y = u[(p * 3) + 1], u1z = u[(p * 3) + 2];
                    for (var j = step; j <= maxLag && t0 + j <= n; j += step)
                    {
                        var q = p + j;
                        if (q >= moments || !steady[q])
                        {
                            continue;
                        }

                        double u2x = u[q * 3], u2y = u[(q * 3) + 1], u2z = u[(q * 3) + 2];
                        var measured = Angle(u1x, u1y, u1z, u2x, u2y, u2z);
                        if (measured < minTurn)
                        {
                            continue;
                        }

                        // The turn over samples t0 … t0 + j − 1, applied to the first moment's gravity direction.
                        var (tw, tx, ty, tz) = Between(prefix, t0, t0 + j);
                        var (vx, vy, vz) = Apply(tw, tx, ty, tz, u1x, u1y, u1z);
                        if (h == 0)
                        {
                            var norm1 = means[p];
                            var norm2 = means[q];
                            result.Add(new RotationPair(p, q + k, new double[maps.Length], new double[maps.Length])
                            {
                                Turn = Matrix(tw, tx, ty, tz),
                                From = [u1x * norm1, u1y * norm1, u1z * norm1],
                                To = [u2x * norm2, u2y * norm2, u2z * norm2],
                                Quiet = quiet[p] && quiet[q],
                            });
                        }

                        var pair = result[next++];
                        pair.Gains[h] = Angle(u1x, u1y, u1z, vx, vy, vz) / measured;
                        pair.Misfits[h] = Angle(vx, vy, vz, u2x, u2y, u2z) / measured;
                    }
                }
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(prefix);
            ArrayPool<double>.Shared.Return(u);
            ArrayPool<double>.Shared.Return(means);
            ArrayPool<double>.Shared.Return(deviation);
            ArrayPool<bool>.Shared.Return(steady);
            ArrayPool<bool>.Shared.Return(quiet);
        }

        return result;
    }

    /// <summary>Largest per-axis standard deviation (relative to gravity) over 0.5 s at both moments of a pair used for the turn offset.</summary>
    public const double QuietDeviation = StillDeviation;

    /// <summary>Per-pair information (|(I − R) e_k|², averaged over the pairs) an axis needs before its offset is estimated.</summary>
    public const double MinOffsetInformation = 0.1;

    /// <summary>
    /// The accelerometer offset (relative to <paramref name="reference"/>) that still-to-still turns imply: the
    /// least-squares solution of (I − R) δ = (To − b₀) − R (From − b₀) over all pairs. Per axis, NaN when the turns
    /// carry too little information along it (a turn about axis k says nothing about the offset along k).
    /// </summary>
    public static double[] TurnOffset(IReadOnlyList<RotationPair> pairs, ReadOnlySpan<double> reference)
    {
        double[] nan = [double.NaN, double.NaN, double.NaN];
        pairs = [.. pairs.Where(p => p.Quiet)];
        if (pairs.Count < MinPairs)
        {
            return nan;
        }

        var ata = new double[3, 3];
        var atb = new double[3];
        Span<double> m = stackalloc double[9];
        Span<double> e = stackalloc double[3];
        Span<double> a1 = stackalloc double[3];
        foreach (var p in pairs)
        {
            var r = p.Turn;
            for (var i = 0; i < 3; i++)
            {
                a1[i] = p.From[i] - reference[i];
            }

            for (var i = 0; i < 3; i++)
            {
                var ra = (r[i * 3] * a1[0]) + (r[(i * 3) + 1] * a1[1]) + (r[(i * 3) + 2] * a1[2]);
                e[i] = p.To[i] - reference[i] - ra;
                for (var j = 0; j < 3; j++)
                {
                    m[(i * 3) + j] = (i == j ? 1 : 0) - r[(i * 3) + j];
                }
            }

            for (var i = 0; i < 3; i++)
            {
                for (var j = 0; j < 3; j++)
                {
                    double sum = 0;
                    for (var k = 0; k < 3; k++)
                    {
                        sum += m[(k * 3) + i] * m[(k * 3) + j];
                    }

                    ata[i, j] += sum;
                }

                atb[i] += (m[i] * e[0]) + (m[3 + i] * e[1]) + (m[6 + i] * e[2]);
            }
        }

        if (Solve(ata, atb) is not { } delta || Invert(ata) is not { } inv)
        {
            return nan;
        }

        for (var k = 0; k < 3; k++)
        {
            // 1 / (A⁻¹)_kk is the information about δ_k left after the other axes are estimated.
            if (inv[k, k] <= 0 || 1 / inv[k, k] < MinOffsetInformation * pairs.Count)
            {
                delta[k] = double.NaN;
            }
        }

        return delta;
    }

    /// <summary>The identity gyroscope map.</summary>
    public static ReadOnlySpan<double> Identity => [1, 0, 0, 0, 1, 0, 0, 0, 1];

    /// <summary>The median as sorting would give it (NaN sorts first); reorders <paramref name="values"/>.</summary>
    public static double Median(double[] values) => SortHelper.Median(values);
}
