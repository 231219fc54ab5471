using System.Globalization;
using Har.Testing;

namespace Har.Drift.Tests.Calibration;

/// <summary>
/// The accuracy-estimation study on ../shared/data/uci-hapt alone (the full alarm study also runs it): with
/// HAR_DRIFT_CALIBRATION=full or =accuracy it rewrites the "Estimated vs measured accuracy" section of
/// docs/drift-calibration.md; skipped otherwise (it runs the model on every test session under every fault).
/// </summary>
public sealed class AccuracyStudyTests
{
    private const string Begin = "<!-- accuracy-study:begin -->";
    private const string End = "<!-- accuracy-study:end -->";

    [Fact]
    public void Study_RewritesTheAccuracySection()
    {
        TestPaths.RequireSharedData();
        if (Environment.GetEnvironmentVariable("HAR_DRIFT_CALIBRATION") is not ("full" or "accuracy"))
        {
            Assert.Skip("Skipped: the accuracy study takes minutes; run it with HAR_DRIFT_CALIBRATION=accuracy (see docs/drift-calibration.md).");
        }

        var seed = int.TryParse(Environment.GetEnvironmentVariable("HAR_DRIFT_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : Random.Shared.Next(1, 1_000_000);
        var test = HaptCalibration.AllSessions.Where(x => x.Split == "test").ToList();
        var result = AccuracyStudy.Run(HaptCalibration.AllSessions, test, AlarmStudy.Faults, seed);
        var path = Path.Combine(TestPaths.RepoRoot, "docs", "drift-calibration.md");
        var doc = File.ReadAllText(path).ReplaceLineEndings("\n");
        var from = doc.IndexOf(Begin, StringComparison.Ordinal);
        var to = doc.IndexOf(End, StringComparison.Ordinal);
        Assert.True(from >= 0 && to > from, $"docs/drift-calibration.md has no '{Begin}' … '{End}' section to rewrite.");
        File.WriteAllText(path, doc[..(from + Begin.Length)] + "\n" + string.Create(CultureInfo.InvariantCulture, $"Seed {seed}.\n\n") + AccuracyStudy.Markdown(result) + doc[to..]);

        // Every fault of the table was measured, and the clean streams name no fault.
        Assert.All(result.FaultTable, f => Assert.True(f.Windows > 0, f.Fault));
        Assert.Equal(0, result.Rows[0].NamedShare);
    }
}
