using Microsoft.Extensions.Logging;
using Prometheus;

namespace Har.Drift.Tests.Monitoring;

/// <summary>
/// A drift state that cannot be saved is seen without a logger. Found by a user of the package: a
/// <see cref="DriftMonitorOptions.StatePath"/> under a file (<c>/dev/null/…</c>) was taken at construction and failed
/// only in the log, at every tick and at dispose; without a logger the state was lost in silence.
/// </summary>
public sealed class DriftStateSaveErrorTests
{
    private static readonly Lazy<ReferenceProfile> Shared = new(() => Synthetic.Profile());

    [Fact]
    public void Constructor_StatePathUnderAFile_IOExceptionNamingThePathAndWhy()
    {
        var file = Path.GetTempFileName();
        try
        {
            var path = Path.Combine(file, "drift", "drift-state.bin");

            var ex = Assert.Throws<IOException>(() => new DeviceDriftMonitor(Shared.Value, Options(path)));

            Assert.Contains($"DriftMonitorOptions.StatePath '{path}' cannot be saved: '{file}' is a file, not a folder", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Constructor_WindowShorterThanTheProfilesSegments_WarnsThatNoAlarmCanBeRaised()
    {
        // Found from a packed package: WindowLength 50 against a profile of longer windows was taken without a word, and
        // every report then said in its notes that its window was not used for the alarm.
        var profile = Shared.Value;
        var logger = new DriftStateTests.ListLogger();
        using (new DeviceDriftMonitor(profile, new DriftMonitorOptions { WindowLength = profile.SegmentLength - 1, MetricsRegistry = Metrics.NewCustomRegistry() }, logger: logger))
        {
        }

        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains($"its windows of {profile.SegmentLength - 1} frames (DriftMonitorOptions.WindowLength) are shorter than the reference profile's {profile.SegmentLength}", warning.Message, StringComparison.Ordinal);

        logger.Entries.Clear();
        using (new DeviceDriftMonitor(profile, new DriftMonitorOptions { WindowLength = profile.SegmentLength, MetricsRegistry = Metrics.NewCustomRegistry() }, logger: logger))
        {
        }

        Assert.DoesNotContain(logger.Entries, e => e.Level == LogLevel.Warning);
    }

    [Fact]
    public void Constructor_StateFolderNotWritableNow_DoesNotThrow_StateSaveErrorSaysSo_AndTheMonitorScores()
    {
        // A folder the volume refuses now (permissions, a read-only remount, a full disk) can be fixed while the process
        // runs; a monitor that threw here would take its host's predictions down with it (the service's serving pipeline
        // feeds it). /sys refuses a new folder even to root (EPERM).
        if (!OperatingSystem.IsLinux() || !Directory.Exists("/sys/kernel"))
        {
            Assert.Skip("needs Linux's /sys, which refuses new folders even to root");
        }

        var path = Path.Combine("/sys", $"har-drift-{Guid.NewGuid():N}", "drift-state.bin");
        using var monitor = new DeviceDriftMonitor(Shared.Value, Options(path));

        var error = Assert.IsType<IOException>(monitor.StateSaveError);
        Assert.Contains($"DriftMonitorOptions.StatePath '{path}' cannot be saved now", error.Message, StringComparison.Ordinal);
        Assert.NotNull(error.InnerException);
        monitor.Observe("phone-1", Synthetic.Recording(7, 1000), 0, 0, 0.9f, 0.1f);
        Assert.NotNull(monitor.ScoreNow("phone-1"));
    }

    [Fact]
    public void Constructor_StatePathIsAFolder_IOExceptionSayingAFileIsExpected()
    {
        var dir = Directory.CreateTempSubdirectory("har-drift-state-");
        try
        {
            var ex = Assert.Throws<IOException>(() => new DeviceDriftMonitor(Shared.Value, Options(dir.FullName)));

            Assert.Contains($"DriftMonitorOptions.StatePath '{dir.FullName}' is a folder; expected the path of the state file", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Constructor_StatePathInAFolderNotThereYet_CreatesItAndLeavesNoProbeBehind()
    {
        var dir = Directory.CreateTempSubdirectory("har-drift-state-");
        try
        {
            var path = Path.Combine(dir.FullName, "new", "drift-state.bin");
            using (var monitor = new DeviceDriftMonitor(Shared.Value, Options(path)))
            {
                Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(dir.FullName, "new")));
                monitor.Observe("phone-1", Synthetic.Recording(7, 1000), 0, 0, 0.9f, 0.1f);
                monitor.ScoreNow("phone-1");
            }

            Assert.Equal([path], Directory.GetFileSystemEntries(Path.Combine(dir.FullName, "new"))); // the state file, no probe
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Dispose_StatePathBecameUnwritable_DoesNotThrow_StateSaveErrorNamesTheFile()
    {
        var dir = Directory.CreateTempSubdirectory("har-drift-state-");
        try
        {
            var folder = Path.Combine(dir.FullName, "state");
            var path = Path.Combine(folder, "drift-state.bin");
            var monitor = new DeviceDriftMonitor(Shared.Value, Options(path));
            monitor.Observe("phone-1", Synthetic.Recording(7, 1000), 0, 0, 0.9f, 0.1f);
            monitor.ScoreNow("phone-1");
            Directory.Delete(folder, recursive: true);
            File.WriteAllText(folder, "a file where the state's folder was"); // no save can create the folder now

            monitor.Dispose();

            var error = Assert.IsType<IOException>(monitor.StateSaveError);
            Assert.Contains($"Could not save the drift state to '{path}' (DriftMonitorOptions.StatePath)", error.Message, StringComparison.Ordinal);
            Assert.NotNull(error.InnerException);

            // The next save that succeeds clears it.
            File.Delete(folder);
            using var again = new DeviceDriftMonitor(Shared.Value, Options(path));
            again.Observe("phone-1", Synthetic.Recording(7, 1000), 0, 0, 0.9f, 0.1f);
            again.ScoreNow("phone-1");
            again.Dispose();
            Assert.Null(again.StateSaveError);
            Assert.True(File.Exists(path));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Dispose_StateStoreSaveThrows_DoesNotThrow_StateSaveErrorIsTheStoresException()
    {
        var store = new FailingStore();
        var monitor = new DeviceDriftMonitor(Shared.Value, new DriftMonitorOptions { WindowLength = 1000, StateStore = store, MetricsRegistry = Metrics.NewCustomRegistry() });
        monitor.Observe("phone-1", Synthetic.Recording(7, 1000), 0, 0, 0.9f, 0.1f);
        monitor.ScoreNow("phone-1");

        monitor.Dispose();

        Assert.Same(store.Thrown, monitor.StateSaveError);
    }

    private static DriftMonitorOptions Options(string statePath) =>
        new() { WindowLength = 1000, StatePath = statePath, MetricsRegistry = Metrics.NewCustomRegistry() };

    private sealed class FailingStore : DriftStateStore
    {
        public Exception Thrown { get; } = new TimeoutException("the database did not answer");

        public override IReadOnlyList<DriftStateRecord> Load(IReadOnlyList<string> deviceIds) => [];

        public override void Save(IReadOnlyList<DriftStateRecord> records) => throw Thrown;
    }
}
