namespace Har.Deployment;

/// <summary>The small amount of statistics the built-in gates need.</summary>
internal static class Statistics
{
    /// <summary>The one-sided standard-normal quantile for a confidence level (Acklam's rational approximation, |error| &lt; 1.2e-9).</summary>
    public static double NormalQuantile(double p)
    {
        if (!(p > 0 && p < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "Expected a probability strictly between 0 and 1.");
        }

        ReadOnlySpan<double> a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
        ReadOnlySpan<double> b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
        ReadOnlySpan<double> c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
        ReadOnlySpan<double> d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        const double Low = 0.02425;
        if (p < Low)
        {
            var q = Math.Sqrt(-2 * Math.Log(p));
            return (((((((c[0] * q) + c[1]) * q) + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((((d[0] * q) + d[1]) * q) + d[2]) * q + d[3]) * q + 1);
        }

        if (p > 1 - Low)
        {
            var q = Math.Sqrt(-2 * Math.Log(1 - p));
            return -(((((((c[0] * q) + c[1]) * q) + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((((d[0] * q) + d[1]) * q) + d[2]) * q + d[3]) * q + 1);
        }

        var r = p - 0.5;
        var s = r * r;
        return (((((((a[0] * s) + a[1]) * s) + a[2]) * s + a[3]) * s + a[4]) * s + a[5]) * r / (((((((b[0] * s) + b[1]) * s) + b[2]) * s + b[3]) * s + b[4]) * s + 1);
    }

    /// <summary>The Wilson score interval of a binomial proportion at one-sided quantile <paramref name="z"/>.</summary>
    public static (double Lower, double Upper) Wilson(long successes, long trials, double z)
    {
        if (trials <= 0)
        {
            return (0, 1);
        }

        var n = (double)trials;
        var p = successes / n;
        var z2 = z * z;
        var denominator = 1 + (z2 / n);
        var centre = (p + (z2 / (2 * n))) / denominator;
        var half = z * Math.Sqrt((p * (1 - p) / n) + (z2 / (4 * n * n))) / denominator;
        return (Math.Max(0, centre - half), Math.Min(1, centre + half));
    }

    /// <summary>Sample variance from a count, sum and sum of squares (0 for fewer than two values).</summary>
    public static double Variance(long n, double sum, double sumSquares)
    {
        if (n < 2)
        {
            return 0;
        }

        var mean = sum / n;
        return Math.Max(0, (sumSquares - (n * mean * mean)) / (n - 1));
    }

    /// <summary>
    /// Roughly how many samples would make an interval around <paramref name="estimate"/> (now reaching
    /// <paramref name="bound"/> with <paramref name="n"/> samples) clear of <paramref name="limit"/>: the
    /// half-width shrinks as 1/√n. <see cref="long.MaxValue"/> when the estimate sits on the limit.
    /// </summary>
    public static long NeededSamples(long n, double estimate, double bound, double limit)
    {
        var half = Math.Abs(bound - estimate);
        var room = Math.Abs(limit - estimate);
        if (n <= 0 || room < 1e-9)
        {
            return long.MaxValue;
        }

        var needed = n * (half / room) * (half / room);
        return needed >= long.MaxValue / 2 ? long.MaxValue : (long)Math.Ceiling(Math.Max(needed, n + 1));
    }
}
