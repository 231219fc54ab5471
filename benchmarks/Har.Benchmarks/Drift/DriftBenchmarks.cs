using BenchmarkDotNet.Attributes;
using Har.Drift;

namespace Har.Benchmarks.Drift;

/// <summary>
/// Two-sample KS on n vs n samples and PSI counting with cached edges. The naive baselines do what SciPy/NumPy do
/// (sort both, then binary-search every pooled point into both samples; binary-search each value into the edges);
/// SciPy and NumPy themselves are timed by compare_scipy.py in the same run (see benchmarks/results/Drift).
/// </summary>
[MemoryDiagnoser]
public class DriftBenchmarks
{
    private double[] _a = [];
    private double[] _b = [];
    private double[] _sortedA = [];
    private double[] _edges = [];
    private long[] _counts = [];

    [Params(1_000_000, 999_983)]
    public int N { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _a = new double[N];
        _b = new double[N];
        for (var i = 0; i < N; i++)
        {
            _a[i] = Normal(rng);
            _b[i] = Normal(rng) + 0.001;
        }

        _sortedA = (double[])_a.Clone();
        Array.Sort(_sortedA);
        _edges = PopulationStabilityIndex.QuantileEdges(_sortedA);
        _counts = new long[_edges.Length + 1];
    }

    [Benchmark(Baseline = true, Description = "KS naive (sort + searchsorted, SciPy's algorithm)")]
    public double KsNaive()
    {
        var x = (double[])_a.Clone();
        var y = (double[])_b.Clone();
        Array.Sort(x);
        Array.Sort(y);
        var d = 0.0;
        foreach (var v in x)
        {
            d = Math.Max(d, Math.Abs((UpperBound(x, v) / (double)x.Length) - (UpperBound(y, v) / (double)y.Length)));
        }

        foreach (var v in y)
        {
            d = Math.Max(d, Math.Abs((UpperBound(x, v) / (double)x.Length) - (UpperBound(y, v) / (double)y.Length)));
        }

        return d;
    }

    [Benchmark(Description = "KS Har.Drift (both unsorted)")]
    public double Ks() => KolmogorovSmirnov.Test(_a, _b).PValue;

    [Benchmark(Description = "KS Har.Drift (pre-sorted reference)")]
    public double KsPresorted() => KolmogorovSmirnov.TestAgainstSorted(_sortedA, _b).PValue;

    [Benchmark(Description = "PSI counting naive (binary search per value)")]
    public long PsiNaive()
    {
        Array.Clear(_counts);
        foreach (var v in _b)
        {
            _counts[UpperBound(_edges, v)]++;
        }

        return _counts[0];
    }

    [Benchmark(Description = "PSI Har.Drift (cached edges, vectorised count + index)")]
    public double Psi()
    {
        Array.Clear(_counts);
        PopulationStabilityIndex.Count(_edges, _b, _counts);
        return PopulationStabilityIndex.FromCounts([100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 100_000], _counts);
    }

    /// <summary>The number of values of <paramref name="sorted"/> at most <paramref name="v"/> (NumPy's <c>searchsorted(side="right")</c>).</summary>
    internal static int UpperBound(double[] sorted, double v)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (sorted[mid] <= v)
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

    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
