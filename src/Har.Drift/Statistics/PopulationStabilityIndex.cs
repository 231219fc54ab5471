using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Har.Drift;

/// <summary>The result of a PSI computation: the index, the bins and counts it was computed from.</summary>
internal sealed class PsiResult
{
    internal PsiResult(double value, double[] innerEdges, long[] referenceCounts, long[] currentCounts)
    {
        Value = value;
        InnerEdges = innerEdges;
        ReferenceCounts = referenceCounts;
        CurrentCounts = currentCounts;
    }

    /// <summary>Gets PSI = Σ (a_i − e_i)·ln(a_i / e_i) over bins (natural log), with empty fractions replaced by the epsilon.</summary>
    public double Value { get; }

    /// <summary>Gets the inner bin edges q_1 … q_{B−1}; the outer edges are −∞ and +∞, bins are left-closed.</summary>
    public double[] InnerEdges { get; }

    /// <summary>Gets the reference count per bin.</summary>
    public long[] ReferenceCounts { get; }

    /// <summary>Gets the current count per bin.</summary>
    public long[] CurrentCounts { get; }

    /// <summary>Returns e.g. <c>PSI 0.0831 over 10 bins</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"PSI {Value:G6} over {ReferenceCounts.Length} bins");
}

/// <summary>
/// Population Stability Index with quantile bins of the reference: B bins whose inner edges are NumPy's default
/// (type-7, linear) quantiles of the reference at k/B, left-closed / right-open (<c>searchsorted(side='right')</c>),
/// and a fraction that is exactly zero replaced by an epsilon (1e-4 by default) before the log, without renormalising.
/// </summary>
internal static class PopulationStabilityIndex
{
    /// <summary>The default number of bins.</summary>
    internal const int DefaultBins = 10;

    /// <summary>The default replacement for an empty bin's fraction.</summary>
    internal const double DefaultEpsilon = 1e-4;

    /// <summary>Computes PSI of <paramref name="current"/> against <paramref name="reference"/> (both unsorted; the inputs are not modified).</summary>
    /// <param name="reference">The reference sample (non-empty, finite).</param>
    /// <param name="current">The current sample (non-empty).</param>
    /// <param name="bins">Number of quantile bins (≥ 2).</param>
    /// <param name="epsilon">Replacement for a zero fraction (&gt; 0).</param>
    /// <returns>The index with its edges and counts.</returns>
    public static PsiResult Compute(ReadOnlySpan<double> reference, ReadOnlySpan<double> current, int bins = DefaultBins, double epsilon = DefaultEpsilon)
    {
        if (reference.IsEmpty)
        {
            throw new ArgumentException("The reference sample is empty; PSI needs reference values to place the bin edges.", nameof(reference));
        }

        var sorted = reference.ToArray();
        SortHelper.Sort(sorted);
        var edges = QuantileEdges(sorted, bins);
        var refCounts = new long[bins];
        CountSorted(edges, sorted, refCounts);
        var curCounts = new long[bins];
        Count(edges, current, curCounts);
        return new PsiResult(FromCounts(refCounts, curCounts, epsilon), edges, refCounts, curCounts);
    }

    /// <summary>
    /// The inner edges of <paramref name="bins"/> quantile bins of a sorted reference: NumPy's type-7 quantiles at
    /// k/bins, k = 1 … bins − 1, reproducing NumPy 1.24's interpolation branch bit for bit.
    /// </summary>
    /// <param name="sortedReference">The reference sample sorted ascending (non-empty, finite).</param>
    /// <param name="bins">Number of bins (≥ 2).</param>
    /// <returns>The <paramref name="bins"/> − 1 inner edges, non-decreasing.</returns>
    internal static double[] QuantileEdges(ReadOnlySpan<double> sortedReference, int bins = DefaultBins)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 2);
        if (sortedReference.IsEmpty)
        {
            throw new ArgumentException("The reference sample is empty; PSI needs reference values to place the bin edges.", nameof(sortedReference));
        }

        var edges = new double[bins - 1];
        for (var k = 1; k < bins; k++)
        {
            edges[k - 1] = Quantile(sortedReference, (double)k / bins);
        }

        return edges;
    }

    /// <summary>NumPy's default (type-7, 'linear') quantile of a sorted sample, with NumPy 1.24's two-branch lerp.</summary>
    /// <param name="sorted">Sorted sample (non-empty).</param>
    /// <param name="p">Probability in [0, 1].</param>
    /// <returns>The quantile.</returns>
    internal static double Quantile(ReadOnlySpan<double> sorted, double p)
    {
        var n = sorted.Length;
        var h = (n - 1) * p;
        var j = (int)Math.Floor(h);
        var g = h - j;
        var a = sorted[Math.Clamp(j, 0, n - 1)];
        var b = sorted[Math.Min(j + 1, n - 1)];
        var diff = b - a;
        return g < 0.5 ? a + (diff * g) : b - (diff * (1 - g));
    }

    /// <summary>
    /// Counts values into left-closed bins: value v goes to bin #{k : edges[k] ≤ v}. Vectorised: each value is
    /// compared with every edge (branch-free), which for the usual 9–20 edges beats a binary search.
    /// </summary>
    /// <param name="innerEdges">Non-decreasing inner edges.</param>
    /// <param name="values">Values to count (NaN values are counted in bin 0).</param>
    /// <param name="counts">Receives the counts (length = edges + 1); counts are added to what it holds.</param>
    internal static void Count(ReadOnlySpan<double> innerEdges, ReadOnlySpan<double> values, Span<long> counts)
    {
        if (counts.Length != innerEdges.Length + 1)
        {
            throw new ArgumentException($"counts has {counts.Length} slots; expected {innerEdges.Length + 1} (one per bin: inner edges + 1).", nameof(counts));
        }

        var i = 0;
        if (Vector256.IsHardwareAccelerated && values.Length >= Vector256<double>.Count && innerEdges.Length <= 64)
        {
            // Per-bin-index histogram of lane results: idx = #{edges ≤ v} accumulated as negative mask sums.
            Span<Vector256<double>> edgeVectors = stackalloc Vector256<double>[innerEdges.Length];
            for (var k = 0; k < innerEdges.Length; k++)
            {
                edgeVectors[k] = Vector256.Create(innerEdges[k]);
            }

            ref var src = ref MemoryMarshal.GetReference(values);
            var last = values.Length - Vector256<double>.Count;
            for (; i <= last; i += Vector256<double>.Count)
            {
                var v = Vector256.LoadUnsafe(ref src, (nuint)i);
                var idx = Vector256<long>.Zero;
                for (var k = 0; k < edgeVectors.Length; k++)
                {
                    idx -= Vector256.GreaterThanOrEqual(v, edgeVectors[k]).AsInt64();
                }

                counts[(int)idx.GetElement(0)]++;
                counts[(int)idx.GetElement(1)]++;
                counts[(int)idx.GetElement(2)]++;
                counts[(int)idx.GetElement(3)]++;
            }
        }

        for (; i < values.Length; i++)
        {
            counts[BinOf(innerEdges, values[i])]++;
        }
    }

    /// <summary>Counts a float sample (sensor data) into left-closed bins; see <see cref="Count(ReadOnlySpan{double}, ReadOnlySpan{double}, Span{long})"/>.</summary>
    /// <param name="innerEdges">Non-decreasing inner edges.</param>
    /// <param name="values">Values to count.</param>
    /// <param name="counts">Receives the counts (added to what it holds).</param>
    internal static void Count(ReadOnlySpan<double> innerEdges, ReadOnlySpan<float> values, Span<long> counts)
    {
        if (counts.Length != innerEdges.Length + 1)
        {
            throw new ArgumentException($"counts has {counts.Length} slots; expected {innerEdges.Length + 1} (one per bin: inner edges + 1).", nameof(counts));
        }

        foreach (var v in values)
        {
            counts[BinOf(innerEdges, v)]++;
        }
    }

    /// <summary>PSI from bin counts: fractions a = current/m, e = reference/n, zero fractions replaced by <paramref name="epsilon"/>, summed exactly (Neumaier).</summary>
    /// <param name="referenceCounts">Reference counts per bin.</param>
    /// <param name="currentCounts">Current counts per bin (same length).</param>
    /// <param name="epsilon">Replacement for a zero fraction (&gt; 0).</param>
    /// <returns>The PSI (≥ 0).</returns>
    internal static double FromCounts(ReadOnlySpan<long> referenceCounts, ReadOnlySpan<long> currentCounts, double epsilon = DefaultEpsilon)
    {
        if (referenceCounts.Length != currentCounts.Length)
        {
            throw new ArgumentException($"The reference has {referenceCounts.Length} bins and the current sample {currentCounts.Length}; they must be binned alike.", nameof(currentCounts));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(epsilon);
        long n = 0, m = 0;
        foreach (var c in referenceCounts)
        {
            n += c;
        }

        foreach (var c in currentCounts)
        {
            m += c;
        }

        if (n == 0 || m == 0)
        {
            throw new ArgumentException("PSI needs at least one reference and one current value.", nameof(referenceCounts));
        }

        double sum = 0, compensation = 0;
        for (var k = 0; k < referenceCounts.Length; k++)
        {
            var e = referenceCounts[k] / (double)n;
            var a = currentCounts[k] / (double)m;
            if (e == 0)
            {
                e = epsilon;
            }

            if (a == 0)
            {
                a = epsilon;
            }

            var term = (a - e) * Math.Log(a / e);
            var t = sum + term;
            compensation += Math.Abs(sum) >= Math.Abs(term) ? (sum - t) + term : (term - t) + sum;
            sum = t;
        }

        return Math.Max(0, sum + compensation);
    }

    internal static void CountSorted(ReadOnlySpan<double> innerEdges, ReadOnlySpan<double> sorted, Span<long> counts)
    {
        var start = 0;
        for (var k = 0; k < innerEdges.Length; k++)
        {
            var end = UpperBoundBelow(sorted, innerEdges[k], start);
            counts[k] += end - start;
            start = end;
        }

        counts[innerEdges.Length] += sorted.Length - start;
    }

    /// <summary>First index ≥ <paramref name="from"/> whose value is ≥ <paramref name="edge"/>.</summary>
    private static int UpperBoundBelow(ReadOnlySpan<double> sorted, double edge, int from)
    {
        int lo = from, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (sorted[mid] < edge)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    internal static int BinOf(ReadOnlySpan<double> innerEdges, double v)
    {
        var idx = 0;
        foreach (var e in innerEdges)
        {
            idx += v >= e ? 1 : 0;
        }

        return idx;
    }
}
