using FsCheck;
using FsCheck.Fluent;

namespace Har.Drift.Tests.Statistics;

public sealed class SortHelperTests
{
    /// <summary>The median the way the drift checks used to take it: sort a copy (NaN first), take the middle.</summary>
    private static double SortedMedian(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        var n = sorted.Length;
        return n == 0 ? double.NaN : n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[(n / 2) - 1] + sorted[n / 2]);
    }

    /// <summary>Arrays of 0 to 3,000 values with many ties, sorted and reversed runs, infinities and NaNs.</summary>
    private static Arbitrary<double[]> Values() =>
        Gen.Choose(0, 100_000).Select(seed =>
        {
            var rng = new Random(seed);
            var n = rng.Next(4) == 0 ? rng.Next(0, 6) : rng.Next(0, 3001);
            var kind = rng.Next(5);
            var v = new double[n];
            for (var i = 0; i < n; i++)
            {
                v[i] = kind switch
                {
                    0 => rng.NextDouble(),
                    1 => rng.Next(4),                       // heavy ties
                    2 => i,                                 // sorted
                    3 => n - i,                             // reversed
                    _ => rng.Next(20) switch { 0 => double.NaN, 1 => double.PositiveInfinity, 2 => double.NegativeInfinity, _ => rng.NextDouble() - 0.5 },
                };
            }

            return v;
        }).ToArbitrary();

    [Fact]
    public void Median_EqualsTheMiddleOfTheSortedValues()
    {
        Prop.ForAll(Values(), values =>
        {
            var expected = SortedMedian(values);
            var actual = SortHelper.Median((double[])values.Clone());
            return expected.Equals(actual); // double.Equals: NaN equals NaN, otherwise exact
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Median_KeepsTheValuesAndCountsNaNAsTheSmallest()
    {
        double[] values = [3, double.NaN, 1, double.NaN, 2];
        Assert.Equal(1, SortHelper.Median(values)); // sorted: NaN NaN 1 2 3
        Assert.Equal(new double[] { double.NaN, double.NaN, 1, 2, 3 }, values.Order());
        Assert.True(double.IsNaN(SortHelper.Median([double.NaN, double.NaN, 5, 6]))); // middle pair: NaN and 5
        Assert.Equal(5.5, SortHelper.Median([double.NaN, 5, 6, 7]));
        Assert.True(double.IsNaN(SortHelper.Median([])));
    }
}
