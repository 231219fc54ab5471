using Har.Drift.Tests.Calibration;
using Har.Drift.Tests.Physics;
using Har.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Prometheus;

namespace Har.Drift.Tests.Monitoring;

/// <summary>
/// The per-device drift state outlives the monitor (<see cref="DriftMonitorOptions.StatePath"/>): a restart keeps each
/// device's raised alarm, its CUSUMs and the earlier minutes its within-device checks compare with. Before it, every
/// restart of the service lowered every alarm and gave a device re-mounted before the restart its faulty orientation as
/// its own baseline.
/// </summary>
public sealed class DriftStateTests
{
    private const int Channels = 6;
    internal static readonly Lazy<ReferenceProfile> Imu = new(() => Outputs.OutputSamples.Profile(SimulatedProfiles.RigidImu));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SaveLoad_DeviceWithARaisedAlarm_ComesBackAlarmedWithItsCauseStatisticAndReport()
    {
        var time = new FakeTimeProvider();
        using var before = new DeviceDriftMonitor(Imu.Value, Options(), time);
        FeedAndScore(before, ("healthy", Healthy(970)), ("faulty", DegreesPerSecond(971)));
        var alarmed = Assert.Single(before.GetAlarmed());
        Assert.Equal(DriftCause.Units, alarmed.Alarm!.Cause);

        var registry = Metrics.NewCustomRegistry();
        using var after = new DeviceDriftMonitor(Imu.Value, Options(registry), time);
        Assert.Empty(after.GetAlarmed());
        var (restored, dropped, _) = after.LoadState(Saved(before));

        Assert.Equal((2, 0), (restored, dropped));
        var back = Assert.Single(after.GetAlarmed());
        Assert.Equal("faulty", back.Device);
        Assert.Equal((alarmed.Alarm.Raised, alarmed.Alarm.Cause, alarmed.Alarm.Statistic, alarmed.Alarm.Threshold, alarmed.Alarm.Diagnosis), (back.Alarm!.Raised, back.Alarm.Cause, back.Alarm.Statistic, back.Alarm.Threshold, back.Alarm.Diagnosis));
        Assert.Equal(alarmed.Alarm.Channels, back.Alarm.Channels);
        foreach (var device in new[] { "healthy", "faulty" })
        {
            // The whole report, as GET /v1/drift?device= shows it: verdicts with their evidence, findings, notes.
            var (a, b) = (before.GetLatest(device)!, after.GetLatest(device)!);
            Assert.Equal(a.ToString(), b.ToString());
            Assert.Equal(a.Unchecked, b.Unchecked);
            Assert.Equal(a.Findings.Select(f => (f.Kind, f.Channel, f.Value, f.Threshold, f.Message, f.Samples, f.Recent, f.Ideal, f.Check, f.Repeated)), b.Findings.Select(f => (f.Kind, f.Channel, f.Value, f.Threshold, f.Message, f.Samples, f.Recent, f.Ideal, f.Check, f.Repeated)));
            Assert.Equal(a.Channels.Select(c => (c.Channel, c.Verdict, c.N, c.EffectiveN, c.Ks?.ToString(), c.Psi?.ToString(), c.Psi?.InnerEdges?.Sum(), c.Psi?.CurrentCounts?.Sum())), b.Channels.Select(c => (c.Channel, c.Verdict, c.N, c.EffectiveN, c.Ks?.ToString(), c.Psi?.ToString(), c.Psi?.InnerEdges?.Sum(), c.Psi?.CurrentCounts?.Sum())));
        }

        // The gauge the HarDeviceDriftAlarm alert reads is back at construction, before any new scoring.
        var text = await Export(registry);
        Assert.Contains("har_drift_devices_alarmed_by_cause{monitor=\"devices\",cause=\"Units\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("har_drift_devices{monitor=\"devices\"} 2", text, StringComparison.Ordinal);
    }

    [Fact]
    public void SaveLoad_EachCusumGoesOn_AsInAMonitorThatNeverRestarted()
    {
        // One monitor keeps running; the other is restored from its state at the same instant (no restart gap). Both
        // then get the same next minute of the device, healthy again: the restored one scores it exactly as the one that
        // never stopped, and the Units CUSUM comes down by the allowance, as it does without a restart.
        var time = new FakeTimeProvider();
        using var running = new DeviceDriftMonitor(Imu.Value, Options(), time);
        FeedAndScore(running, ("faulty", DegreesPerSecond(972)));
        var raised = running.GetLatest("faulty")!.Alarm!;
        Assert.True(raised.Raised);
        using var restored = new DeviceDriftMonitor(Imu.Value, Options(), time);
        restored.LoadState(Saved(running));

        // The next 1,000 frames (one window) in two posts, then one scoring each.
        var next = Healthy(973);
        foreach (var monitor in new[] { running, restored })
        {
            monitor.Observe("faulty", next.AsSpan(0, 500 * Channels), 0, 0, 0.9f, 0.3f);
            monitor.Observe("faulty", next.AsSpan(500 * Channels, 500 * Channels), 0, 0, 0.9f, 0.3f);
        }

        var control = running.ScoreNow("faulty")!;
        var resumed = restored.ScoreNow("faulty")!;

        Assert.Equal(control.Alarm!.ToString(), resumed.Alarm!.ToString());
        Assert.Equal(control.Alarm.Statistic, resumed.Alarm.Statistic);
        Assert.Equal(control.Findings.Select(f => f.Message), resumed.Findings.Select(f => f.Message));
        Assert.Equal(control.Unchecked, resumed.Unchecked);
        Assert.Equal(raised.Statistic - AlarmState.Allowance, resumed.Alarm.Statistic, 9);
        Assert.True(resumed.Alarm.Raised, resumed.Alarm.ToString());
        Assert.Equal(DriftCause.Units, resumed.Alarm.Cause);
    }

    /// <summary>
    /// The point of the state: HAPT session 3 (the service's scoring: the last 60 s every 30 s), its frame turned 20°
    /// at 95 s while the service restarts at 100 s and is down for 20 s: the windows straddling the turn are never
    /// scored (the frames after the last scoring are not kept), so the frame-step check cannot see it, and only the
    /// comparison with the device's own earlier minutes can. The restored device is compared with its minutes before the
    /// turn: its first window after the restart is found 20° off them and the alarm's leading check is `Rotation`. A fresh
    /// monitor on the same frames has nothing to compare with, and from then on takes the turned frame as the device's
    /// own. Without the state, the restarted monitor is that fresh one.
    /// </summary>
    /// <remarks>
    /// The comparison is the evidence, not an alarm on its own: one window 20° off adds about 1.5 to the `Rotation`
    /// CUSUM (threshold 6.75 on this profile) before the turned blocks join the device's past; the alarm for a turn
    /// comes from the frame-step window, which a restart between the turn and its scoring loses.
    /// </remarks>
    [Fact]
    public void Restart_AfterTheDeviceWasTurned_TheRestoredMonitorStillComparesItWithItsMinutesBefore()
    {
        TestPaths.RequireSharedData();
        var profile = HaptCalibration.Profile;
        var session = HaptCalibration.AllSessions.Single(x => x.Session == 3);
        const int Onset = 95 * 50, Restart = 100 * 50;
        var n = Math.Sqrt((0.3 * 0.3) + 1 + (0.2 * 0.2));
        var samples = AlarmStudy.RotateFrom(session.Samples, Onset, 0.3 / n, 1 / n, 0.2 / n, 20).Samples;
        var time = new FakeTimeProvider();
        var options = Options(window: profile.SegmentLength);
        var dir = Directory.CreateTempSubdirectory("har-drift-state-");
        try
        {
            options.StatePath = Path.Combine(dir.FullName, "drift-state.bin");
            using (var before = new DeviceDriftMonitor(profile, options, time))
            {
                var scored = FeedAndScore(before, profile.SegmentLength, ("d", samples[..(Restart * Channels)]));
                Assert.Equal(2, scored.Count); // at 60 s and 90 s: nothing after the turn
                Assert.All(scored, r => Assert.DoesNotContain(r.Findings, f => f.Kind == SensorFindingKind.OrientationShift));
            }

            time.Advance(TimeSpan.FromSeconds(20));
            var after = samples[((Restart + (20 * 50)) * Channels)..];
            using var restarted = new DeviceDriftMonitor(profile, options, time);
            Assert.True(restarted.IsMonitored("d"));
            using var fresh = new DeviceDriftMonitor(profile, Options(window: profile.SegmentLength), time);
            var first = FeedAndScore(restarted, profile.SegmentLength, ("d", after[..(profile.SegmentLength * Channels)])).Single();
            var freshFirst = FeedAndScore(fresh, profile.SegmentLength, ("d", after[..(profile.SegmentLength * Channels)])).Single();

            var shift = Assert.Single(first.Findings, f => f.Kind == SensorFindingKind.OrientationShift);
            Assert.InRange(shift.Value, 15, 25); // the 20° turn, against the device's blocks of 0 … 90 s
            Assert.Contains("the device was rotated or re-mounted", shift.Message, StringComparison.Ordinal);
            Assert.Equal(DriftCause.Rotation, first.Alarm!.Cause);
            Assert.True(first.Alarm.Statistic > 0, first.Alarm.ToString());

            Assert.DoesNotContain(freshFirst.Findings, f => f.Kind == SensorFindingKind.OrientationShift);
            Assert.Contains(freshFirst.Unchecked, u => u.Contains("the within-device orientation check was not possible", StringComparison.Ordinal));
            Assert.NotEqual(DriftCause.Rotation, freshFirst.Alarm!.Cause);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("flipped byte")]
    [InlineData("not a state file")]
    [InlineData("empty")]
    public void Construct_DamagedStateFile_StartsFreshWarnsAndKeepsTheFileAside(string damage)
    {
        var dir = Directory.CreateTempSubdirectory("har-drift-state-");
        try
        {
            var (path, options, time) = SaveAlarmedDevice(dir, seed: 974);

            var bytes = File.ReadAllBytes(path);
            Assert.True(bytes.Length > 1000);
            switch (damage)
            {
                case "truncated":
                    File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
                    break;
                case "flipped byte":
                    bytes[bytes.Length / 2] ^= 0x10;
                    File.WriteAllBytes(path, bytes);
                    break;
                case "not a state file":
                    File.WriteAllText(path, "{\"devices\": []}");
                    break;
                default:
                    File.WriteAllBytes(path, []);
                    break;
            }

            var damaged = File.ReadAllBytes(path);
            var logger = new ListLogger();
            using var after = new DeviceDriftMonitor(Imu.Value, options, time, logger);

            Assert.Equal(0, after.DeviceCount);
            Assert.Empty(after.GetAlarmed());
            var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
            Assert.Contains(path, warning.Message, StringComparison.Ordinal);
            Assert.Contains("starts fresh", warning.Message, StringComparison.Ordinal);
            Assert.False(File.Exists(path));
            Assert.Equal(damaged, File.ReadAllBytes(path + ".bad"));

            // The monitor works on: its next checkpoint writes a good file again.
            FeedAndScore(after, ("faulty", DegreesPerSecond(975)));
            after.Dispose();
            using var again = new DeviceDriftMonitor(Imu.Value, options, time);
            Assert.Equal("faulty", Assert.Single(again.GetAlarmed()).Device);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Construct_StateOfAnotherProfile_StartsFreshWarnsAndKeepsTheFileAside()
    {
        var dir = Directory.CreateTempSubdirectory("har-drift-state-");
        try
        {
            var (path, options, time) = SaveAlarmedDevice(dir, seed: 976);

            // The same recordings without the model outputs: another profile, another hash.
            var other = SimulatedProfiles.RigidImu;
            Assert.NotEqual(Imu.Value.Hash, other.Hash);
            var logger = new ListLogger();
            using var after = new DeviceDriftMonitor(other, options, time, logger);

            Assert.Equal(0, after.DeviceCount);
            var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
            Assert.Contains(path, warning.Message, StringComparison.Ordinal);
            Assert.Contains(Imu.Value.Hash, warning.Message, StringComparison.Ordinal);
            Assert.False(File.Exists(path));
            Assert.True(File.Exists($"{path}.profile-{Imu.Value.Hash[..12]}"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Load_MoreSavedDevicesThanTheCap_KeepsTheMostRecentlySeen_AndTheIdleTimeoutGoesOnFromTheSave()
    {
        var time = new FakeTimeProvider();
        using var before = new DeviceDriftMonitor(Imu.Value, Options(), time);
        FeedAndScore(before, ("old", Healthy(977)));
        time.Advance(TimeSpan.FromSeconds(40));
        FeedAndScore(before, ("new-1", Healthy(978)), ("new-2", Healthy(979)));
        var saved = Saved(before);

        // Down for an hour: the outage is not idleness (the devices could not send); "old" was silent 40 s at the save.
        time.Advance(TimeSpan.FromHours(1));
        using var after = new DeviceDriftMonitor(Imu.Value, Options(maxDevices: 2), time);
        var (restored, dropped, _) = after.LoadState(saved);
        Assert.Equal((2, 1), (restored, dropped));
        Assert.True(after.IsMonitored("new-1"));
        Assert.True(after.IsMonitored("new-2"));
        Assert.False(after.IsMonitored("old"));

        using var all = new DeviceDriftMonitor(Imu.Value, Options(), time);
        saved.Position = 0;
        all.LoadState(saved);
        all.Start();
        time.Advance(TimeSpan.FromSeconds(10)); // a tick: "old" idle 50 s of the 60 s timeout
        Assert.Equal(3, all.DeviceCount);
        time.Advance(TimeSpan.FromSeconds(10)); // 60 s
        Assert.Equal(2, all.DeviceCount);
        Assert.False(all.IsMonitored("old"));
    }

    [Fact]
    public async Task Checkpoint_AnAlarmChangeIsSavedAtTheEndOfItsTick_OtherScoringsAtMostEveryStateSaveInterval()
    {
        // Each save rewrites the whole file (about 240 MB for 1,000 devices with full histories): it was rewritten at the
        // end of every tick that scored a device. Now only an alarm raised, lowered or renamed is saved at once.
        var dir = Directory.CreateTempSubdirectory("har-drift-state-");
        try
        {
            var registry = Metrics.NewCustomRegistry();
            var options = Options(registry);
            options.StatePath = Path.Combine(dir.FullName, "drift-state.bin");
            options.StateSaveInterval = TimeSpan.FromMinutes(1);
            var time = new FakeTimeProvider();
            var healthy = SimulatedImu.Record(seed: 990, seconds: 80).Interleaved();
            var faulty = DegreesPerSecond(991);
            var fed = 0;
            void FeedHealthy(DeviceDriftMonitor monitor, int frames)
            {
                monitor.Observe("healthy", healthy.AsSpan(fed * Channels, frames * Channels), 0, 0, 0.9f, 0.3f);
                fed += frames;
            }

            using (var monitor = new DeviceDriftMonitor(Imu.Value, options, time))
            {
                FeedHealthy(monitor, 1000);
                monitor.Tick();
                time.Advance(TimeSpan.FromSeconds(30));
                FeedHealthy(monitor, 500);
                monitor.Tick();
                Assert.Equal(0, await Saves(registry)); // scored twice within the interval, no alarm: not saved
                Assert.False(File.Exists(options.StatePath));

                monitor.Observe("faulty", faulty, 0, 0, 0.9f, 0.3f);
                monitor.Tick();
                Assert.Single(monitor.GetAlarmed());
                Assert.Equal(1, await Saves(registry)); // the alarm raised: saved at the end of its tick
                using (var saved = File.OpenRead(options.StatePath))
                using (var check = new DeviceDriftMonitor(Imu.Value, Options(), time))
                {
                    check.LoadState(saved);
                    Assert.Equal("faulty", Assert.Single(check.GetAlarmed()).Device);
                }

                time.Advance(TimeSpan.FromSeconds(59));
                FeedHealthy(monitor, 500);
                monitor.Tick();
                Assert.Equal(1, await Saves(registry));
                time.Advance(TimeSpan.FromSeconds(2));
                FeedHealthy(monitor, 500);
                monitor.Tick();
                Assert.Equal(2, await Saves(registry)); // the interval passed since the last save

                FeedHealthy(monitor, 500);
                monitor.Tick();
                Assert.Equal(2, await Saves(registry));
            }

            Assert.Equal(3, await Saves(registry)); // dispose saves what changed since
        }
        finally
        {
            dir.Delete(recursive: true);
        }

        static async Task<int> Saves(CollectorRegistry registry)
        {
            var line = (await Export(registry)).Split('\n').SingleOrDefault(l => l.StartsWith("har_drift_state_saves_total{monitor=\"devices\",result=\"saved\"}", StringComparison.Ordinal));
            return line is null ? 0 : (int)double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <summary>
    /// A soak of the service (300 devices, 40 minutes) wrote 4.5 GiB: every tick in which one device's alarm changed
    /// rewrote the whole state file (up to 250 KB a device) with fsync. Now an alarm change between whole saves appends
    /// only the devices whose alarm changed (and removals) to the file's journal; a restart applies it after the file.
    /// </summary>
    [Fact]
    public void Checkpoint_AlarmChangesBetweenWholeSaves_AreJournaled_TheFileIsNotRewritten_ARestartAppliesThem()
    {
        var dir = Directory.CreateTempSubdirectory("har-drift-journal-");
        try
        {
            var options = Options();
            options.StatePath = Path.Combine(dir.FullName, "drift-state.bin");
            options.StateSaveInterval = TimeSpan.FromMinutes(10);
            var journal = options.StatePath + ".journal";
            var time = new FakeTimeProvider();
            using var monitor = new DeviceDriftMonitor(Imu.Value, options, time);

            // The first alarm: no file yet, so the whole state is written.
            FeedAndScore(monitor, ("healthy", Healthy(980)), ("faulty-1", DegreesPerSecond(981)));
            monitor.Tick();
            Assert.Equal("faulty-1", Assert.Single(monitor.GetAlarmed()).Device);
            var whole = File.ReadAllBytes(options.StatePath);
            Assert.False(File.Exists(journal));

            // A second device alarms, and the first is removed: two records in the journal, the file untouched.
            time.Advance(TimeSpan.FromSeconds(30));
            FeedAndScore(monitor, ("faulty-2", DegreesPerSecond(982)));
            monitor.Tick();
            Assert.True(monitor.Remove("faulty-1"));
            monitor.Tick();
            Assert.Equal(whole, File.ReadAllBytes(options.StatePath));
            Assert.True(File.Exists(journal));
            Assert.True(new FileInfo(journal).Length < whole.Length, $"journal {new FileInfo(journal).Length} bytes, file {whole.Length}");

            // A crash now (the files as they are, before any dispose): the restart applies the journal after the file.
            var crashed = Directory.CreateDirectory(Path.Combine(dir.FullName, "crashed"));
            File.Copy(options.StatePath, Path.Combine(crashed.FullName, "drift-state.bin"));
            File.Copy(journal, Path.Combine(crashed.FullName, "drift-state.bin.journal"));
            var restartOptions = Options();
            restartOptions.StatePath = Path.Combine(crashed.FullName, "drift-state.bin");
            var logger = new ListLogger();
            using (var restarted = new DeviceDriftMonitor(Imu.Value, restartOptions, time, logger))
            {
                Assert.Equal(["faulty-2"], restarted.GetAlarmed().Select(a => a.Device));
                Assert.Null(restarted.GetLatest("faulty-1"));
                Assert.NotNull(restarted.GetLatest("healthy"));
                Assert.Contains(logger.Entries, e => e.Message.Contains("applied 2 records of the journal", StringComparison.Ordinal) && e.Message.EndsWith("Torn)", StringComparison.Ordinal) is false);
            }

            // The last record torn by the crash (a partial write): the records before it are applied, the torn one is not.
            var torn = File.ReadAllBytes(journal);
            File.WriteAllBytes(Path.Combine(crashed.FullName, "drift-state.bin.journal"), torn[..^3]);
            logger = new ListLogger();
            using (var restarted = new DeviceDriftMonitor(Imu.Value, restartOptions, time, logger))
            {
                Assert.Equal(["faulty-1", "faulty-2"], restarted.GetAlarmed().Select(a => a.Device).Order(StringComparer.Ordinal));
                Assert.Contains(logger.Entries, e => e.Message.Contains("applied 1 records of the journal", StringComparison.Ordinal) && e.Message.Contains("True", StringComparison.Ordinal));
            }

            // The interval passes: the whole file is rewritten and the journal goes; a journal left from before that (a
            // crash between the two) belongs to the older file and is not applied.
            time.Advance(TimeSpan.FromMinutes(11));
            FeedAndScore(monitor, ("healthy", Healthy(983)));
            monitor.Tick();
            Assert.False(File.Exists(journal));
            File.Copy(options.StatePath, restartOptions.StatePath, overwrite: true);
            File.WriteAllBytes(Path.Combine(crashed.FullName, "drift-state.bin.journal"), torn);
            logger = new ListLogger();
            using (var restarted = new DeviceDriftMonitor(Imu.Value, restartOptions, time, logger))
            {
                // The alarmed devices were silent past the idle timeout and evicted before the whole save; the old
                // journal's record of faulty-2 would have brought it back.
                Assert.Empty(restarted.GetAlarmed());
                Assert.Contains(logger.Entries, e => e.Message.Contains("applied 0 records of the journal", StringComparison.Ordinal));
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static DriftMonitorOptions Options(CollectorRegistry? registry = null, int maxDevices = 100, int window = 1000) =>
        DeviceDriftMonitorTests.Options(registry, maxDevices, window);

    /// <summary>A monitor with its state file in <paramref name="dir"/> alarms on a device (gyroscope in deg/s) and is disposed: the file holds it.</summary>
    private static (string Path, DriftMonitorOptions Options, FakeTimeProvider Time) SaveAlarmedDevice(DirectoryInfo dir, int seed)
    {
        var options = Options();
        options.StatePath = Path.Combine(dir.FullName, "drift-state.bin");
        var time = new FakeTimeProvider();
        using (var before = new DeviceDriftMonitor(Imu.Value, options, time))
        {
            FeedAndScore(before, ("faulty", DegreesPerSecond(seed)));
            Assert.Single(before.GetAlarmed());
        }

        return (options.StatePath, options, time);
    }

    internal static float[] Healthy(int seed) => SimulatedImu.Record(seed: seed, seconds: 20).Interleaved();

    internal static float[] DegreesPerSecond(int seed) =>
        InputFault.Standard(SimulatedProfiles.RigidImu.ChannelNames, 50).Single(f => f.Description == "gyroscope in deg/s").Apply(Healthy(seed), Channels);

    /// <summary>
    /// Feeds each device's frames in chunks of half a window, and scores each device whenever half a window of new frames
    /// arrived once this call fed it a whole one (as the timer does for a device that is new or restored); returns the
    /// reports in order.
    /// </summary>
    internal static List<DriftReport> FeedAndScore(DeviceDriftMonitor monitor, int window, params (string Device, float[] Data)[] devices)
    {
        var reports = new List<DriftReport>();
        var half = window / 2;
        var frames = devices.Min(d => d.Data.Length / Channels);
        for (var start = 0; start + half <= frames; start += half)
        {
            foreach (var (device, data) in devices)
            {
                monitor.Observe(device, data.AsSpan(start * Channels, half * Channels), 0, 0, 0.9f, 0.3f);
                if (start + half >= window)
                {
                    reports.Add(monitor.ScoreNow(device)!);
                }
            }
        }

        return reports;
    }

    internal static List<DriftReport> FeedAndScore(DeviceDriftMonitor monitor, params (string Device, float[] Data)[] devices) =>
        FeedAndScore(monitor, 1000, devices);

    private static MemoryStream Saved(DeviceDriftMonitor monitor)
    {
        var stream = new MemoryStream();
        monitor.SaveState(stream);
        stream.Position = 0;
        return stream;
    }

    internal static async Task<string> Export(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream, Ct);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Keeps every log entry, formatted.</summary>
    internal sealed class ListLogger : ILogger<DeviceDriftMonitor>
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries)
            {
                Entries.Add((logLevel, formatter(state, exception)));
            }
        }
    }
}
