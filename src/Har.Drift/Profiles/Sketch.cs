namespace Har.Drift;

/// <summary>Summaries of samples: bounded sorted samples, quantile sketches and effective sample sizes.</summary>
internal static class Sketch
{
    /// <summary>Evenly spaced order statistics (at most <paramref name="max"/>) of a sample, sorted.</summary>
    public static double[] BoundedSorted(ReadOnlySpan<float> values, int max)
    {
        var all = new double[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            all[i] = values[i];
        }

        SortHelper.Sort(all);
        return Thin(all, max);
    }

    /// <summary>At most <paramref name="max"/> evenly spaced order statistics of a sorted sample.</summary>
    public static double[] Thin(double[] sorted, int max)
    {
        if (sorted.Length <= max)
        {
            return sorted;
        }

        var result = new double[max];
        for (var i = 0; i < max; i++)
        {
            result[i] = sorted[(int)(((i + 0.5) * sorted.Length) / max)];
        }

        return result;
    }

    /// <summary>The sketch: type-7 quantiles at (i + ½)/q of a sorted sample.</summary>
    public static double[] Quantiles(ReadOnlySpan<double> sorted, int q)
    {
        var result = new double[q];
        for (var i = 0; i < q; i++)
        {
            result[i] = PopulationStabilityIndex.Quantile(sorted, (i + 0.5) / q);
        }

        return result;
    }

    /// <summary>
    /// Effective sample size of an autocorrelated series (Bartlett / Bayley–Hammersley):
    /// n_eff = n / (1 + 2 Σ_{k≥1} ρ_k), summing the sample autocorrelations up to <paramref name="maxLag"/> and
    /// stopping at the first lag whose autocorrelation drops below 0.05 (initial positive sequence). Clamped to [1, n].
    /// </summary>
    public static double EffectiveSize(ReadOnlySpan<double> series, int maxLag)
    {
        var n = series.Length;
        if (n < 3)
        {
            return n;
        }

        var mean = 0.0;
        foreach (var v in series)
        {
            mean += v;
        }

        mean /= n;
        var c0 = 0.0;
        foreach (var v in series)
        {
            c0 += (v - mean) * (v - mean);
        }

        if (c0 <= 0)
        {
            return 1; // constant: no information beyond one value
        }

        var sum = 0.0;
        var lagLimit = Math.Min(maxLag, n - 1);
        for (var k = 1; k <= lagLimit; k++)
        {
            var ck = 0.0;
            for (var t = 0; t + k < n; t++)
            {
                ck += (series[t] - mean) * (series[t + k] - mean);
            }

            var rho = ck / c0;
            if (rho < 0.05)
            {
                break;
            }

            sum += rho;
        }

        return Math.Clamp(n / (1 + (2 * sum)), 1, n);
    }
}
