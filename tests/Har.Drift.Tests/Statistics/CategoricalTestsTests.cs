namespace Har.Drift.Tests.Statistics;

public sealed class CategoricalTestsTests
{
    [Fact]
    public void ChiSquare_ClassMixVector_MatchesScipyChi2Contingency()
    {
        var pair = ReferenceVectors.PsiPair("har_class_mix_6");
        var expected = pair.GetProperty("chi2_contingency_2xK");

        var r = CategoricalTests.ChiSquare(ReferenceVectors.Longs(pair.GetProperty("ref_counts")), ReferenceVectors.Longs(pair.GetProperty("cur_counts")));

        Assert.Equal(ReferenceVectors.Number(expected.GetProperty("statistic")), r.Statistic, 1e-9);
        Assert.Equal(expected.GetProperty("dof").GetInt32(), r.DegreesOfFreedom);
        Assert.Equal(ReferenceVectors.Number(expected.GetProperty("pvalue")), r.PValue, 1e-12);
    }

    [Fact]
    public void ChiSquare_UnseenCategory_IsFinite()
    {
        // A label the reference never produced (last column) must yield a finite statistic, not inf/NaN.
        var r = CategoricalTests.ChiSquare([100, 200, 0], [90, 180, 30]);
        Assert.True(double.IsFinite(r.Statistic));
        Assert.True(r.PValue is >= 0 and < 1e-6);
        Assert.Equal(2, r.DegreesOfFreedom);
    }

    [Fact]
    public void ChiSquare_CategoryAbsentFromBoth_IsDropped()
    {
        var with = CategoricalTests.ChiSquare([100, 0, 200], [90, 0, 210]);
        var without = CategoricalTests.ChiSquare([100, 200], [90, 210]);
        Assert.Equivalent(without, with, strict: true); // every property equal (ChiSquareResult is a class)
    }

    [Theory]
    // scipy.stats.chi2.sf(x, k) printed by SciPy 1.10.1.
    [InlineData(3.0, 1, 0.08326451666355042)]
    [InlineData(11.07, 5, 0.050009618622405425)]
    [InlineData(0.5, 4, 0.9735009788392561)]
    [InlineData(40.0, 9, 7.598525229464264e-06)]
    public void ChiSquareSf_MatchesScipy(double x, int k, double expected)
    {
        var actual = CategoricalTests.ChiSquareSf(x, k);
        Assert.True(Math.Abs(actual - expected) <= Math.Max(1e-12, 1e-9 * expected), $"{actual:R} vs {expected:R}");
    }

    [Fact]
    public void JensenShannonDistance_Bounds()
    {
        Assert.Equal(0, CategoricalTests.JensenShannonDistance([5, 5, 10], [1, 1, 2]), 12);
        Assert.Equal(1, CategoricalTests.JensenShannonDistance([5, 0], [0, 7]), 12);
    }

    [Fact]
    public void JensenShannonDistance_MatchesScipy()
    {
        // scipy.spatial.distance.jensenshannon([1722,1544,1406,1777,1906,1944],[2100,1210,905,1800,1985,0], base=2)
        var pair = ReferenceVectors.PsiPair("har_class_mix_6");
        var d = CategoricalTests.JensenShannonDistance(ReferenceVectors.Longs(pair.GetProperty("ref_counts")), ReferenceVectors.Longs(pair.GetProperty("cur_counts")));
        Assert.Equal(JsExpected, d, 1e-12);
    }

    private const double JsExpected = 0.3296745904964061;

    [Fact]
    public void ChiSquare_CountsNearLongMaxValue_DoNotWrapAround()
    {
        // The totals exceed long.MaxValue: summed as longs they wrapped to negative numbers and the test said "no difference" (p 1).
        var different = CategoricalTests.ChiSquare([long.MaxValue, long.MaxValue], [long.MaxValue, 1]);
        var same = CategoricalTests.ChiSquare([long.MaxValue / 2, long.MaxValue / 2], [long.MaxValue / 2, long.MaxValue / 2]);

        Assert.True(double.IsFinite(different.Statistic) && different.Statistic > 0, different.ToString());
        Assert.True(different.PValue < 1e-6, different.ToString());
        Assert.InRange(same.Statistic, 0, 1e-6);
        Assert.True(same.PValue > 0.99, same.ToString());
    }

    [Fact]
    public void JensenShannonDistance_NegativeCount_IsRefusedAsChiSquareRefusesIt()
    {
        // It returned NaN, which a caller comparing with a floor reads as "not drifted".
        var js = Assert.Throws<ArgumentException>(() => CategoricalTests.JensenShannonDistance([5, 3], [4, -2]));
        var chi = Assert.Throws<ArgumentException>(() => CategoricalTests.ChiSquare([5, 3], [4, -2]));

        Assert.Equal("currentCounts", js.ParamName);
        Assert.Equal("currentCounts", chi.ParamName);
        Assert.Contains("Category 1 has a negative count (-2 in the current sample)", js.Message, StringComparison.Ordinal);
    }
}
