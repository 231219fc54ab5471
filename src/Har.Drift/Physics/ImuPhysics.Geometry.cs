namespace Har.Drift;

/// <summary>The small linear algebra and rotation geometry of the physics checks.</summary>
internal static partial class ImuPhysics
{
    private static double[,]? Invert(double[,] a)
    {
        var inv = new double[3, 3];
        for (var c = 0; c < 3; c++)
        {
            double[] unit = [c == 0 ? 1 : 0, c == 1 ? 1 : 0, c == 2 ? 1 : 0];
            if (Solve(a, unit) is not { } col)
            {
                return null;
            }

            for (var r = 0; r < 3; r++)
            {
                inv[r, c] = col[r];
            }
        }

        return inv;
    }

    /// <summary>
    /// Fills <paramref name="prefix"/> (4 × (n + 1) values: w, x, y, z per sample) with the turns Q_t = q_(t−1) ⊗ … ⊗ q_0,
    /// where q_t is the unit quaternion of exp(−[M ω_t]× dt): how a world-fixed vector turns, seen from the sensor, over
    /// sample t of the gyroscope mapped by <paramref name="map"/> (row-major 3×3). Q_0 is the identity; each product is
    /// renormalised.
    /// </summary>
    private static void PrefixTurns(ReadOnlySpan<double> map, double[][] gyro, int n, double dt, double[] prefix)
    {
        double qw = 1, qx = 0, qy = 0, qz = 0;
        prefix[0] = 1;
        prefix[1] = prefix[2] = prefix[3] = 0;
        for (var t = 0; t < n; t++)
        {
            double g0 = gyro[0][t], g1 = gyro[1][t], g2 = gyro[2][t];
            var wx = (map[0] * g0) + (map[1] * g1) + (map[2] * g2);
            var wy = (map[3] * g0) + (map[4] * g1) + (map[5] * g2);
            var wz = (map[6] * g0) + (map[7] * g1) + (map[8] * g2);
            var rate = Math.Sqrt((wx * wx) + (wy * wy) + (wz * wz));
            var theta = rate * dt;
            if (theta >= 1e-12)
            {
                // A turn by θ about k = −ω/|ω|.
                var (s, c) = Math.SinCos(theta / 2);
                var f = -s / rate;
                double sw = c, sx = wx * f, sy = wy * f, sz = wz * f;
                (qw, qx, qy, qz) = (
                    (sw * qw) - (sx * qx) - (sy * qy) - (sz * qz),
                    (sw * qx) + (sx * qw) + (sy * qz) - (sz * qy),
                    (sw * qy) - (sx * qz) + (sy * qw) + (sz * qx),
                    (sw * qz) + (sx * qy) - (sy * qx) + (sz * qw));
                var norm = Math.Sqrt((qw * qw) + (qx * qx) + (qy * qy) + (qz * qz));
                qw /= norm;
                qx /= norm;
                qy /= norm;
                qz /= norm;
            }

            var o = 4 * (t + 1);
            prefix[o] = qw;
            prefix[o + 1] = qx;
            prefix[o + 2] = qy;
            prefix[o + 3] = qz;
        }
    }

    /// <summary>Samples every channel of a window has (the shortest of the three accelerometer and three gyroscope series).</summary>
    private static int CommonLength(double[][] acc, double[][] gyro) =>
        Math.Min(Math.Min(acc[0].Length, acc[1].Length), Math.Min(acc[2].Length, Math.Min(gyro[0].Length, Math.Min(gyro[1].Length, gyro[2].Length))));

    /// <summary>The turn over samples <paramref name="from"/> … <paramref name="to"/> − 1: Q_to ⊗ Q_from*.</summary>
    private static (double W, double X, double Y, double Z) Between(double[] prefix, int from, int to)
    {
        int a = 4 * from, b = 4 * to;
        double aw = prefix[a], ax = -prefix[a + 1], ay = -prefix[a + 2], az = -prefix[a + 3];
        double bw = prefix[b], bx = prefix[b + 1], by = prefix[b + 2], bz = prefix[b + 3];
        return (
            (bw * aw) - (bx * ax) - (by * ay) - (bz * az),
            (bw * ax) + (bx * aw) + (by * az) - (bz * ay),
            (bw * ay) - (bx * az) + (by * aw) + (bz * ax),
            (bw * az) + (bx * ay) - (by * ax) + (bz * aw));
    }

    /// <summary>Rotates v by the unit quaternion (w, x, y, z): v + 2w (r × v) + 2 r × (r × v), r = (x, y, z).</summary>
    private static (double X, double Y, double Z) Apply(double w, double x, double y, double z, double vx, double vy, double vz)
    {
        var cx = (y * vz) - (z * vy);
        var cy = (z * vx) - (x * vz);
        var cz = (x * vy) - (y * vx);
        var ccx = (y * cz) - (z * cy);
        var ccy = (z * cx) - (x * cz);
        var ccz = (x * cy) - (y * cx);
        return (vx + (2 * ((w * cx) + ccx)), vy + (2 * ((w * cy) + ccy)), vz + (2 * ((w * cz) + ccz)));
    }

    /// <summary>The rotation matrix (row-major; its columns are the turned basis vectors) of a unit quaternion.</summary>
    private static double[] Matrix(double w, double x, double y, double z) =>
    [
        1 - (2 * ((y * y) + (z * z))), 2 * ((x * y) - (w * z)), 2 * ((x * z) + (w * y)),
        2 * ((x * y) + (w * z)), 1 - (2 * ((x * x) + (z * z))), 2 * ((y * z) - (w * x)),
        2 * ((x * z) - (w * y)), 2 * ((y * z) + (w * x)), 1 - (2 * ((x * x) + (y * y))),
    ];

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
