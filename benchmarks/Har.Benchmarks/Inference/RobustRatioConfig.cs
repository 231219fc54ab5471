using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Mathematics;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Har.Benchmarks.Inference;

/// <summary>
/// Adds ratios to the baseline that a shared, loaded machine does not swamp: the ratio of the medians
/// and the ratio of the minima of the iterations (interference from other processes only ever adds
/// time, so with many short iterations the minimum approaches the uncontended cost). BenchmarkDotNet's
/// own <c>Ratio</c> (the mean of the per-iteration ratios) stays beside them.
/// </summary>
public sealed class RobustRatioConfig : ManualConfig
{
    /// <summary>Initializes a new instance of the <see cref="RobustRatioConfig"/> class.</summary>
    public RobustRatioConfig()
    {
        AddColumn(StatisticColumn.Median, StatisticColumn.Min, new StatisticRatioColumn("MedianRatio", s => s.Median), new StatisticRatioColumn("MinRatio", s => s.Min));
    }

    private sealed class StatisticRatioColumn(string name, Func<Statistics, double> statistic) : IColumn
    {
        public string Id => nameof(StatisticRatioColumn) + "." + name;

        public string ColumnName => name;

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Baseline;

        public int PriorityInCategory => 10;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Dimensionless;

        public string Legend => $"{name[..^5]} of this benchmark's iterations / {name[..^5]} of the baseline's (same run)";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var baseline = summary.GetBaseline(summary.GetLogicalGroupKey(benchmarkCase));
            var current = summary[benchmarkCase]?.ResultStatistics;
            var reference = baseline is null ? null : summary[baseline]?.ResultStatistics;
            if (current is null || reference is null || statistic(reference) <= 0)
            {
                return "?";
            }

            return (statistic(current) / statistic(reference)).ToString("0.00", CultureInfo.InvariantCulture);
        }

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public bool IsAvailable(Summary summary) => true;

        public override string ToString() => ColumnName;
    }
}
