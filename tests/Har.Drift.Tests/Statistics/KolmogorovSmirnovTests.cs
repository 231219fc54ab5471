using FsCheck;
using FsCheck.Fluent;

namespace Har.Drift.Tests.Statistics;

public sealed class KolmogorovSmirnovTests
{
    public static TheoryData<string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var pair in ReferenceVectors.KsPairs)
        {
            foreach (var alt in new[] { "two-sided", "less", "greater" })
            {
                foreach (var method in new[] { "auto", "exact", "asymp" })
                {
                    data.Add(pair.GetProperty("name").GetString()!, alt, method);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Test_ReferenceVector_MatchesScipy(string name, string alternative, string method)
    {
        var pair = ReferenceVectors.KsPair(name);
        var x = ReferenceVectors.KsSample(pair, "x");
        var y = ReferenceVectors.KsSample(pair, "y");
        var expected = pair.GetProperty("results").GetProperty(alternative).GetProperty(method);

        var result = KolmogorovSmirnov.Test(x, y, ParseAlternative(alternative), ParseMethod(method));

        Assert.Equal(ReferenceVectors.Number(expected.GetProperty("statistic")), result.Statistic);
        AssertPValue(ReferenceVectors.Number(expected.GetProperty("pvalue")), result.PValue);
        Assert.Equal(ReferenceVectors.Number(expected.GetProperty("statistic_location")), result.Location);
        Assert.Equal(expected.GetProperty("statistic_sign").GetInt32(), result.Sign);
        var resolved = expected.GetProperty("resolved_method").GetString()!;
        Assert.Equal(resolved.StartsWith("exact", StringComparison.Ordinal) ? KsMethod.Exact : KsMethod.Asymptotic, result.Method);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TestAgainstSorted_ReferenceVector_EqualsUnsortedPath(string name, string alternative, string method)
    {
        var pair = ReferenceVectors.KsPair(name);
        var x = ReferenceVectors.KsSample(pair, "x");
        var y = ReferenceVectors.KsSample(pair, "y");
        var sortedX = x.Order().ToArray();

        var fast = KolmogorovSmirnov.TestAgainstSorted(sortedX, y, ParseAlternative(alternative), ParseMethod(method));
        var slow = KolmogorovSmirnov.Test(x, y, ParseAlternative(alternative), ParseMethod(method));

        Assert.Equivalent(slow, fast, strict: true); // every property equal (KsResult is a class)
    }

    [Fact]
    public void Test_ExtraReference_TwoSidedAsympIsKstwoAtRoundedNeff()
    {
        // The vectors give kstwo.sf(D, round(n_eff)) separately from the classic Kolmogorov limit:
        // the asymptotic p must match the former, not the latter.
        foreach (var pair in ReferenceVectors.KsPairs)
        {
            var extra = pair.GetProperty("results").GetProperty("two-sided").GetProperty("extra_reference");
            var n = pair.GetProperty("n_eff_rounded").GetInt32();
            var d = ReferenceVectors.Number(pair.GetProperty("results").GetProperty("two-sided").GetProperty("asymp").GetProperty("statistic"));
            var expected = ReferenceVectors.Number(extra.GetProperty("kstwo_sf_at_round_neff"));
            var actual = n < 1 ? double.NaN : KolmogorovDistribution.Sf(n, d);
            AssertPValue(expected, actual);
        }
    }

    // Values printed by SciPy 1.10.1 on this platform: scipy.stats.kstwo.sf(d, n) and kstwo.cdf(d, n). They cover
    // every branch of the Simard–L'Ecuyer dispatch (Ruben–Gambino, Durbin matrix, Pomeranz, Pelz–Good, Smirnov tail).
    [Theory]
    [InlineData(1, 0.7, 0.6000000000000001, 0.3999999999999999)]
    [InlineData(5, 0.3, 0.664, 0.33599999999999997)]
    [InlineData(40, 0.1, 0.7818109707182903, 0.21818902928170963)]
    [InlineData(40, 0.3, 0.0010904155041397967, 0.9989095844958602)]
    [InlineData(100, 0.05, 0.9532159710635725, 0.0467840289364275)]
    [InlineData(100, 0.25, 5.408871776434847e-06, 0.9999945911282235)]
    [InlineData(500, 0.03, 0.7473166700457021, 0.25268332995429793)]
    [InlineData(500, 0.08, 0.0031305058199356268, 0.9968694847157115)]
    [InlineData(3000, 0.02, 0.17889813623188955, 0.8211018637681105)]
    [InlineData(50_000, 0.004, 0.3994316646755731, 0.6005683353244269)]
    [InlineData(500_000, 0.0015, 0.21034190155828947, 0.7896580984417105)]
    [InlineData(500_000, 0.003, 0.00024632301239186754, 0.9997536769876132)]
    public void Sf_AcrossAlgorithmBranches_MatchesScipyKstwo(int n, double d, double sf, double cdf)
    {
        AssertPValue(sf, KolmogorovDistribution.Sf(n, d));
        AssertPValue(cdf, KolmogorovDistribution.Cdf(n, d));
    }

    [Fact]
    public void Test_EmptySample_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => KolmogorovSmirnov.Test([], [1.0]));
        Assert.Contains("empty", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Test_NaN_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => KolmogorovSmirnov.Test([1.0, double.NaN], [1.0]));
        Assert.Contains("NaN", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Statistic_InUnitInterval_Property()
    {
        Prop.ForAll(Samples(), Samples(), (a, b) =>
        {
            var r = KolmogorovSmirnov.Test(a, b);
            return r.Statistic is >= 0 and <= 1 && r.PValue is >= 0 and <= 1;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Statistic_SwapSamples_ExchangesLessAndGreater_Property()
    {
        Prop.ForAll(Samples(), Samples(), (a, b) =>
        {
            var two1 = KolmogorovSmirnov.Test(a, b, KsAlternative.TwoSided, KsMethod.Asymptotic);
            var two2 = KolmogorovSmirnov.Test(b, a, KsAlternative.TwoSided, KsMethod.Asymptotic);
            var less = KolmogorovSmirnov.Test(a, b, KsAlternative.Less, KsMethod.Asymptotic);
            var greater = KolmogorovSmirnov.Test(b, a, KsAlternative.Greater, KsMethod.Asymptotic);
            return Math.Abs(two1.Statistic - two2.Statistic) < 1e-12
                && Math.Abs(less.Statistic - greater.Statistic) < 1e-12
                && Math.Abs(less.PValue - greater.PValue) < 1e-12;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Statistic_IdenticalSamples_IsZero_Property()
    {
        Prop.ForAll(Samples(), a =>
        {
            var r = KolmogorovSmirnov.Test(a, a);
            return r.Statistic == 0 && r.PValue == 1;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Statistic_StrictlyIncreasingTransform_Invariant_Property()
    {
        Prop.ForAll(Samples(), Samples(), (a, b) =>
        {
            static double F(double v) => Math.Exp(v / 50.0) + (3 * v);
            var r1 = KolmogorovSmirnov.Test(a, b);
            var r2 = KolmogorovSmirnov.Test(a.Select(F).ToArray(), b.Select(F).ToArray());
            return r1.Statistic == r2.Statistic && r1.PValue == r2.PValue;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Test_LargeSamples_RadixSortedPathEqualsNaiveStatistic()
    {
        var rng = new Random(7);
        var a = Enumerable.Range(0, 20_001).Select(_ => Math.Round(rng.NextDouble() * 100, 1) - 50).ToArray();
        var b = Enumerable.Range(0, 15_003).Select(_ => Math.Round((rng.NextDouble() * 100) + 0.5, 1) - 50).ToArray();

        var r = KolmogorovSmirnov.Test(a, b);

        // Naive: evaluate both ECDFs at every pooled point by counting.
        var sa = a.Order().ToArray();
        var sb = b.Order().ToArray();
        var best = 0.0;
        foreach (var v in sa.Concat(sb))
        {
            var fa = UpperBound(sa, v) / (double)sa.Length;
            var fb = UpperBound(sb, v) / (double)sb.Length;
            best = Math.Max(best, Math.Abs(fa - fb));
        }

        Assert.Equal(best, r.Statistic, 12);
        Assert.Equal(KsMethod.Asymptotic, r.Method);
    }

    private static int UpperBound(double[] sorted, double v)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
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

    private static Arbitrary<double[]> Samples() =>
        Gen.ArrayOf(Gen.Choose(-50, 50).Select(i => i / 4.0)).Where(a => a.Length > 0).ToArbitrary();

    internal static void AssertPValue(double expected, double actual)
    {
        if (double.IsNaN(expected))
        {
            Assert.True(double.IsNaN(actual), $"expected NaN, got {actual:R}");
            return;
        }

        var tol = Math.Max(1e-9, 1e-6 * Math.Abs(expected));
        Assert.True(Math.Abs(expected - actual) <= tol, $"p-value {actual:R} differs from SciPy's {expected:R} by more than {tol:R}");
    }

    private static KsAlternative ParseAlternative(string s) => s switch
    {
        "two-sided" => KsAlternative.TwoSided,
        "less" => KsAlternative.Less,
        "greater" => KsAlternative.Greater,
        _ => throw new ArgumentOutOfRangeException(nameof(s)),
    };

    private static KsMethod ParseMethod(string s) => s switch
    {
        "auto" => KsMethod.Auto,
        "exact" => KsMethod.Exact,
        "asymp" => KsMethod.Asymptotic,
        _ => throw new ArgumentOutOfRangeException(nameof(s)),
    };
}
