namespace Har.Drift;

/// <summary>Recognises accelerometer and gyroscope channels by name (<c>ax ay az</c>, <c>gx gy gz</c>, <c>acc_x</c>…).</summary>
internal static class ChannelKinds
{
    public static bool IsAccelerometer(string name) =>
        name.Length == 2 ? name[0] is 'a' or 'A' : name.StartsWith("acc", StringComparison.OrdinalIgnoreCase);

    public static bool IsGyroscope(string name) =>
        name.Length == 2 ? name[0] is 'g' or 'G' : name.StartsWith("gyr", StringComparison.OrdinalIgnoreCase);

    /// <summary>Indices of the x, y, z accelerometer channels, or empty when they are not all present.</summary>
    public static int[] GravityAxes(IReadOnlyList<string> names) => Axes(names, IsAccelerometer);

    /// <summary>Indices of the x, y, z gyroscope channels, or empty when they are not all present.</summary>
    public static int[] GyroscopeAxes(IReadOnlyList<string> names) => Axes(names, IsGyroscope);

    private static int[] Axes(IReadOnlyList<string> names, Func<string, bool> kind)
    {
        var axes = new int[3];
        for (var a = 0; a < 3; a++)
        {
            var suffix = "xyz"[a];
            axes[a] = -1;
            for (var i = 0; i < names.Count; i++)
            {
                var n = names[i];
                if (kind(n) && char.ToLowerInvariant(n[^1]) == suffix)
                {
                    axes[a] = i;
                    break;
                }
            }

            if (axes[a] < 0)
            {
                return [];
            }
        }

        return axes;
    }

    /// <summary>Unit vector of the mean acceleration (the gravity direction), or null when it is ~0.</summary>
    public static double[]? MeanDirection(ReadOnlySpan<double> x, ReadOnlySpan<double> y, ReadOnlySpan<double> z)
    {
        var n = Math.Min(x.Length, Math.Min(y.Length, z.Length));
        if (n == 0)
        {
            return null;
        }

        double sx = 0, sy = 0, sz = 0;
        for (var i = 0; i < n; i++)
        {
            sx += x[i];
            sy += y[i];
            sz += z[i];
        }

        var norm = Math.Sqrt((sx * sx) + (sy * sy) + (sz * sz));
        return norm < 1e-9 * n ? null : [sx / norm, sy / norm, sz / norm];
    }
}
