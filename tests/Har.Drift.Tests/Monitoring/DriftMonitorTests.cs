using Microsoft.Extensions.Time.Testing;
using Prometheus;

namespace Har.Drift.Tests.Monitoring;

public sealed class DriftMonitorTests
{
    private static readonly Lazy<ReferenceProfile> Shared = new(() => Synthetic.Profile());

    [Fact]
    public void Start_FakeTimeAdvances_ScoresOnTheInterval()
    {
        var time = new FakeTimeProvider();
        var registry = Metrics.NewCustomRegistry();
        using var monitor = new DriftMonitor(Shared.Value, new DriftMonitorOptions { WindowLength = 1000, ScoreInterval = TimeSpan.FromSeconds(30), MetricsRegistry = registry }, time);
        var reports = new List<DriftReport>();
        monitor.Scored += (_, r) => reports.Add(r);
        monitor.Append(Synthetic.Recording(42, 1500));
        monitor.Start();

        time.Advance(TimeSpan.FromSeconds(29));
        Assert.Empty(reports);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Single(reports);
        monitor.Append(Synthetic.Recording(44, 500)); // half a window of new frames
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(2, reports.Count);
        Assert.Same(reports[^1], monitor.Latest);
    }

    [Fact]
    public void Start_StreamStalls_TheSameFramesAreNotScoredAgain()
    {
        // Each scoring adds its window's evidence to the alarm: re-scoring a stalled stream's frames every interval would
        // count the same evidence again and again.
        var time = new FakeTimeProvider();
        using var monitor = new DriftMonitor(Shared.Value, new DriftMonitorOptions { WindowLength = 1000, ScoreInterval = TimeSpan.FromSeconds(30), MetricsRegistry = Metrics.NewCustomRegistry() }, time);
        var reports = new List<DriftReport>();
        monitor.Scored += (_, r) => reports.Add(r);
        monitor.Append(Synthetic.Recording(42, 1500));
        monitor.Start();
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Single(reports);

        time.Advance(TimeSpan.FromSeconds(90));
        monitor.Append(Synthetic.Recording(45, 499)); // less than half a window
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Single(reports);

        // On demand it scores whatever the window holds.
        Assert.Same(monitor.ScoreNow(), monitor.Latest);
        Assert.Equal(2, reports.Count);
    }

    [Fact]
    public void Append_MoreThanWindow_KeepsOnlyTheLatestFrames()
    {
        using var monitor = new DriftMonitor(Shared.Value, new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = Metrics.NewCustomRegistry() });
        var data = Synthetic.Recording(43, 2500);
        monitor.Append(data);
        Assert.Equal(1000, monitor.BufferedFrames);

        // The last 1000 frames, scored directly, give the same report as the monitor's window.
        var direct = new DriftScorer(Shared.Value).Score(data.AsSpan(1500 * 6));
        var viaMonitor = monitor.ScoreNow();
        Assert.Equal(direct.Channels.Select(c => c.Score), viaMonitor.Channels.Select(c => c.Score));
    }

    [Fact]
    public async Task ScoreNow_ExportsMetricsToTheCallerRegistry()
    {
        var registry = Metrics.NewCustomRegistry();
        using var monitor = new DriftMonitor(Shared.Value, new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = registry, MonitorName = "champion" });
        monitor.Append(Synthetic.Recording(44, 1000));
        var report = monitor.ScoreNow();

        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream, TestContext.Current.CancellationToken);
        var text = System.Text.Encoding.UTF8.GetString(stream.ToArray());
        Assert.Contains("har_drift_score{monitor=\"champion\",channel=\"ax\"}", text, StringComparison.Ordinal);
        Assert.Contains("har_drift_pvalue{monitor=\"champion\",channel=\"gz\",test=\"psi\"}", text, StringComparison.Ordinal);
        Assert.Contains("har_drift_verdict{monitor=\"champion\",channel=\"ay\"} 1", text, StringComparison.Ordinal);
        Assert.Contains(report.Channels[0].Score.ToString("R", System.Globalization.CultureInfo.InvariantCulture)[..5], text, StringComparison.Ordinal);
    }

    [Fact]
    public void AppendAndRecordPrediction_SteadyState_AllocateNothing()
    {
        var profile = Har.Drift.Tests.Outputs.OutputSamples.Profile(Shared.Value);
        using var monitor = new DriftMonitor(profile, new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = Metrics.NewCustomRegistry() });
        var data = Synthetic.Recording(47, 6400);
        monitor.Append(data.AsSpan(0, 64 * 6));
        monitor.RecordPrediction(0, 0.9f, 0.3f);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var w = 1; w < 100; w++)
        {
            monitor.Append(data.AsSpan(w * 64 * 6, 64 * 6));
            monitor.RecordPrediction(w % 6, 0.9f, 0.3f);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
