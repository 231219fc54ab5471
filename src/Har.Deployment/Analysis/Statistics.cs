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

    /// <summary>
    /// Fisher's exact test, one-sided: the probability, given the margins of the 2×2 table, that the first
    /// sample shows at least <paramref name="events1"/> events (hypergeometric upper tail). Small values mean the
    /// first sample's rate exceeds the second's.
    /// </summary>
    /// <param name="events1">Events (e.g. errors) in the first sample.</param>
    /// <param name="n1">Size of the first sample.</param>
    /// <param name="events2">Events in the second sample.</param>
    /// <param name="n2">Size of the second sample.</param>
    /// <returns>The one-sided p-value (1 when there are no events).</returns>
    public static double FisherGreater(long events1, long n1, long events2, long n2)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(events1);
        ArgumentOutOfRangeException.ThrowIfNegative(events2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(events1, n1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(events2, n2);
        var total = n1 + n2;
        var k = events1 + events2;
        if (k == 0 || n1 == 0 || n2 == 0)
        {
            return 1;
        }

        // Hypergeometric weights by the ratio of consecutive terms, in logs (no factorials): x events among n1 draws.
        var low = Math.Max(0, n1 - (total - k));
        var high = Math.Min(k, n1);
        return UpperTail(low, high, events1, x => Math.Log((double)(k - x) * (n1 - x) / ((double)(x + 1) * (total - k - n1 + x + 1))));
    }

    /// <summary>The binomial upper tail P(X ≥ <paramref name="k"/>) for X ~ Bin(<paramref name="n"/>, <paramref name="p"/>).</summary>
    public static double BinomialAtLeast(long k, long n, double p)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (k <= 0)
        {
            return 1;
        }

        if (k > n || p <= 0)
        {
            return 0;
        }

        if (p >= 1)
        {
            return 1;
        }

        var odds = Math.Log(p / (1 - p));
        return UpperTail(0, n, k, x => Math.Log((double)(n - x) / (x + 1)) + odds);
    }

    /// <summary>
    /// Σ_{x ≥ from} w(x) / Σ w(x) over x in [<paramref name="low"/>, <paramref name="high"/>], where
    /// log w(x + 1) − log w(x) = <paramref name="logRatio"/>(x): summed in logs relative to the largest term, so
    /// no term under- or overflows.
    /// </summary>
    private static double UpperTail(long low, long high, long from, Func<long, double> logRatio)
    {
        if (from <= low)
        {
            return 1;
        }

        if (from > high)
        {
            return 0;
        }

        var count = high - low + 1;
        var logs = new double[count];
        var max = 0.0;
        for (long i = 1; i < count; i++)
        {
            logs[i] = logs[i - 1] + logRatio(low + i - 1);
            max = Math.Max(max, logs[i]);
        }

        double all = 0, tail = 0;
        for (long i = count - 1; i >= 0; i--)
        {
            var w = Math.Exp(logs[i] - max);
            all += w;
            if (low + i >= from)
            {
                tail += w;
            }
        }

        return Math.Clamp(tail / all, 0, 1);
    }

    /// <summary>
    /// The rank of a distribution-free lower confidence bound for the <paramref name="q"/> quantile from
    /// <paramref name="n"/> samples: the largest k with P(Bin(n, q) ≥ k) ≥ 1 − <paramref name="alpha"/>, so the
    /// k-th smallest sample lies at or below the quantile with at least that confidence; 0 when even the smallest
    /// sample is no such bound (too few samples).
    /// </summary>
    public static long QuantileLowerRank(long n, double q, double alpha)
    {
        // P(Bin(n, q) ≥ k) decreases in k: search the largest k that keeps it ≥ 1 − alpha.
        long lo = 0, hi = n;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo + 1) / 2);
            if (BinomialAtLeast(mid, n, q) >= 1 - alpha)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return lo;
    }

    /// <summary>
    /// The rank of a distribution-free upper confidence bound for the <paramref name="q"/> quantile: the smallest m
    /// with P(Bin(n, q) ≤ m − 1) ≥ 1 − <paramref name="alpha"/>; <paramref name="n"/> + 1 when even the largest sample is
    /// no such bound.
    /// </summary>
    public static long QuantileUpperRank(long n, double q, double alpha)
    {
        long lo = 1, hi = n + 1;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo) / 2);
            if (1 - BinomialAtLeast(mid, n, q) >= 1 - alpha)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        return lo;
    }
}
