using FsCheck;
using FsCheck.Fluent;

namespace Har.Drift.Tests.Statistics;

public sealed class PopulationStabilityIndexTests
{
    public static TheoryData<string> NumericCases()
    {
        var data = new TheoryData<string>();
        foreach (var pair in ReferenceVectors.PsiPairs.Where(p => p.GetProperty("kind").GetString() == "numeric"))
        {
            data.Add(pair.GetProperty("name").GetString()!);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(NumericCases))]
    public void Compute_ReferenceVector_MatchesNumpy(string name)
    {
        var pair = ReferenceVectors.PsiPair(name);
        var expected = pair.GetProperty("quantile10_eps1e-4");

        var result = PopulationStabilityIndex.Compute(ReferenceVectors.Numbers(pair.GetProperty("ref")), ReferenceVectors.Numbers(pair.GetProperty("cur")));

        Assert.Equal(ReferenceVectors.Numbers(expected.GetProperty("inner_edges")), result.InnerEdges);
        Assert.Equal(ReferenceVectors.Longs(expected.GetProperty("ref_counts")), result.ReferenceCounts);
        Assert.Equal(ReferenceVectors.Longs(expected.GetProperty("cur_counts")), result.CurrentCounts);
        Assert.Equal(ReferenceVectors.Number(expected.GetProperty("psi")), result.Value, 1e-12);
    }

    [Fact]
    public void FromCounts_ClassMixVector_MatchesReferenceWithEpsilon()
    {
        var pair = ReferenceVectors.PsiPair("har_class_mix_6");
        var psi = PopulationStabilityIndex.FromCounts(ReferenceVectors.Longs(pair.GetProperty("ref_counts")), ReferenceVectors.Longs(pair.GetProperty("cur_counts")));
        Assert.Equal(ReferenceVectors.Number(pair.GetProperty("categorical_eps1e-4").GetProperty("psi")), psi, 1e-12);
    }

    [Fact]
    public void Count_AllLengthsAndOffsets_EqualsScalarReference()
    {
        var rng = new Random(3);
        var edges = new[] { -1.0, -0.5, -0.5, 0, 0.25, 0.5, 1, 2, 3.5 };
        var data = Enumerable.Range(0, 80).Select(_ => Math.Round((rng.NextDouble() * 8) - 3, 1)).ToArray();
        for (var offset = 0; offset < 5; offset++)
        {
            for (var len = 0; len + offset <= data.Length; len++)
            {
                var slice = data.AsSpan(offset, len);
                var fast = new long[edges.Length + 1];
                PopulationStabilityIndex.Count(edges, slice, fast);
                var naive = new long[edges.Length + 1];
                foreach (var v in slice)
                {
                    naive[edges.Count(e => e <= v)]++;
                }

                Assert.Equal(naive, fast);
            }
        }
    }

    [Fact]
    public void Compute_NonNegative_Property()
    {
        Prop.ForAll(Samples(), Samples(), (a, b) => PopulationStabilityIndex.Compute(a, b).Value >= 0).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Compute_IdenticalInputs_IsZero_Property()
    {
        Prop.ForAll(Samples(), a => PopulationStabilityIndex.Compute(a, a).Value == 0).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData(5)]
    [InlineData(17)]
    public void Compute_ConfigurableBins_UsesThatManyBins(int bins)
    {
        var rng = new Random(bins);
        var a = Enumerable.Range(0, 500).Select(_ => rng.NextDouble()).ToArray();
        var r = PopulationStabilityIndex.Compute(a, a.Select(v => v * 1.1).ToArray(), bins);
        Assert.Equal(bins, r.ReferenceCounts.Length);
        Assert.Equal(bins - 1, r.InnerEdges.Length);
        Assert.Equal(500, r.CurrentCounts.Sum());
    }

    [Fact]
    public void Compute_EmptyReference_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => PopulationStabilityIndex.Compute([], [1.0]));
        Assert.Contains("empty", ex.Message, StringComparison.Ordinal);
    }

    private static Arbitrary<double[]> Samples() =>
        Gen.ArrayOf(Gen.Choose(-40, 40).Select(i => i / 8.0)).Where(a => a.Length > 1).ToArbitrary();
}
