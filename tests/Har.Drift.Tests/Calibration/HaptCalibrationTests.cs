using System.Globalization;
using Har.Testing;

namespace Har.Drift.Tests.Calibration;

/// <summary>Reproduces docs/drift-calibration.md from ../shared/data/uci-hapt (skipped when the data is absent).</summary>
public sealed class HaptCalibrationTests
{
    private static string ReportPath => Path.Combine(TestPaths.RepoRoot, "docs", "drift-calibration.md");

    [Fact]
    public void Study_ReproducesTheCommittedReport()
    {
        var result = HaptCalibration.Get();
        var table = result.ToMarkdown();
        if (Environment.GetEnvironmentVariable("HAR_DRIFT_WRITE_TABLE") is { Length: > 0 } target)
        {
            File.WriteAllText(target, table + "\n" + result.FirstMinuteMarkdown() + "\n" + result.WindowOnlyMarkdown() + "\n" + Floors(result) + "\n" + result.ConsistencyMarkdown());
        }

        var report = File.ReadAllText(ReportPath).ReplaceLineEndings("\n");
        Assert.Contains(table, report, StringComparison.Ordinal);
        Assert.Contains(result.FirstMinuteMarkdown(), report, StringComparison.Ordinal);
        Assert.Contains(result.WindowOnlyMarkdown(), report, StringComparison.Ordinal);
        Assert.Contains(Floors(result), report, StringComparison.Ordinal);
        Assert.Contains(result.ConsistencyMarkdown(), report, StringComparison.Ordinal);
    }

    [Fact]
    public void Study_FalseAlarms_AtMostFivePercentPerChannel()
    {
        var clean = HaptCalibration.Get().Rows[0];
        Assert.StartsWith("clean", clean.Name, StringComparison.Ordinal);
        Assert.All(clean.DriftedPerChannel, d => Assert.True(d <= 0.05 * clean.Windows, $"{d} of {clean.Windows} clean windows flagged"));
    }

    [Fact]
    public void Study_ConsistencyChecksWithDeviceHistory_FalseAlarmsAtMostFivePercentEach()
    {
        var clean = HaptCalibration.Get().Rows[0];
        Assert.True(clean.Gravity <= 0.05 * clean.Windows, $"gravity magnitude: {clean.Gravity} of {clean.Windows}");
        Assert.True(clean.Rotation <= 0.05 * clean.Windows, $"rotation mismatch: {clean.Rotation} of {clean.Windows}");
        Assert.True(clean.TurnOffset <= 0.05 * clean.Windows, $"turn offset: {clean.TurnOffset} of {clean.Windows}");
    }

    [Fact]
    public void Study_GyroscopeFaultsWithDeviceHistory_FlaggedInAtLeast95Percent()
    {
        foreach (var row in HaptCalibration.Get().Rows.Where(r => r.Name.StartsWith("gyro gain", StringComparison.Ordinal) || r.Name.Contains("gx <-> gy", StringComparison.Ordinal)))
        {
            Assert.True(row.AnyFlag >= 0.95 * row.Windows, $"{row.Name}: {row.AnyFlag} of {row.Windows}");
        }
    }

    [Fact]
    public void Study_StuckSensors_FlaggedInAtLeast95Percent()
    {
        foreach (var row in HaptCalibration.Get().Rows.Where(r => r.Name.Contains("stuck", StringComparison.Ordinal)))
        {
            Assert.True(row.AnyDrifted >= 0.95 * row.Windows, $"{row.Name}: {row.AnyDrifted} of {row.Windows}");
        }
    }

    private static string Floors(HaptCalibration.Result r)
    {
        var inv = CultureInfo.InvariantCulture;
        return $"| floor | {string.Join(" | ", HaptCalibration.ChannelNames)} |\n|---|{string.Concat(Enumerable.Repeat("---:|", 6))}\n"
            + $"| KS D | {string.Join(" | ", r.KsFloor.Select(v => v.ToString("F3", inv)))} |\n"
            + $"| PSI | {string.Join(" | ", r.PsiFloor.Select(v => v.ToString("F3", inv)))} |\n";
    }
}
