using System.Globalization;
using System.Text;
using System.Text.Json;
using Har.Audit;
using Npgsql;
using Prometheus;

namespace Har.Benchmarks.Fleet;

/// <summary>
/// Acknowledged audit appends per second through PostgreSQL from P separate processes (as P replicas: each its own
/// <see cref="AuditLog"/>, connection pool and writer), each with C concurrent appenders, with group commit (the default)
/// and with one INSERT transaction per record (<see cref="AuditLogOptions.MaxGroupCommitRecords"/> = 1). The processes
/// append from their start; the appends acknowledged inside the common measuring window (after a warm-up, on the
/// machine's monotonic clock) count, with their latency. Each configuration starts on an empty log and ends with a full verification.
/// Usage: <c>fleet-append &lt;connection string&gt; [seconds=10] [processes=3] [appenders per process=64]</c>
/// (see <c>benchmarks/results/Fleet/run-fleet.sh</c>, which starts a throwaway cluster).
/// </summary>
internal static class FleetAppendRunner
{
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(8);

    public static int Run(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: fleet-append <connection string> [seconds=10] [processes=3] [appenders per process=64]");
            return 2;
        }

        var cs = args[1];
        var seconds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 10;
        var processes = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 3;
        var appenders = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 64;
        var rows = new List<string>();
        double? baseline = null;
        foreach (var (name, group) in new[] { ("one INSERT transaction per record (MaxGroupCommitRecords = 1)", 1), ("group commit (default, MaxGroupCommitRecords = 16384)", 16384) })
        {
            Reset(cs);
            var start = FleetProcess.Now() + (long)(WarmUp.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
            var end = start + (seconds * System.Diagnostics.Stopwatch.Frequency);
            var workers = Enumerable.Range(1, processes).Select(p => new FleetProcess(
                $"writer-{p}", "fleet-append-worker", cs, group.ToString(CultureInfo.InvariantCulture), appenders.ToString(CultureInfo.InvariantCulture), start.ToString(CultureInfo.InvariantCulture), end.ToString(CultureInfo.InvariantCulture), p.ToString(CultureInfo.InvariantCulture))).ToList();
            long acknowledged = 0, transactions = 0, late = 0;
            var latencies = new List<double>();
            try
            {
                foreach (var worker in workers)
                {
                    var result = worker.WaitFor(l => l.StartsWith("RESULT ", StringComparison.Ordinal), WarmUp + TimeSpan.FromSeconds(seconds + 120));
                    using var doc = JsonDocument.Parse(result["RESULT ".Length..]);
                    acknowledged += doc.RootElement.GetProperty("acknowledged").GetInt64();
                    transactions += doc.RootElement.GetProperty("transactions").GetInt64();
                    late += doc.RootElement.GetProperty("started_late").GetBoolean() ? 1 : 0;
                    latencies.AddRange(doc.RootElement.GetProperty("latency_us").EnumerateArray().Select(e => e.GetInt64() / 1000.0));
                    worker.WaitForExit(TimeSpan.FromSeconds(60));
                }
            }
            finally
            {
                workers.ForEach(w => w.Dispose());
            }

            latencies.Sort();
            var verified = AuditLog.VerifyDatabase(cs, null);
            var perSecond = acknowledged / (double)seconds;
            baseline ??= perSecond;
            rows.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {processes} × {appenders} | {acknowledged:N0} in {seconds} s | **{perSecond:N0}** | {perSecond / baseline.Value:0.0}× | {transactions:N0} | {(double)acknowledged / Math.Max(1, transactions):0.0} | {FleetProcess.Percentile(latencies, 0.50):0.0} / {FleetProcess.Percentile(latencies, 0.99):0.0} | {(verified.IsValid ? "valid" : "FAILED: " + verified.Message)}, {verified.EntriesVerified:N0} entries |{(late > 0 ? $" ({late} process(es) started after the window opened)" : string.Empty)}"));
        }

        Console.WriteLine("| mode | processes × appenders | acknowledged in the window | appends/s | vs per-record | transactions | records / transaction | latency p50 / p99 (ms) | verify after |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            Console.WriteLine(row);
        }

        return 0;
    }

    /// <summary>One writer process: appends from its start until the window closes; prints what it acknowledged inside the window.</summary>
    public static int Worker(string[] args)
    {
        var (cs, group, appenders, start, end, index) = (args[1], int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture), long.Parse(args[4], CultureInfo.InvariantCulture), long.Parse(args[5], CultureInfo.InvariantCulture), args[6]);
        var registry = new CollectorRegistry();
        using var log = AuditLog.Open(new AuditLogOptions { ConnectionString = cs, MaxGroupCommitRecords = group, MetricsRegistry = registry });
        var details = JsonSerializer.SerializeToElement(new { step = 3, weight = 50, gate = "error_rate", passed = true });
        long acknowledged = 0;
        var latencies = new List<long>[appenders];
        var startedLate = FleetProcess.Now() > start;
        var tasks = Enumerable.Range(0, appenders).Select(a =>
        {
            var mine = latencies[a] = new List<long>(4096);
            var id = string.Create(CultureInfo.InvariantCulture, $"p{index}-a{a}");
            return Task.Run(async () =>
            {
                var seq = 0;
                while (true)
                {
                    var t0 = FleetProcess.Now();
                    if (t0 >= end)
                    {
                        return;
                    }

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
                    var t1 = FleetProcess.Now();
                    if (t1 >= start && t1 <= end)
                    {
                        Interlocked.Increment(ref acknowledged);
                        mine.Add((long)(FleetProcess.Ms(t1 - t0) * 1000));
                    }
                }
            });
        }).ToArray();

        Thread.Sleep(TimeSpan.FromMilliseconds(Math.Max(0, FleetProcess.Ms(start - FleetProcess.Now()))));
        var before = Transactions(registry);
        Thread.Sleep(TimeSpan.FromMilliseconds(Math.Max(0, FleetProcess.Ms(end - FleetProcess.Now()))));
        var transactions = Transactions(registry) - before;
        Task.WaitAll(tasks);
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["acknowledged"] = acknowledged,
            ["transactions"] = transactions,
            ["started_late"] = startedLate,
            ["latency_us"] = latencies.SelectMany(l => l).ToArray(),
        }));
        return 0;
    }

    private static void Reset(string cs)
    {
        using (var connection = new NpgsqlConnection(cs))
        {
            connection.Open();
            using var drop = new NpgsqlCommand("DROP SCHEMA IF EXISTS har_audit CASCADE", connection);
            drop.ExecuteNonQuery();
        }

        // The schema is created once here, so the writers do not all migrate at their start.
        using var log = AuditLog.Open(new AuditLogOptions { ConnectionString = cs, EnableMetrics = false });
    }

    private static long Transactions(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        registry.CollectAndExportAsTextAsync(stream).GetAwaiter().GetResult();
        var line = Encoding.UTF8.GetString(stream.ToArray()).Split('\n').FirstOrDefault(l => l.StartsWith("har_audit_fsync_duration_seconds_count", StringComparison.Ordinal));
        return line is null ? 0 : (long)double.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture);
    }
}
