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
