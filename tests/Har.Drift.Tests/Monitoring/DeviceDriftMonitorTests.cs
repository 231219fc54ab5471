using Har.Drift.Tests.Outputs;
using Har.Drift.Tests.Physics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Prometheus;

namespace Har.Drift.Tests.Monitoring;

public sealed class DeviceDriftMonitorTests
{
    private const int Channels = 6;
    private static readonly Lazy<ReferenceProfile> Imu = new(() => OutputSamples.Profile(SimulatedProfiles.RigidImu));

    [Fact]
    public void Observe_StuckSensorOnOneDevice_FindingForThatDeviceOnly()
    {
        var time = new FakeTimeProvider();
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(), time);
        monitor.Start();
        var healthy = SimulatedImu.Record(seed: 940, seconds: 20).Interleaved();
        var stuck = SimulatedImu.Record(seed: 941, seconds: 20).Interleaved();
        for (var f = 300; f < 1000; f++)
        {
            stuck[(f * Channels) + 1] = stuck[300 * Channels + 1]; // ay stuck for the last 14 s
        }

        // The two devices' windows arrive interleaved, as on a serving pipeline: 128-frame windows every 64 frames.
        FeedSliding(monitor, ("healthy", healthy), ("stuck", stuck));
        time.Advance(TimeSpan.FromSeconds(10));

        var bad = monitor.GetLatest("stuck")!;
        var good = monitor.GetLatest("healthy")!;
        Assert.Equal("stuck", bad.Device);
        var finding = Assert.Single(bad.Findings, f => f.Kind == SensorFindingKind.Flatline);
        Assert.Equal("ay", finding.Channel);
        Assert.Empty(good.Findings);
        Assert.Equal(1000, good.Channels[0].N);
    }

    [Fact]
    public void Observe_GyroscopeGainOnOneDevice_PhysicsFindingForThatDeviceOnly()
    {
        var time = new FakeTimeProvider();
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(), time);
        monitor.Start();
        var faulty = SimulatedImu.Record(seed: 902, seconds: 20);
        faulty.Gain(1.2);
        FeedSliding(monitor, ("healthy", SimulatedImu.Record(seed: 942, seconds: 20).Interleaved()), ("faulty", faulty.Interleaved()));
        time.Advance(TimeSpan.FromSeconds(10));

        var f = Assert.Single(monitor.GetLatest("faulty")!.Findings, f => f.Kind == SensorFindingKind.RotationMismatch);
        Assert.InRange(f.Value, 1.15, 1.25);
        Assert.DoesNotContain(monitor.GetLatest("healthy")!.Findings, f => f.Kind is SensorFindingKind.RotationMismatch or SensorFindingKind.GravityMagnitude or SensorFindingKind.AccelerometerOffset);
    }

    [Fact]
    public void ScoreOutputsNow_DeviceAlarmNamesAFaultOfTheTable_ItsPredictionsEstimatedUnderTheFault()
    {
        // The reference: right 90 % of the time on clean windows, 20 % with the gyroscope in deg/s.
        var (c, conf, ent) = OutputSamples.Draw(seed: 21, n: 1000, OutputSamples.ReferenceMix);
        var degrees = InputFault.Standard(SimulatedProfiles.RigidImu.ChannelNames, 50).Single(f => f.Description == "gyroscope in deg/s");
        var outputs = OutputReference.FromPredictions(OutputSamples.Labels, c, conf, ent)
            .WithAccuracy(c, conf, [.. c.Select((k, i) => i % 10 == 0 ? (k + 1) % 6 : k)])
            .WithFaultAccuracy(degrees, c, [.. c.Select((k, i) => i % 5 == 0 ? k : (k + 1) % 6)]);
        var time = new FakeTimeProvider();
        using var monitor = new DeviceDriftMonitor(SimulatedProfiles.RigidImu.WithOutputs(outputs), Options(), time);
        monitor.Start();
        var healthy = SimulatedImu.Record(seed: 950, seconds: 20).Interleaved();
        var faulty = degrees.Apply(SimulatedImu.Record(seed: 951, seconds: 20).Interleaved(), Channels);
        FeedSliding(monitor, ("healthy", healthy), ("faulty", faulty));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(monitor.GetLatest("faulty")!.Alarm is { Raised: true, Cause: DriftCause.Units }, monitor.GetLatest("faulty")!.Alarm?.ToString());

        // 100 more predictions per device after the alarm: the faulty device's are estimated with the accuracy under the fault.
        for (var i = 0; i < 100; i++)
        {
            monitor.Observe("healthy", healthy.AsSpan(0, 128 * Channels), 0, c[i], conf[i], ent[i]);
            monitor.Observe("faulty", faulty.AsSpan(0, 128 * Channels), 0, c[i], conf[i], ent[i]);
        }

        var verdict = monitor.ScoreOutputsNow()!;
        var named = Assert.Single(verdict.NamedFaults);
        Assert.Equal("gyroscope in deg/s", named.Description);
        Assert.Equal(100, named.Predictions);
        Assert.Equal(0.2, named.ReferenceAccuracy, 3);
        Assert.True(verdict.EstimateReliable, verdict.ToString());
        Assert.Contains("of predictions under named faults: gyroscope in deg/s 0.20", verdict.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetAlarmed_OneDeviceWithAUnitError_ListsThatDeviceAndCountsItUnderItsCause()
    {
        var registry = Metrics.NewCustomRegistry();
        var time = new FakeTimeProvider();
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(registry), time);
        monitor.Start();
        Assert.Empty(monitor.GetAlarmed());
        var fresh = await Export(registry);
        Assert.All(Imu.Value.ChannelNames, c => Assert.Contains($"har_drift_devices_drifted{{monitor=\"devices\",channel=\"{c}\"}} 0", fresh, StringComparison.Ordinal));
        Assert.Contains("har_drift_devices{monitor=\"devices\"} 0", fresh, StringComparison.Ordinal); // the share's denominator, before any tick
        var degrees = InputFault.Standard(SimulatedProfiles.RigidImu.ChannelNames, 50).Single(f => f.Description == "gyroscope in deg/s");
        FeedSliding(
            monitor,
            ("healthy-1", SimulatedImu.Record(seed: 960, seconds: 20).Interleaved()),
            ("faulty", degrees.Apply(SimulatedImu.Record(seed: 961, seconds: 20).Interleaved(), Channels)),
            ("healthy-2", SimulatedImu.Record(seed: 962, seconds: 20).Interleaved()));
        time.Advance(TimeSpan.FromSeconds(10));

        // Every device was scored; only the faulty one alarms, and the listing says why.
        Assert.All(["healthy-1", "healthy-2", "faulty"], d => Assert.NotNull(monitor.GetLatest(d)));
        var alarmed = Assert.Single(monitor.GetAlarmed());
        Assert.Equal("faulty", alarmed.Device);
        Assert.Equal(DriftCause.Units, alarmed.Alarm!.Cause);
        Assert.NotEmpty(alarmed.Alarm.Channels);
        Assert.All(alarmed.Alarm.Channels, c => Assert.Contains(c, new[] { "gx", "gy", "gz" }));

        // The gauge by cause: 1 under Units, every other cause exported at 0 (a cleared alarm reads 0, not a stale 1).
        var text = await Export(registry);
        Assert.Contains("har_drift_devices_alarmed{monitor=\"devices\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("har_drift_devices_alarmed_by_cause{monitor=\"devices\",cause=\"Units\"} 1", text, StringComparison.Ordinal);
        foreach (var cause in Enum.GetValues<DriftCause>().Where(c => c is not DriftCause.None and not DriftCause.Units))
        {
            Assert.Contains($"har_drift_devices_alarmed_by_cause{{monitor=\"devices\",cause=\"{cause}\"}} 0", text, StringComparison.Ordinal);
        }

        // Per channel, how many devices' latest reports have it Drifted: the fleet-wide count HarChannelDrift reads (the
        // worst device's verdict, har_drift_verdict, belongs to whichever device has the largest D at that tick).
        string[] devices = ["healthy-1", "healthy-2", "faulty"];
        AssertDriftedCounts(monitor, text, devices);
        Assert.Contains(Imu.Value.ChannelNames, c => DriftedCount(monitor, devices, c) > 0);

        // The device removed: nothing alarms any more, and the gauges follow.
        Assert.True(monitor.Remove("faulty"));
        Assert.Empty(monitor.GetAlarmed());
        var after = await Export(registry);
        Assert.Contains("har_drift_devices_alarmed_by_cause{monitor=\"devices\",cause=\"Units\"} 0", after, StringComparison.Ordinal);
        AssertDriftedCounts(monitor, after, ["healthy-1", "healthy-2"]);
    }

    /// <summary>
    /// A soak of the service logged 10 MB an hour, 98 % of it the drift monitor's Warnings: every drifted channel and
    /// every finding of every device's window, repeated every scoring while the condition lasted, and nothing when a
    /// device's alarm — the decision — was raised. Now the alarm's changes are logged and the window's evidence is Debug.
    /// </summary>
    [Fact]
    public void Logging_AWarningWhenADevicesAlarmIsRaised_TheWindowsEvidenceAtDebug()
    {
        var logger = new DriftStateTests.ListLogger();
        var time = new FakeTimeProvider();
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(null), time, logger);
        monitor.Start();
        var degrees = InputFault.Standard(SimulatedProfiles.RigidImu.ChannelNames, 50).Single(f => f.Description == "gyroscope in deg/s");
        FeedSliding(
            monitor,
            ("healthy", SimulatedImu.Record(seed: 970, seconds: 20).Interleaved()),
            ("faulty", degrees.Apply(SimulatedImu.Record(seed: 971, seconds: 20).Interleaved(), Channels)));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal("faulty", Assert.Single(monitor.GetAlarmed()).Device);

        // Per device, one Warning: the alarm raised (the pooled outputs of all devices have their own line).
        var warnings = logger.Entries.Where(e => e.Level >= LogLevel.Warning && e.Message.Contains(", device ", StringComparison.Ordinal)).Select(e => e.Message).ToList();
        Assert.True(warnings.Count == 1, string.Join("\n", warnings));
        var raised = warnings[0];
        Assert.StartsWith("Drift monitor devices, device faulty: drift alarm raised: ALARM Units", raised, StringComparison.Ordinal);

        // The pooled outputs' verdict is logged when it changes, not at every tick while it stays Drifted.
        for (var i = 0; i < 3; i++)
        {
            time.Advance(TimeSpan.FromSeconds(10));
            monitor.Tick();
        }

        Assert.Equal(DriftVerdict.Drifted, monitor.LatestOutputs?.Verdict);
        Assert.Single(logger.Entries, e => e.Message.Contains("model outputs drifted", StringComparison.Ordinal));

        // The evidence of each scoring is still there for whoever turns Debug on.
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Debug && e.Message.Contains("device faulty: sensor finding", StringComparison.Ordinal));
    }

    [Fact]
    public void Tick_DeviceWithoutAFullWindow_NotScoredYet()
    {
        var time = new FakeTimeProvider();
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(), time);
        monitor.Start();
        var data = SimulatedImu.Record(seed: 943, seconds: 20).Interleaved();
        monitor.Observe("d", data.AsSpan(0, 900 * Channels), 0, 0, 0.9f, 0.3f);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Null(monitor.GetLatest("d"));

        monitor.Observe("d", data.AsSpan(900 * Channels, 100 * Channels), 0, 0, 0.9f, 0.3f);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.NotNull(monitor.GetLatest("d"));
    }

    [Fact]
    public async Task Observe_MoreDevicesStreamingThanTheCap_TheMonitoredOnesKeepCollectingWholeWindows()
    {
        // Four devices stream at once into a monitor that keeps three (default MinimumIdleForEviction: one minute).
        var registry = Metrics.NewCustomRegistry();
        var time = new FakeTimeProvider();
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(registry, maxDevices: 3), time);
        monitor.Start();
        string[] devices = ["d0", "d1", "d2", "d3"];
        FeedSliding(monitor, [.. devices.Select((d, i) => (d, SimulatedImu.Record(seed: 960 + i, seconds: 20).Interleaved()))]);
        time.Advance(TimeSpan.FromSeconds(10));

        // The first three keep their monitors and are scored on whole windows; the fourth waits for a free monitor.
        foreach (var d in devices[..3])
        {
            Assert.True(monitor.IsMonitored(d), d);
            Assert.Equal(1000, monitor.GetLatest(d)!.Channels[0].N);
        }

        Assert.False(monitor.IsMonitored("d3"));
        Assert.Null(monitor.GetLatest("d3"));
        var text = await Export(registry);
        Assert.Contains("har_drift_unmonitored_observations_total{monitor=\"devices\"} 15", text, StringComparison.Ordinal); // d3's 15 windows
        Assert.Contains("har_drift_device_capacity{monitor=\"devices\"} 3", text, StringComparison.Ordinal);
        Assert.DoesNotContain("reason=\"capacity\"", text, StringComparison.Ordinal);

        // Its predictions still count for output drift: 4 devices × 15 windows.
        Assert.Equal(60, monitor.ScoreOutputsNow()!.Predictions);
    }

    [Fact]
    public async Task Observe_MoreDevicesStreamingThanTheCap_WithoutMinimumIdle_TheyEvictEachOtherAndNoneIsScored()
    {
        // What MinimumIdleForEviction prevents: each new device takes the least recently seen one's monitor, so with four
        // devices streaming round-robin into three monitors every device is evicted before it collects a window.
        var registry = Metrics.NewCustomRegistry();
        var time = new FakeTimeProvider();
        var options = Options(registry, maxDevices: 3);
        options.MinimumIdleForEviction = TimeSpan.Zero;
        using var monitor = new DeviceDriftMonitor(Imu.Value, options, time);
        monitor.Start();
        string[] devices = ["d0", "d1", "d2", "d3"];
        FeedSliding(monitor, [.. devices.Select((d, i) => (d, SimulatedImu.Record(seed: 960 + i, seconds: 20).Interleaved()))]);
        time.Advance(TimeSpan.FromSeconds(10));

        Assert.All(devices, d => Assert.Null(monitor.GetLatest(d)));
        Assert.Contains("har_drift_devices_evicted_total{monitor=\"devices\",reason=\"capacity\"} 57", await Export(registry), StringComparison.Ordinal); // 60 arrivals, 3 monitors
    }

    [Fact]
    public async Task Observe_CapReached_ANewDeviceTakesTheMonitorOfOneSilentForTheMinimumIdleOnly()
    {
        var registry = Metrics.NewCustomRegistry();
        var time = new FakeTimeProvider();
        var options = Options(registry, maxDevices: 2);
        options.MinimumIdleForEviction = TimeSpan.FromSeconds(20);
        using var monitor = new DeviceDriftMonitor(Imu.Value, options, time);
        var window = SimulatedImu.Record(seed: 944, seconds: 3).Interleaved().AsSpan(0, 128 * Channels).ToArray();
        monitor.Observe("d0", window, 0, 0, 0.9f, 0.3f);
        monitor.Observe("d1", window, 0, 0, 0.9f, 0.3f);
        time.Advance(TimeSpan.FromSeconds(30));
        monitor.Observe("d1", window, 0, 0, 0.9f, 0.3f);

        monitor.Observe("d2", window, 0, 0, 0.9f, 0.3f); // d0 silent for 30 s: its monitor is taken
        monitor.Observe("d3", window, 0, 0, 0.9f, 0.3f); // d1 and d2 were just seen: not monitored

        Assert.False(monitor.IsMonitored("d0"));
        Assert.True(monitor.IsMonitored("d1"));
        Assert.True(monitor.IsMonitored("d2"));
        Assert.False(monitor.IsMonitored("d3"));
        var text = await Export(registry);
        Assert.Contains("har_drift_devices_evicted_total{monitor=\"devices\",reason=\"capacity\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("har_drift_unmonitored_observations_total{monitor=\"devices\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("har_drift_devices{monitor=\"devices\"} 2", text, StringComparison.Ordinal);

        // Once d1 and d2 fall silent too, d3 is taken at its next window.
        time.Advance(TimeSpan.FromSeconds(25));
        monitor.Observe("d3", window, 0, 0, 0.9f, 0.3f);
        Assert.True(monitor.IsMonitored("d3"));
        Assert.False(monitor.IsMonitored("d1"));
    }

    [Fact]
    public void Observe_CapReached_ADeviceWhoseAlarmIsRaisedKeepsItsMonitor()
    {
        var time = new FakeTimeProvider();
        var options = Options(maxDevices: 2);
        options.MinimumIdleForEviction = TimeSpan.Zero; // even so
        using var monitor = new DeviceDriftMonitor(Imu.Value, options, time);
        monitor.Start();
        var degrees = InputFault.Standard(SimulatedProfiles.RigidImu.ChannelNames, 50).Single(f => f.Description == "gyroscope in deg/s");
        var healthy = SimulatedImu.Record(seed: 950, seconds: 20).Interleaved();
        FeedSliding(monitor, ("faulty", degrees.Apply(SimulatedImu.Record(seed: 951, seconds: 20).Interleaved(), Channels)), ("healthy", healthy));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(monitor.GetLatest("faulty")!.Alarm is { Raised: true }, monitor.GetLatest("faulty")!.Alarm?.ToString());

        // "faulty" is now the least recently seen; a new device takes the healthy one's monitor instead.
        monitor.Observe("new", healthy.AsSpan(0, 128 * Channels), 0, 0, 0.9f, 0.3f);

        Assert.True(monitor.IsMonitored("faulty"));
        Assert.Equal("faulty", Assert.Single(monitor.GetAlarmed()).Device);
        Assert.False(monitor.IsMonitored("healthy"));
        Assert.True(monitor.IsMonitored("new"));
    }

    [Fact]
    public async Task Tick_WhileThePreviousTickStillScores_NoWindowIsScoredTwice()
    {
        // Not started: the ticks are called by hand, the second while the first is held inside its first scoring (as a
        // tick scoring many devices on a loaded host is still running when the timer fires again).
        var registry = Metrics.NewCustomRegistry();
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(registry), new FakeTimeProvider());
        FeedSliding(monitor, ("a", SimulatedImu.Record(seed: 970, seconds: 20).Interleaved()), ("b", SimulatedImu.Record(seed: 971, seconds: 20).Interleaved()));
        var scored = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var inFirst = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        monitor.Scored += (_, r) =>
        {
            scored.Enqueue(r.Device!);
            if (scored.Count == 1)
            {
                inFirst.Set();
                Assert.True(release.Wait(TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken));
            }
        };

        var first = Task.Run(monitor.Tick, TestContext.Current.CancellationToken);
        Assert.True(inFirst.Wait(TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken));
        monitor.Tick();
        release.Set();
        await first;

        Assert.Equal(["a", "b"], scored.Order());
        Assert.Contains("har_drift_scoring_ticks_skipped_total{monitor=\"devices\"} 1", await Export(registry), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tick_DeviceIdleLongerThanTheTimeout_Evicted()
    {
        var registry = Metrics.NewCustomRegistry();
        var time = new FakeTimeProvider();
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(registry), time);
        monitor.Start();
        var window = SimulatedImu.Record(seed: 945, seconds: 3).Interleaved().AsSpan(0, 128 * Channels).ToArray();
        monitor.Observe("quiet", window, 0, 0, 0.9f, 0.3f);
        for (var s = 0; s < 5; s++)
        {
            monitor.Observe("busy", window, 0, 0, 0.9f, 0.3f);
            time.Advance(TimeSpan.FromSeconds(10));
        }

        // Idle timeout 60 s: "quiet" last sent at t = 0, "busy" at t = 40 s; the ticks at 10 … 50 s keep both.
        Assert.Equal(2, monitor.DeviceCount);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(1, monitor.DeviceCount);
        Assert.Null(monitor.GetLatest("quiet"));
        Assert.Contains("har_drift_devices_evicted_total{monitor=\"devices\",reason=\"idle\"} 1", await Export(registry), StringComparison.Ordinal);
    }

    [Fact]
    public void Observe_KnownDevices_AllocateNothing()
    {
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(), new FakeTimeProvider());
        var data = SimulatedImu.Record(seed: 946, seconds: 130).Interleaved();
        string[] devices = ["a", "b", "c"];
        foreach (var d in devices)
        {
            monitor.Observe(d, data.AsSpan(0, 128 * Channels), 0, 1, 0.8f, 0.5f);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var w = 1; w < 100; w++)
        {
            foreach (var d in devices)
            {
                monitor.Observe(d, data.AsSpan(w * 64 * Channels, 128 * Channels), 64, w % 6, 0.8f, 0.5f);
            }
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public async Task Tick_ClassMixShifts_OutputDriftMoves()
    {
        var registry = Metrics.NewCustomRegistry();
        var time = new FakeTimeProvider();
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(registry), time);
        monitor.Start();
        var window = SimulatedImu.Record(seed: 947, seconds: 3).Interleaved().AsSpan(0, 128 * Channels).ToArray();
        var (c, conf, ent) = OutputSamples.Draw(seed: 8, n: 500, OutputSamples.ReferenceMix);
        for (var i = 0; i < c.Length; i++)
        {
            monitor.Observe($"d{i % 5}", window, 0, c[i], conf[i], ent[i]);
        }

        time.Advance(TimeSpan.FromSeconds(10));
        var before = monitor.LatestOutputs!;
        Assert.Equal(DriftVerdict.Stable, before.Verdict);

        // The fleet now mostly lies down (LAYING 15 % -> 70 %).
        (c, conf, ent) = OutputSamples.Draw(seed: 9, n: 500, [0.06, 0.06, 0.06, 0.06, 0.06, 0.70]);
        for (var i = 0; i < c.Length; i++)
        {
            monitor.Observe($"d{i % 5}", window, 0, c[i], conf[i], ent[i]);
        }

        time.Advance(TimeSpan.FromSeconds(10));
        var after = monitor.LatestOutputs!;
        Assert.Equal(DriftVerdict.Drifted, after.Verdict);
        Assert.True(after.ClassMix!.Statistic > before.ClassMix!.Statistic + 0.2, $"{before} -> {after}");
        Assert.Contains("har_drift_output_verdict{monitor=\"devices\",test=\"class_mix\"} 2", await Export(registry), StringComparison.Ordinal);
    }

    [Fact]
    public void Observe_BadArguments_ClearErrors()
    {
        using var monitor = new DeviceDriftMonitor(Imu.Value, Options(), new FakeTimeProvider());
        var ex = Assert.Throws<ArgumentException>(() => monitor.Observe("d", new float[7], 0, 0, 0.9f, 0.1f));
        Assert.Contains("6-channel frames", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => monitor.Observe("d", new float[12], 3, 0, 0.9f, 0.1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => monitor.Observe("d", new float[12], 0, 0, 1.5f, 0.1f));
        Assert.Throws<ArgumentException>(() => monitor.Observe(string.Empty, new float[12], 0, 0, 0.9f, 0.1f));
        Assert.Equal(0, monitor.DeviceCount);
    }

    internal static DriftMonitorOptions Options(CollectorRegistry? registry = null, int maxDevices = 100, int window = 1000) => new()
    {
        WindowLength = window,
        ScoreInterval = TimeSpan.FromSeconds(10),
        DeviceIdleTimeout = TimeSpan.FromSeconds(60),
        MaxDevices = maxDevices,
        OutputWindowLength = 500,
        MetricsRegistry = registry ?? Metrics.NewCustomRegistry(),
        MonitorName = "devices",
    };

    /// <summary>Feeds each device's recording as 128-frame windows every 64 frames, the devices' windows interleaved.</summary>
    private static void FeedSliding(DeviceDriftMonitor monitor, params (string Device, float[] Data)[] devices)
    {
        var frames = devices[0].Data.Length / Channels;
        for (var start = 0; start + 128 <= frames; start += 64)
        {
            foreach (var (device, data) in devices)
            {
                monitor.Observe(device, data.AsSpan(start * Channels, 128 * Channels), start == 0 ? 0 : 64, 0, 0.9f, 0.3f);
            }
        }

        // Windows start at 0, 64, …, 832 and cover frames 0 … 959; the last 40 frames arrive as one whole window.
        foreach (var (device, data) in devices)
        {
            monitor.Observe(device, data.AsSpan(960 * Channels), 0, 0, 0.9f, 0.3f);
        }
    }

    private static int DriftedCount(DeviceDriftMonitor monitor, IEnumerable<string> devices, string channel) =>
        devices.Count(d => monitor.GetLatest(d)!.Channels.Single(v => v.Channel == channel).Verdict == DriftVerdict.Drifted);

    private static void AssertDriftedCounts(DeviceDriftMonitor monitor, string exported, string[] devices)
    {
        foreach (var c in Imu.Value.ChannelNames)
        {
            Assert.Contains($"har_drift_devices_drifted{{monitor=\"devices\",channel=\"{c}\"}} {DriftedCount(monitor, devices, c)}\n", exported, StringComparison.Ordinal);
        }
    }

    private static async Task<string> Export(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream, TestContext.Current.CancellationToken);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
