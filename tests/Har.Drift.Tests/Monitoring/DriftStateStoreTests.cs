using System.Buffers.Binary;
using System.Globalization;
using Har.Drift.Tests.Calibration;
using Har.Drift.Tests.Physics;
using Har.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Prometheus;

namespace Har.Drift.Tests.Monitoring;

/// <summary>
/// The per-device drift state in a <see cref="DriftStateStore"/> (<see cref="DriftMonitorOptions.StateStore"/>) follows a
/// device from one monitor to another, as it moves between the replicas of a fleet. With one state file per process, a
/// device that moved to another replica started fresh there: its raised alarm was lowered, and a device turned before
/// the move took its turned frame as its own baseline.
/// </summary>
public sealed class DriftStateStoreTests
{
    private const int Channels = 6;

    private static ReferenceProfile Imu => DriftStateTests.Imu.Value;

    [Fact]
    public async Task Tick_DeviceAlarmedOnAnotherMonitor_IsRestoredAlarmedBeforeItsScoring_AndScoresAsOnAMonitorThatNeverStopped()
    {
        var store = new MemoryStore();
        var time = new FakeTimeProvider();
        var faulty = DriftStateTests.DegreesPerSecond(972);

        // Monitor A (one replica) raises the device's alarm and stops; the control never stops.
        using var control = new DeviceDriftMonitor(Imu, Options(), time);
        DriftStateTests.FeedAndScore(control, ("faulty", faulty));
        var raised = control.GetLatest("faulty")!.Alarm!;
        Assert.True(raised.Raised);
        using (var a = new DeviceDriftMonitor(Imu, Options(store: store), time))
        {
            DriftStateTests.FeedAndScore(a, ("faulty", faulty));
            Assert.Single(a.GetAlarmed());
        }

        Assert.True(store.Records.ContainsKey("faulty"));
        Assert.Equal(Imu.Hash, store.Records["faulty"].ProfileHash);
        store.Loads.Clear();

        // Monitor B (another replica) sees the device for the first time: its next minute, healthy again.
        var registry = Metrics.NewCustomRegistry();
        using var b = new DeviceDriftMonitor(Imu, Options(registry, store), time);
        var next = DriftStateTests.Healthy(973);
        Feed(b, "faulty", next);
        Feed(control, "faulty", next);
        Assert.Empty(b.GetAlarmed()); // not looked up yet: Observe does no I/O
        Assert.Null(b.GetLatest("faulty"));
        Assert.Empty(store.Loads);

        b.Tick();

        Assert.Equal(["faulty"], Assert.Single(store.Loads));
        var resumed = b.GetLatest("faulty")!;
        var expected = control.ScoreNow("faulty")!;
        Assert.Equal(expected.Alarm!.ToString(), resumed.Alarm!.ToString());
        Assert.Equal(expected.Alarm.Statistic, resumed.Alarm.Statistic);
        Assert.Equal(raised.Statistic - AlarmState.Allowance, resumed.Alarm.Statistic, 9);
        Assert.Equal(expected.Findings.Select(f => f.Message), resumed.Findings.Select(f => f.Message));
        Assert.Equal(expected.Unchecked, resumed.Unchecked);
        Assert.True(resumed.Alarm.Raised, resumed.Alarm.ToString());
        Assert.Equal(DriftCause.Units, resumed.Alarm.Cause);
        Assert.Equal("faulty", Assert.Single(b.GetAlarmed()).Device);
        Assert.Equal(1, await Restores(registry, "restored"));
        Assert.Equal(0, await Restores(registry, "failed"));
    }

    /// <summary>
    /// HAPT session 3 (the service's scoring: the last 60 s every 30 s), its frame turned 20° at 95 s; at 100 s its replica
    /// stops and 20 s later the device streams to another. The windows straddling the turn are never scored, so only the
    /// comparison with the device's own earlier minutes can see it: the new monitor, restored from the store, finds its
    /// first window 20° off its minutes before the turn (the gap moves them 20 s further back). A fresh monitor, what the
    /// other replica was before, has nothing to compare with and takes the turned frame as the device's own.
    /// </summary>
    [Fact]
    public void Move_AfterTheDeviceWasTurned_TheNewMonitorStillComparesItWithItsMinutesBefore()
    {
        TestPaths.RequireSharedData();
        var profile = HaptCalibration.Profile;
        var session = HaptCalibration.AllSessions.Single(x => x.Session == 3);
        const int Onset = 95 * 50, Move = 100 * 50;
        var n = Math.Sqrt((0.3 * 0.3) + 1 + (0.2 * 0.2));
        var samples = AlarmStudy.RotateFrom(session.Samples, Onset, 0.3 / n, 1 / n, 0.2 / n, 20).Samples;
        var time = new FakeTimeProvider();
        var store = new MemoryStore();
        DriftMonitorOptions WithStore()
        {
            var options = DeviceDriftMonitorTests.Options(window: profile.SegmentLength);
            options.StateStore = store;
            return options;
        }

        using (var before = new DeviceDriftMonitor(profile, WithStore(), time))
        {
            var scored = DriftStateTests.FeedAndScore(before, profile.SegmentLength, ("d", samples[..(Move * Channels)]));
            Assert.Equal(2, scored.Count); // at 60 s and 90 s: nothing after the turn
            Assert.All(scored, r => Assert.DoesNotContain(r.Findings, f => f.Kind == SensorFindingKind.OrientationShift));
        }

        time.Advance(TimeSpan.FromSeconds(20));
        var after = samples[((Move + (20 * 50)) * Channels)..][..(profile.SegmentLength * Channels)];
        using var moved = new DeviceDriftMonitor(profile, WithStore(), time);
        using var fresh = new DeviceDriftMonitor(profile, DeviceDriftMonitorTests.Options(window: profile.SegmentLength), time);
        var first = DriftStateTests.FeedAndScore(moved, profile.SegmentLength, ("d", after)).Single();
        var freshFirst = DriftStateTests.FeedAndScore(fresh, profile.SegmentLength, ("d", after)).Single();

        var shift = Assert.Single(first.Findings, f => f.Kind == SensorFindingKind.OrientationShift);
        Assert.InRange(shift.Value, 15, 25);
        Assert.Equal(DriftCause.Rotation, first.Alarm!.Cause);
        Assert.DoesNotContain(freshFirst.Findings, f => f.Kind == SensorFindingKind.OrientationShift);
        Assert.NotEqual(DriftCause.Rotation, freshFirst.Alarm!.Cause);
    }

    [Fact]
    public async Task Tick_RecordOfAnotherProfile_IsIgnoredCountedAndLogged_AndTheDeviceStartsFresh()
    {
        var store = new MemoryStore();
        var time = new FakeTimeProvider();
        var faulty = DriftStateTests.DegreesPerSecond(980);

        // The same recordings without the model outputs: another profile, another hash.
        var other = SimulatedProfiles.RigidImu;
        Assert.NotEqual(Imu.Hash, other.Hash);
        using (var a = new DeviceDriftMonitor(other, Options(store: store), time))
        {
            DriftStateTests.FeedAndScore(a, ("faulty", faulty));
            Assert.Single(a.GetAlarmed());
        }

        var registry = Metrics.NewCustomRegistry();
        var logger = new DriftStateTests.ListLogger();
        using var b = new DeviceDriftMonitor(Imu, Options(registry, store), time, logger);
        using var fresh = new DeviceDriftMonitor(Imu, Options(), time);
        var next = DriftStateTests.Healthy(981);
        Feed(b, "faulty", next);
        Feed(fresh, "faulty", next);
        b.Tick();

        Assert.Equal(fresh.ScoreNow("faulty")!.Alarm!.ToString(), b.GetLatest("faulty")!.Alarm!.ToString());
        Assert.Empty(b.GetAlarmed());
        Assert.Equal(1, await Restores(registry, "other_profile"));
        Assert.Equal(0, await Restores(registry, "restored"));
        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("stored drift state", StringComparison.Ordinal));
        Assert.Contains(other.Hash, warning.Message, StringComparison.Ordinal);
        Assert.Contains("faulty", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tick_RecordWithOneBitChanged_IsRefusedAsDamaged_WhereTheReleaseBeforeReadItSilently()
    {
        // A record carries its device's history as numbers: one bit flipped in storage (a database without page
        // checksums, which is PostgreSQL's default) still parses, as other numbers. The file always had a checksum; a
        // store record now ends with one too.
        var store = new MemoryStore();
        var time = new FakeTimeProvider();
        using (var a = new DeviceDriftMonitor(Imu, Options(store: store), time))
        {
            DriftStateTests.FeedAndScore(a, ("faulty", DriftStateTests.DegreesPerSecond(992)));
            Assert.Single(a.GetAlarmed());
        }

        var saved = store.Records["faulty"];
        var bytes = saved.State.ToArray();
        Assert.Equal(2, BinaryPrimitives.ReadInt32LittleEndian(bytes));
        var flipped = bytes.ToArray();
        flipped[bytes.Length / 2] ^= 0x01;

        // The same record as the release before wrote it (version 1, no checksum), with the same bit flipped: it is
        // restored, whatever the bit meant.
        var legacy = bytes[..^8];
        BinaryPrimitives.WriteInt32LittleEndian(legacy, 1);
        legacy[bytes.Length / 2] ^= 0x01;

        foreach (var (state, expected) in new[] { (flipped, "failed"), (legacy, "restored") })
        {
            store.Records["faulty"] = new DriftStateRecord("faulty", saved.ProfileHash, saved.SavedAt, state, saved.LastObservedAt);
            var registry = Metrics.NewCustomRegistry();
            var logger = new DriftStateTests.ListLogger();
            using var b = new DeviceDriftMonitor(Imu, Options(registry, store), time, logger);
            Feed(b, "faulty", DriftStateTests.Healthy(993), frames: 100);
            b.Tick();
            Assert.Equal(1, await Restores(registry, expected));
            if (expected == "failed")
            {
                Assert.Null(b.GetLatest("faulty")); // started fresh: no report restored
                Assert.Contains(logger.Entries, e => e.Message.Contains("the checksum does not match the record", StringComparison.Ordinal));
            }
        }
    }

    [Fact]
    public async Task Tick_RecordOfTheReleaseBefore_WithoutAChecksum_IsRestoredAsItWas()
    {
        var store = new MemoryStore();
        var time = new FakeTimeProvider();
        DriftReport alarmed;
        using (var a = new DeviceDriftMonitor(Imu, Options(store: store), time))
        {
            DriftStateTests.FeedAndScore(a, ("faulty", DriftStateTests.DegreesPerSecond(994)));
            alarmed = Assert.Single(a.GetAlarmed());
        }

        var saved = store.Records["faulty"];
        var legacy = saved.State.ToArray()[..^8];
        BinaryPrimitives.WriteInt32LittleEndian(legacy, 1);
        store.Records["faulty"] = new DriftStateRecord("faulty", saved.ProfileHash, saved.SavedAt, legacy, saved.LastObservedAt);

        var registry = Metrics.NewCustomRegistry();
        using var b = new DeviceDriftMonitor(Imu, Options(registry, store), time);
        Feed(b, "faulty", DriftStateTests.Healthy(995), frames: 100);
        b.Tick();
        Assert.Equal(1, await Restores(registry, "restored"));
        Assert.Equal(alarmed.ToString(), b.GetLatest("faulty")!.ToString());
    }

    [Fact]
    public async Task Tick_DeviceNotInTheStore_IsScoredFresh_AndSavedOnceItsAlarmIsRaised()
    {
        var store = new MemoryStore();
        var time = new FakeTimeProvider();
        var registry = Metrics.NewCustomRegistry();
        using var monitor = new DeviceDriftMonitor(Imu, Options(registry, store), time);
        using var fresh = new DeviceDriftMonitor(Imu, Options(), time);
        var faulty = DriftStateTests.DegreesPerSecond(982);
        Feed(monitor, "new", faulty);
        Feed(fresh, "new", faulty);

        monitor.Tick();

        var report = monitor.GetLatest("new")!;
        Assert.Equal(fresh.ScoreNow("new")!.ToString(), report.ToString());
        Assert.True(report.Alarm!.Raised);
        Assert.Equal(1, await Restores(registry, "absent"));
        Assert.True(store.Records.ContainsKey("new")); // the alarm raised: saved at the end of its tick, not at dispose
    }

    [Fact]
    public async Task Tick_StoreThrowsOnLoad_TheDeviceWaits_ThenIsScoredFreshAfterTheLastAttempt()
    {
        var store = new MemoryStore { FailLoads = true };
        var time = new FakeTimeProvider();
        var registry = Metrics.NewCustomRegistry();
        var logger = new DriftStateTests.ListLogger();
        using var monitor = new DeviceDriftMonitor(Imu, Options(registry, store), time, logger);
        using var fresh = new DeviceDriftMonitor(Imu, Options(), time);
        var faulty = DriftStateTests.DegreesPerSecond(983);
        Feed(monitor, "d", faulty);
        Feed(fresh, "d", faulty);

        for (var attempt = 1; attempt < DeviceDriftMonitor.MaxRestoreAttempts; attempt++)
        {
            monitor.Tick();
            Assert.Null(monitor.GetLatest("d")); // not scored before its lookup finished
            Assert.Equal(attempt, await Restores(registry, "failed"));
        }

        monitor.Tick();

        Assert.Equal(DeviceDriftMonitor.MaxRestoreAttempts, store.Loads.Count);
        Assert.Equal(DeviceDriftMonitor.MaxRestoreAttempts, await Restores(registry, "failed"));
        Assert.Equal(fresh.ScoreNow("d")!.ToString(), monitor.GetLatest("d")!.ToString());
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("database is down", StringComparison.Ordinal));
        monitor.Tick();
        Assert.Equal(DeviceDriftMonitor.MaxRestoreAttempts, store.Loads.Count); // given up: not looked up again
    }

    [Fact]
    public void Tick_StoreThrowsOnLoadOnce_TheDeviceIsRestoredAtTheNextTick()
    {
        var store = new MemoryStore();
        var time = new FakeTimeProvider();
        using (var a = new DeviceDriftMonitor(Imu, Options(store: store), time))
        {
            DriftStateTests.FeedAndScore(a, ("faulty", DriftStateTests.DegreesPerSecond(984)));
        }

        store.FailLoads = true;
        using var b = new DeviceDriftMonitor(Imu, Options(store: store), time);
        Feed(b, "faulty", DriftStateTests.Healthy(985));
        b.Tick();
        Assert.Null(b.GetLatest("faulty"));

        store.FailLoads = false;
        b.Tick();

        Assert.True(b.GetLatest("faulty")!.Alarm!.Raised);
    }

    [Fact]
    public void Tick_ChangedDeviceEvictedForIdleness_IsSavedAtThatTick_AndComesBackOnAnotherMonitor()
    {
        var store = new MemoryStore();
        var time = new FakeTimeProvider();
        using var monitor = new DeviceDriftMonitor(Imu, Options(store: store), time);
        Feed(monitor, "healthy", DriftStateTests.Healthy(986));
        monitor.Tick();
        var scored = monitor.GetLatest("healthy")!;
        Assert.False(scored.Alarm!.Raised);
        Assert.Empty(store.Records); // scored, no alarm change, StateSaveInterval (5 min) not passed: not saved yet

        time.Advance(TimeSpan.FromSeconds(61)); // past DeviceIdleTimeout (60 s)
        monitor.Tick();

        Assert.False(monitor.IsMonitored("healthy"));
        Assert.True(store.Records.ContainsKey("healthy"));
        using var other = new DeviceDriftMonitor(Imu, Options(store: store), time);
        Feed(other, "healthy", DriftStateTests.Healthy(987), frames: 100);
        other.Tick();
        Assert.Equal(scored.ToString(), other.GetLatest("healthy")!.ToString()); // restored; not due for a scoring yet
    }

    [Fact]
    public void Save_EvictedDevice_ItsRecordIsObservedAtItsLastFrame_ARemovedOneAtItsRemoval()
    {
        // A shared store keeps the record with the newest evidence (FleetDriftStateStore): an eviction's save comes an idle
        // timeout after the device's last frame, and must say so, or it would look newer than what the device's new
        // process saved meanwhile.
        var store = new MemoryStore();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 9, 0, 0, TimeSpan.Zero));
        using var monitor = new DeviceDriftMonitor(Imu, Options(store: store), time);
        Feed(monitor, "moved-away", DriftStateTests.Healthy(990));
        var lastFrame = time.GetUtcNow();
        monitor.Tick();
        time.Advance(TimeSpan.FromSeconds(61)); // past DeviceIdleTimeout (60 s)
        monitor.Tick();

        var evicted = store.Records["moved-away"];
        Assert.Equal(lastFrame + TimeSpan.FromSeconds(61), evicted.SavedAt);
        Assert.Equal(lastFrame, evicted.LastObservedAt);

        Feed(monitor, "removed", DriftStateTests.Healthy(991), frames: 100);
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.True(monitor.Remove("removed"));
        monitor.Tick();
        var removed = store.Records["removed"];
        Assert.Equal(removed.SavedAt, removed.LastObservedAt);
        Assert.Equal(time.GetUtcNow(), removed.SavedAt);
    }

    [Fact]
    public void Remove_DeviceInTheStore_ItsRecordIsForgottenToo()
    {
        var store = new MemoryStore();
        var time = new FakeTimeProvider();
        using (var a = new DeviceDriftMonitor(Imu, Options(store: store), time))
        {
            Feed(a, "faulty", DriftStateTests.DegreesPerSecond(988));
            a.Tick();
            Assert.Single(a.GetAlarmed());
            Assert.True(store.Records.ContainsKey("faulty")); // the alarm raised: saved at the end of its tick
            Assert.True(a.Remove("faulty"));
        }

        using var b = new DeviceDriftMonitor(Imu, Options(store: store), time);
        Feed(b, "faulty", DriftStateTests.Healthy(989), frames: 100);
        b.Tick();
        Assert.True(b.IsMonitored("faulty"));
        Assert.Null(b.GetLatest("faulty"));
        Assert.Equal(0, b.HistoryOf("faulty")!.FramesSeen);
    }

    [Fact]
    public void Construct_StatePathAndStateStore_ThrowsSayingToChooseOne()
    {
        var options = Options(store: new MemoryStore());
        options.StatePath = Path.Combine(Path.GetTempPath(), "drift-state.bin");

        var ex = Assert.Throws<ArgumentException>(() => new DeviceDriftMonitor(Imu, options));
        Assert.Contains("StatePath", ex.Message, StringComparison.Ordinal);
        Assert.Contains("StateStore", ex.Message, StringComparison.Ordinal);

        var services = new ServiceCollection();
        services.AddHarDrift(o =>
        {
            o.StatePath = "drift-state.bin";
            o.StateStore = new MemoryStore();
        });
        using var sp = services.BuildServiceProvider();
        var invalid = Assert.Throws<OptionsValidationException>(() => sp.GetRequiredService<IOptions<DriftMonitorOptions>>().Value);
        Assert.Contains(invalid.Failures, f => f.Contains("not both", StringComparison.Ordinal));
    }

    [Fact]
    public void Tick_DevicesFallingDueTogether_AreSavedAtMostTwiceATicksShareATick_TheLongestWaitingFirst()
    {
        // Every device of a restarted replica is first seen at once, so their periodic saves fell due in one tick: about
        // 10 s and 260 MB of WAL for 1,000 full histories (benchmarks/results/Fleet). 30 devices, a 10 s tick, a 100 s
        // interval: a tick's even share is 3, so at most 6 a tick.
        var store = new CountingStore();
        var time = new FakeTimeProvider();
        var options = Options(store: store);
        options.StateSaveInterval = TimeSpan.FromSeconds(100);
        options.DeviceIdleTimeout = TimeSpan.FromHours(1);
        using var monitor = new DeviceDriftMonitor(Imu, options, time);
        var ids = Enumerable.Range(0, 30).Select(i => $"device-{i:D2}").ToArray();
        for (var i = 0; i < ids.Length; i++)
        {
            Feed(monitor, ids[i], DriftStateTests.Healthy(990 + i));
        }

        monitor.Tick();
        Assert.All(ids, id => Assert.False(monitor.GetLatest(id)!.Alarm!.Raised));
        Assert.Empty(store.Batches); // scored, no alarm change, the interval not passed

        time.Advance(TimeSpan.FromSeconds(100));
        var saved = new List<string>();
        for (var tick = 0; tick < 5; tick++)
        {
            monitor.Tick();
            Assert.Equal(tick + 1, store.Batches.Count);
            Assert.Equal(6, store.Batches[^1].Length);
            saved.AddRange(store.Batches[^1]);
            time.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(ids.Order(StringComparer.Ordinal), saved.Order(StringComparer.Ordinal)); // each once, all within 5 ticks
        monitor.Tick();
        Assert.Equal(5, store.Batches.Count); // nothing changed since
    }

    private static DriftMonitorOptions Options(CollectorRegistry? registry = null, DriftStateStore? store = null)
    {
        var options = DeviceDriftMonitorTests.Options(registry);
        options.StateStore = store;
        return options;
    }

    /// <summary>Feeds a device's frames (the first <paramref name="frames"/>, all by default) in two posts, without scoring.</summary>
    private static void Feed(DeviceDriftMonitor monitor, string device, float[] data, int frames = 1000)
    {
        var half = frames / 2 * Channels;
        monitor.Observe(device, data.AsSpan(0, half), 0, 0, 0.9f, 0.3f);
        monitor.Observe(device, data.AsSpan(half, (frames * Channels) - half), 0, 0, 0.9f, 0.3f);
    }

    private static async Task<int> Restores(CollectorRegistry registry, string result)
    {
        var prefix = $"har_drift_state_restores_total{{monitor=\"devices\",result=\"{result}\"}} ";
        var line = (await DriftStateTests.Export(registry)).Split('\n').Single(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return (int)double.Parse(line[prefix.Length..], CultureInfo.InvariantCulture);
    }

    /// <summary>A store in memory that keeps the devices of each save.</summary>
    private sealed class CountingStore : DriftStateStore
    {
        public List<string[]> Batches { get; } = [];

        public override IReadOnlyList<DriftStateRecord> Load(IReadOnlyList<string> deviceIds) => [];

        public override void Save(IReadOnlyList<DriftStateRecord> records) => Batches.Add([.. records.Select(r => r.DeviceId)]);
    }

    /// <summary>A store in memory; it can be told to fail its loads (a database that is down).</summary>
    private sealed class MemoryStore : DriftStateStore
    {
        public Dictionary<string, DriftStateRecord> Records { get; } = new(StringComparer.Ordinal);

        public List<string[]> Loads { get; } = [];

        public bool FailLoads { get; set; }

        public override IReadOnlyList<DriftStateRecord> Load(IReadOnlyList<string> deviceIds)
        {
            Loads.Add([.. deviceIds]);
            if (FailLoads)
            {
                throw new IOException("the database is down");
            }

            return [.. deviceIds.Where(Records.ContainsKey).Select(id => Records[id])];
        }

        public override void Save(IReadOnlyList<DriftStateRecord> records)
        {
            foreach (var r in records)
            {
                Records[r.DeviceId] = r;
            }
        }
    }
}
