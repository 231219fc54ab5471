using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Har.Audit;
using Npgsql;
using Prometheus;

namespace Har.Benchmarks.Audit;

/// <summary>
/// A measured runner (not BenchmarkDotNet: each configuration is a multi-second run against a live server):
/// acknowledged audit appends per second through PostgreSQL from W writers (separate <see cref="AuditLog"/> instances,
/// each with its own connection pool, as separate replicas have), each with C concurrent appenders, with group commit
/// (the default) and with one transaction per record (<see cref="AuditLogOptions.MaxGroupCommitRecords"/> = 1: one
/// INSERT transaction per append). Each configuration starts on an empty log and ends with a full verification.
/// Usage: <c>pg-append &lt;connection string&gt; [seconds=10] [writers=3] [appenders per writer=64]</c>
/// (see <c>benchmarks/results/Audit/run-postgres.sh</c>, which starts a throwaway cluster).
/// </summary>
internal static class PostgresAppendRunner
{
    public static int Run(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: pg-append <connection string> [seconds=10] [writers=3] [appenders per writer=64]");
            return 2;
        }

        var cs = args[1];
        var seconds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 10;
        var writers = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 3;
        var appenders = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 64;
        var rows = new List<string>();
        double? baseline = null;
        foreach (var (name, group) in new[] { ("one INSERT transaction per record (MaxGroupCommitRecords = 1)", 1), ("group commit (default, MaxGroupCommitRecords = 16384)", 16384) })
        {
            Reset(cs);
            var r = Measure(cs, group, TimeSpan.FromSeconds(seconds), writers, appenders);
            baseline ??= r.PerSecond;
            rows.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {writers} × {appenders} | {r.Acknowledged:N0} in {r.Elapsed.TotalSeconds:0.0} s | **{r.PerSecond:N0}** | {r.PerSecond / baseline.Value:0.0}× | {r.Transactions:N0} | {(double)r.Acknowledged / Math.Max(1, r.Transactions):0.0} | {r.P50Ms:0.0} / {r.P99Ms:0.0} | {(r.Verified ? "valid" : "FAILED")}, {r.Entries:N0} entries |"));
        }

        Console.WriteLine("| mode | writers × appenders | acknowledged | appends/s | vs per-record | transactions | records / transaction | latency p50 / p99 (ms) | verify after |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            Console.WriteLine(row);
        }

        return 0;
    }

    private static void Reset(string cs)
    {
        using var connection = new NpgsqlConnection(cs);
        connection.Open();
        using var drop = new NpgsqlCommand("DROP SCHEMA IF EXISTS har_audit CASCADE", connection);
        drop.ExecuteNonQuery();
    }

    private static Result Measure(string cs, int group, TimeSpan duration, int writerCount, int appenders)
    {
        var registries = Enumerable.Range(0, writerCount).Select(_ => new CollectorRegistry()).ToArray();
        var logs = registries.Select(r => AuditLog.Open(new AuditLogOptions { ConnectionString = cs, MaxGroupCommitRecords = group, MetricsRegistry = r })).ToArray();
        try
        {
            var details = JsonSerializer.SerializeToElement(new { step = 3, weight = 50, gate = "error_rate", passed = true });
            long acknowledged = 0;
            var measuring = false;
            var stop = false;
            var latencies = new List<double>[writerCount * appenders];
            var tasks = new List<Task>();
            for (var w = 0; w < writerCount; w++)
            {
                for (var a = 0; a < appenders; a++)
                {
                    var log = logs[w];
                    var mine = latencies[(w * appenders) + a] = new List<double>(4096);
                    var id = string.Create(CultureInfo.InvariantCulture, $"w{w}-a{a}");
                    tasks.Add(Task.Run(async () =>
                    {
                        var seq = 0;
                        while (!Volatile.Read(ref stop))
                        {
                            var t0 = Stopwatch.GetTimestamp();
                            await log.AppendAsync(new AuditEvent
                            {
                                EventType = "rollout.step",
                                EntityType = "rollout",
                                EntityId = id,
                                Severity = AuditSeverity.Info,
                                ActionDetails = details,
                                Actor = "replica-" + id,
                                Timestamp = DateTimeOffset.UnixEpoch.AddSeconds(seq++),
                            }).ConfigureAwait(false);
                            if (Volatile.Read(ref measuring))
                            {
                                Interlocked.Increment(ref acknowledged);
                                mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                            }
                        }
                    }));
                }
            }

            Thread.Sleep(TimeSpan.FromSeconds(2)); // warm-up: connections, plans, JIT
            var transactionsBefore = registries.Sum(Transactions);
            var watch = Stopwatch.StartNew();
            Volatile.Write(ref measuring, true);
            Thread.Sleep(duration);
            Volatile.Write(ref measuring, false);
            var elapsed = watch.Elapsed;
            var count = Interlocked.Read(ref acknowledged);
            var transactions = registries.Sum(Transactions) - transactionsBefore;
            Volatile.Write(ref stop, true);
            Task.WaitAll([.. tasks]);
            var all = latencies.SelectMany(l => l).Order().ToArray();
            var verified = AuditLog.VerifyDatabase(cs, null);
            return new Result(count, elapsed, count / elapsed.TotalSeconds, transactions, Percentile(all, 0.50), Percentile(all, 0.99), verified.IsValid, verified.EntriesVerified);
        }
        finally
        {
            foreach (var log in logs)
            {
                log.Dispose();
            }
        }
    }

    private static long Transactions(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        registry.CollectAndExportAsTextAsync(stream).GetAwaiter().GetResult();
        var line = Encoding.UTF8.GetString(stream.ToArray()).Split('\n').FirstOrDefault(l => l.StartsWith("har_audit_fsync_duration_seconds_count", StringComparison.Ordinal));
        return line is null ? 0 : (long)double.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture);
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];

    private readonly record struct Result(long Acknowledged, TimeSpan Elapsed, double PerSecond, long Transactions, double P50Ms, double P99Ms, bool Verified, long Entries);
}
