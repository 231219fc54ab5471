using Prometheus;

namespace Har.Drift.Tests.Physics;

/// <summary>The per-device evidence: causal, bounded, never counted twice.</summary>
public sealed class DeviceHistoryTests
{
    [Fact]
    public void Score_WindowWithoutTurns_JudgedOnTheDevicesEarlierTurns()
    {
        // A gyroscope 20 % high: a window without turns cannot show it on its own, but the same device turned earlier.
        var earlier = SimulatedImu.Record(seed: 910, seconds: 20);
        earlier.Gain(1.2);
        var still = SimulatedImu.Record(seed: 911, seconds: 20, turns: false);
        still.Gain(1.2);
        var scorer = new DriftScorer(SimulatedProfiles.RigidImu);

        Assert.DoesNotContain(scorer.Score(still.Interleaved()).Findings, f => f.Kind == SensorFindingKind.RotationMismatch);

        var history = new DeviceHistory();
        scorer.Score(earlier.Interleaved(), history);
        var pairs = history.RotationPairs;
        var report = scorer.Score(still.Interleaved(), history);

        Assert.True(pairs >= ImuPhysics.MinPairs, $"{pairs} pairs");
        var f = Assert.Single(report.Findings, f => f.Kind == SensorFindingKind.RotationMismatch);
        Assert.Equal(pairs, f.Samples);
        Assert.InRange(f.Value, 1.15, 1.25);
        Assert.Equal(2000, history.FramesSeen);
    }

    [Fact]
    public void Score_HealthyEarlierTurns_DoNotFlagAHealthyWindow()
    {
        var history = new DeviceHistory();
        var scorer = new DriftScorer(SimulatedProfiles.RigidImu);
        scorer.Score(SimulatedImu.Record(seed: 912, seconds: 20).Interleaved(), history);
        var report = scorer.Score(SimulatedImu.Record(seed: 913, seconds: 20, turns: false).Interleaved(), history);

        // The checks that use the history. (The window-only all-blocks magnitude is left out: this synthetic profile
        // was calibrated on windows that all contain turns, whose block means average below 1 g.)
        Assert.DoesNotContain(report.Findings, f => f.Kind is SensorFindingKind.RotationMismatch or SensorFindingKind.AccelerometerOffset);
        Assert.DoesNotContain(report.Findings, f => f is { Kind: SensorFindingKind.GravityMagnitude, Channel: not null });
    }

    [Fact]
    public void Score_ManyWindows_MemoryStaysBounded()
    {
        var history = new DeviceHistory();
        var scorer = new DriftScorer(SimulatedProfiles.RigidImu);
        for (var i = 0; i < 12; i++)
        {
            scorer.Score(SimulatedImu.Record(seed: 920 + i, seconds: 20).Interleaved(), history);
        }

        Assert.Equal(DeviceHistory.MaxRotationPairs, history.RotationPairs);
        Assert.InRange(history.StillBlocks, 1, 6 * DeviceHistory.MaxStillBlocksPerDirection);

        history.Clear();
        Assert.Equal(0, history.RotationPairs);
        Assert.Equal(0, history.StillBlocks);
        Assert.Equal(0, history.FramesSeen);
    }

    [Fact]
    public void Monitor_RescoringTheSameFrames_DoesNotCountTheirEvidenceTwice()
    {
        using var monitor = new DriftMonitor(SimulatedProfiles.RigidImu, new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = Metrics.NewCustomRegistry() });
        monitor.Append(SimulatedImu.Record(seed: 930, seconds: 20).Interleaved());
        var first = monitor.ScoreNow();
        var pairs = monitor.History.RotationPairs;
        var blocks = monitor.History.StillBlocks;
        var second = monitor.ScoreNow();

        Assert.True(pairs >= ImuPhysics.MinPairs, $"{pairs} pairs");
        Assert.Equal(pairs, monitor.History.RotationPairs);
        Assert.Equal(blocks, monitor.History.StillBlocks);
        Assert.Equal(first.Findings.Count, second.Findings.Count);
    }
}
