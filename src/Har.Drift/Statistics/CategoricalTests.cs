namespace Har.Drift;

/// <summary>The result of a chi-square test of homogeneity between two count vectors.</summary>
public sealed class ChiSquareResult
{
    internal ChiSquareResult(double statistic, double pValue, int degreesOfFreedom)
    {
        Statistic = statistic;
        PValue = pValue;
        DegreesOfFreedom = degreesOfFreedom;
    }

    /// <summary>Gets the chi-square statistic of the 2 × K contingency table.</summary>
    public double Statistic { get; }

    /// <summary>Gets the upper-tail probability of χ²(<see cref="DegreesOfFreedom"/>); 1 when there is nothing to compare.</summary>
    public double PValue { get; }

    /// <summary>Gets K' − 1, where K' counts the categories seen in either sample.</summary>
    public int DegreesOfFreedom { get; }

    /// <summary>Returns e.g. <c>chi2 12.5 (dof 5), p 0.0285</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"chi2 {Statistic:G6} (dof {DegreesOfFreedom}), p {PValue:G4}");
}

/// <summary>
/// Tests for categorical distributions such as a model's predicted-class mix: chi-square homogeneity (SciPy's
/// <c>chi2_contingency</c> on the 2 × K table) and the Jensen–Shannon distance. A category that appears in only
/// one of the samples is an ordinary column (finite statistic); a category seen in neither is dropped.
/// </summary>
public static class CategoricalTests
{
    /// <summary>Chi-square test of homogeneity of two count vectors over the same categories.</summary>
    /// <param name="referenceCounts">Counts per category in the reference.</param>
    /// <param name="currentCounts">Counts per category in the current sample (same category order).</param>
    /// <param name="yatesCorrection">Apply Yates' continuity correction when there is one degree of freedom (SciPy's default).</param>
    /// <returns>The statistic, p-value and degrees of freedom.</returns>
    public static ChiSquareResult ChiSquare(ReadOnlySpan<long> referenceCounts, ReadOnlySpan<long> currentCounts, bool yatesCorrection = true)
    {
        RequireSameLength(referenceCounts.Length, currentCounts.Length);
        RequireNonNegative(referenceCounts, currentCounts);

        // Sums in double: counts near long.MaxValue must not wrap around to a negative total (and a p of 1).
        double n = 0, m = 0;
        var used = 0;
        for (var k = 0; k < referenceCounts.Length; k++)
        {
            n += referenceCounts[k];
            m += currentCounts[k];
            used += referenceCounts[k] > 0 || currentCounts[k] > 0 ? 1 : 0;
        }

        if (n == 0 || m == 0 || used < 2)
        {
            return new ChiSquareResult(0, 1, Math.Max(used - 1, 0));
        }

        var dof = used - 1;
        double total = n + m;
        var stat = 0.0;
        for (var k = 0; k < referenceCounts.Length; k++)
        {
            var col = (double)referenceCounts[k] + currentCounts[k];
            if (col == 0)
            {
                continue;
            }

            stat += Term(referenceCounts[k], n * col / total, dof, yatesCorrection);
            stat += Term(currentCounts[k], m * col / total, dof, yatesCorrection);
        }

        return new ChiSquareResult(stat, ChiSquareSf(stat, dof), dof);
    }

    /// <summary>Jensen–Shannon distance (square root of the divergence, base-2 logarithm, so in [0, 1]) between two count vectors.</summary>
    /// <param name="referenceCounts">Counts per category in the reference.</param>
    /// <param name="currentCounts">Counts per category in the current sample (same category order).</param>
    /// <returns>0 for identical mixes, 1 for disjoint ones.</returns>
    public static double JensenShannonDistance(ReadOnlySpan<long> referenceCounts, ReadOnlySpan<long> currentCounts)
    {
        RequireSameLength(referenceCounts.Length, currentCounts.Length);
        RequireNonNegative(referenceCounts, currentCounts);
        double n = 0, m = 0;
        for (var k = 0; k < referenceCounts.Length; k++)
        {
            n += referenceCounts[k];
            m += currentCounts[k];
        }

        if (n == 0 || m == 0)
        {
            throw new ArgumentException("Both count vectors need at least one observation.", nameof(referenceCounts));
        }

        var js = 0.0;
        for (var k = 0; k < referenceCounts.Length; k++)
        {
            var p = referenceCounts[k] / n;
            var q = currentCounts[k] / m;
            var mid = (p + q) / 2;
            if (p > 0)
            {
                js += p * Math.Log2(p / mid) / 2;
            }

            if (q > 0)
            {
                js += q * Math.Log2(q / mid) / 2;
            }
        }

        return Math.Sqrt(Math.Clamp(js, 0, 1));
    }

    /// <summary>Upper tail of the chi-square distribution: Q(dof/2, x/2), the regularised upper incomplete gamma function.</summary>
    internal static double ChiSquareSf(double x, double dof)
    {
        if (double.IsNaN(x))
        {
            return double.NaN;
        }

        if (x <= 0)
        {
            return 1.0;
        }

        return RegularizedGammaQ(dof / 2, x / 2);
    }

    private static double Term(long observed, double expected, int dof, bool yates)
    {
        var diff = observed - expected;
        if (yates && dof == 1)
        {
            diff = Math.Sign(diff) * Math.Max(Math.Abs(diff) - 0.5, 0);
        }

        return diff * diff / expected;
    }

    /// <summary>Q(a, x) by the series (x &lt; a + 1) or Lentz's continued fraction (Numerical Recipes §6.2).</summary>
    internal static double RegularizedGammaQ(double a, double x)
    {
        var gln = KsExact.LogGamma(a);
        if (x < a + 1)
        {
            var ap = a;
            var del = 1.0 / a;
            var sum = del;
            for (var i = 0; i < 10_000; i++)
            {
                ap += 1;
                del *= x / ap;
                sum += del;
                if (Math.Abs(del) < Math.Abs(sum) * 1e-16)
                {
                    break;
                }
            }

            return Math.Clamp(1.0 - (sum * Math.Exp(-x + (a * Math.Log(x)) - gln)), 0, 1);
        }

        const double Tiny = 1e-300;
        var b = x + 1 - a;
        var c = 1 / Tiny;
        var d = 1 / b;
        var h = d;
        for (var i = 1; i < 10_000; i++)
        {
            var an = -i * (i - a);
            b += 2;
            d = (an * d) + b;
            if (Math.Abs(d) < Tiny)
            {
                d = Tiny;
            }

            c = b + (an / c);
            if (Math.Abs(c) < Tiny)
            {
                c = Tiny;
            }

            d = 1 / d;
            var del = d * c;
            h *= del;
            if (Math.Abs(del - 1) < 1e-16)
            {
                break;
            }
        }

        return Math.Clamp(Math.Exp(-x + (a * Math.Log(x)) - gln) * h, 0, 1);
    }

    private static void RequireSameLength(int a, int b)
    {
        if (a != b)
        {
            throw new ArgumentException($"The reference has {a} categories and the current sample {b}; both must list the same categories in the same order.");
        }
    }

    private static void RequireNonNegative(ReadOnlySpan<long> referenceCounts, ReadOnlySpan<long> currentCounts)
    {
        for (var k = 0; k < referenceCounts.Length; k++)
        {
            if (referenceCounts[k] < 0 || currentCounts[k] < 0)
            {
                throw new ArgumentException(
                    $"Category {k} has a negative count ({(referenceCounts[k] < 0 ? referenceCounts[k] : currentCounts[k])} in the {(referenceCounts[k] < 0 ? "reference" : "current sample")}); counts must be ≥ 0.",
                    referenceCounts[k] < 0 ? nameof(referenceCounts) : nameof(currentCounts));
            }
        }
    }
}
