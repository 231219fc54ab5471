using Har.Drift;

namespace Har.Deployment;

/// <summary>The class-mix seam on Har.Drift's categorical tests (chi-square homogeneity and Jensen–Shannon distance).</summary>
internal sealed class DriftClassMixTest : IClassMixTest
{
    public static readonly DriftClassMixTest Instance = new();

    public ClassMixComparison Compare(IReadOnlyList<long> reference, IReadOnlyList<long> current)
    {
        var n = Math.Max(reference.Count, current.Count);
        Span<long> r = n <= 256 ? stackalloc long[n] : new long[n];
        Span<long> c = n <= 256 ? stackalloc long[n] : new long[n];
        r.Clear();
        c.Clear();
        for (var i = 0; i < reference.Count; i++)
        {
            r[i] = reference[i];
        }

        for (var i = 0; i < current.Count; i++)
        {
            c[i] = current[i];
        }

        var chi = CategoricalTests.ChiSquare(r, c);
        var js = CategoricalTests.JensenShannonDistance(r, c);
        return new ClassMixComparison(chi.Statistic, chi.DegreesOfFreedom, chi.PValue, js);
    }
}
