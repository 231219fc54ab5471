using System.Diagnostics;
using System.Globalization;
using Har.Benchmarks.Drift;
using Har.Deployment;
using Har.Drift;
using Npgsql;
using DurableFile = Har.Drift.DurableFile;

namespace Har.Benchmarks.Fleet;

/// <summary>
/// The cost of a fleet's per-device drift state in PostgreSQL (<see cref="FleetDriftStateStore"/>, the service's default
/// in a fleet), against the state file of one process (<see cref="DriftMonitorOptions.StatePath"/>) as the baseline, for N
/// devices whose histories are all at their caps (the same fill as <see cref="DriftStateBenchmarks"/>):
/// <list type="bullet">
/// <item>save: every device changed, then the monitor's checkpoint (encode each device, upsert them in batches) — what a
/// replica writes every <c>StateSaveInterval</c> when all its devices stream, and at shutdown; baseline: the state file
/// rewritten (temp file, fsync, rename, directory fsync);</item>
/// <item>the WAL those upserts generate and the table's size afterwards (what the database's disk and replication see);</item>
/// <item>restore: a new monitor sees every device for the first time and its first scoring looks them all up in one batch
/// and decodes them — what a replica taking over a stopped one's devices pays at its next tick; baseline: the state
/// file read at construction.</item>
/// </list>
/// Usage: <c>drift-store &lt;connection string&gt; [devices=1000] [rounds=5]</c> (see <c>benchmarks/results/Fleet/run-fleet.sh</c>).
/// </summary>
internal static class DriftStoreRunner
{
    public static int Run(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: drift-store <connection string> [devices=1000] [rounds=5]");
            return 2;
        }

        var cs = args[1];
        var devices = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1000;
        var rounds = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 5;
        using (var connection = new NpgsqlConnection(cs))
        {
            connection.Open();
            using var drop = new NpgsqlCommand("DROP SCHEMA IF EXISTS har_audit CASCADE; DROP SCHEMA IF EXISTS har_fleet CASCADE", connection);
            drop.ExecuteNonQuery();
        }

        var folder = Directory.CreateTempSubdirectory("har-bench-drift-store-").FullName;
        try
        {
            var ids = Enumerable.Range(0, devices).Select(d => FormattableString.Invariant($"device-{d:D5}")).ToArray();
            var statePath = Path.Combine(folder, "drift-state.bin");
            using var store = new FleetDriftStateStore(cs);
            using var fileMonitor = Fill(new DeviceDriftMonitor(HaptStreams.Profile, Options(devices, null)), ids);
            using var storeMonitor = Fill(new DeviceDriftMonitor(HaptStreams.Profile, Options(devices, store)), ids);
            DurableFile.WriteAtomic(statePath, s => fileMonitor.SaveState(s));
            var fileBytes = new FileInfo(statePath).Length;
            Console.WriteLine(FormattableString.Invariant($"{devices} devices, histories at their caps: state file {fileBytes / 1e6:F1} MB ({fileBytes / devices / 1e3:F0} KB a device)"));
            Console.WriteLine("round | file save (s) | store save (s) | WAL of the store save (MB) | file restore (s) | store restore (s) | devices restored");

            List<double> fileSaves = [], storeSaves = [], wals = [], fileRestores = [], storeRestores = [];
            for (var round = 1; round <= rounds; round++)
            {
                var clock = Stopwatch.StartNew();
                DurableFile.WriteAtomic(statePath, s => fileMonitor.SaveState(s));
                fileSaves.Add(clock.Elapsed.TotalSeconds);

                Touch(storeMonitor, ids); // every device changed since its last save (not timed)
                var walBefore = WalPosition(cs);
                clock.Restart();
                storeMonitor.Checkpoint(force: true);
                storeSaves.Add(clock.Elapsed.TotalSeconds);
                wals.Add((WalPosition(cs) - walBefore) / 1e6);

                clock.Restart();
                int fileRestored;
                using (var restored = new DeviceDriftMonitor(HaptStreams.Profile, Options(devices, null)))
                using (var file = new FileStream(statePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
                {
                    fileRestored = restored.LoadState(file).Restored;
                }

                fileRestores.Add(clock.Elapsed.TotalSeconds);

                // A replica taking the devices over: each device's first frames, then its first scoring looks every new
                // device up in one batch (the scoring of the one device asked for is a small part of it).
                using var takeover = new DeviceDriftMonitor(HaptStreams.Profile, Options(devices, store));
                var session = HaptStreams.TestSessions[0];
                foreach (var id in ids)
                {
                    takeover.Observe(id, session.AsSpan(0, 6), 0, 0, 0.9f, 0.3f);
                }

                clock.Restart();
                takeover.ScoreNow(ids[0]);
                storeRestores.Add(clock.Elapsed.TotalSeconds);
                var storeRestored = ids.Count(id => takeover.HistoryOf(id) is { RotationPairs: > 0 });
                if (storeRestored != devices || fileRestored != devices)
                {
                    Console.Error.WriteLine($"restored {fileRestored} from the file and {storeRestored} from the store; expected {devices} each");
                    return 1;
                }

                Console.WriteLine(FormattableString.Invariant(
                    $"{round} | {fileSaves[^1]:F2} | {storeSaves[^1]:F2} | {wals[^1]:F0} | {fileRestores[^1]:F2} | {storeRestores[^1]:F2} | {storeRestored}"));
            }

            Console.WriteLine(FormattableString.Invariant(
                $"median | {Median(fileSaves):F2} | {Median(storeSaves):F2} | {Median(wals):F0} | {Median(fileRestores):F2} | {Median(storeRestores):F2} |"));
            Console.WriteLine(FormattableString.Invariant($"har_fleet.drift_devices after {rounds} rounds: {TableBytes(cs) / 1e6:F0} MB (table, TOAST and index)"));
            return 0;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static DriftMonitorOptions Options(int devices, DriftStateStore? store) => new()
    {
        MaxDevices = devices,
        MetricsRegistry = Prometheus.Metrics.NewCustomRegistry(),
        MonitorName = "bench",
        StateStore = store,
        ScoreInterval = TimeSpan.FromDays(1), // no timer tick during the measurement: the runner drives the checkpoints
    };

    /// <summary>Every device observed and scored once, then its history filled to its caps.</summary>
    private static DeviceDriftMonitor Fill(DeviceDriftMonitor monitor, string[] ids)
    {
        var session = HaptStreams.TestSessions[0];
        for (var d = 0; d < ids.Length; d++)
        {
            monitor.Observe(ids[d], session.AsSpan(d % 50 * 600, 200 * 6), 0, 0, 0.9f, 0.3f);
            monitor.ScoreNow(ids[d]);
            DriftStateBenchmarks.Fill(monitor.HistoryOf(ids[d])!, d);
        }

        return monitor;
    }

    /// <summary>Scores every device again, which marks it changed since its last save.</summary>
    private static void Touch(DeviceDriftMonitor monitor, string[] ids)
    {
        foreach (var id in ids)
        {
            monitor.ScoreNow(id);
        }
    }

    private static long WalPosition(string cs)
    {
        using var connection = new NpgsqlConnection(cs);
        connection.Open();
        using var command = new NpgsqlCommand("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn", connection);
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static long TableBytes(string cs)
    {
        using var connection = new NpgsqlConnection(cs);
        connection.Open();
        using var command = new NpgsqlCommand("SELECT pg_total_relation_size('har_fleet.drift_devices')", connection);
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
