using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Har.Audit;
using Microsoft.Data.Sqlite;

namespace Har.Benchmarks.Audit;

/// <summary>
/// Durable appends from 64 concurrent appenders, every append acknowledged only after fsync, against
/// the same records written to SQLite (WAL, synchronous=FULL) as one transaction each — what a
/// deployment-history table would do. SQLite gets its best case: one connection, writers serialised
/// in-process (no busy-wait). Times are per append (OperationsPerInvoke).
/// </summary>
[MemoryDiagnoser]
public class DurableAppendBenchmarks : IDisposable
{
    private const int Appenders = 64;
    private const int SqlitePerAppender = 2;
    private const int ClosedLoopPerAppender = 32;
    private const int InFlightPerAppender = 32;
    private const int PipelinedPerAppender = 1024;

    private readonly SemaphoreSlim _sqliteGate = new(1, 1);
    private string _dir = string.Empty;
    private AuditLog _log = null!;
    private SqliteConnection _sqlite = null!;
    private AuditEvent[] _records = [];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "har-bench-append-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _log = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(_dir, "log"), EnableMetrics = false });
        var details = JsonSerializer.SerializeToElement(new { from_weight = 10, to_weight = 50, gate = "success_rate>=0.99", p95_ms = 212.5 });
        _records = Enumerable.Range(0, 4096).Select(i => new AuditEvent
        {
            EventType = "rollout.step",
            EntityType = "model",
            EntityId = "har-cnn-bilstm",
            Severity = AuditSeverity.Info,
            ActionDetails = details,
            Actor = "rollout-controller-" + (i % 8),
            Timestamp = new DateTimeOffset(2026, 1, 15, 10, 30, 0, TimeSpan.Zero).AddMilliseconds(i),
        }).ToArray();

        _sqlite = new SqliteConnection($"Data Source={Path.Combine(_dir, "history.db")};Pooling=False");
        _sqlite.Open();
        Exec("PRAGMA journal_mode=WAL;");
        Exec("PRAGMA synchronous=FULL;");
        Exec("CREATE TABLE audit (id INTEGER PRIMARY KEY, event_type TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, actor TEXT NOT NULL, ts TEXT NOT NULL, sha256 TEXT NOT NULL, record TEXT NOT NULL);");
        Exec("CREATE INDEX audit_event ON audit(event_type, ts);");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log.Dispose();
        _sqlite.Dispose();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    public void Dispose()
    {
        _sqliteGate.Dispose();
        _sqlite?.Dispose();
        GC.SuppressFinalize(this);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Appenders * SqlitePerAppender, Description = "SQLite WAL FULL, 1 txn/record, 64 appenders")]
    public Task Sqlite_TransactionPerRecord() => Run(async (a, k) =>
    {
        for (var i = 0; i < SqlitePerAppender; i++)
        {
            await InsertAsync(_records[((a * SqlitePerAppender) + i) % _records.Length]).ConfigureAwait(false);
        }
    });

    [Benchmark(OperationsPerInvoke = Appenders * ClosedLoopPerAppender, Description = "AuditLog, 64 appenders x 1 in flight")]
    public Task AuditLog_OneInFlightPerAppender() => Run(async (a, _) =>
    {
        for (var i = 0; i < ClosedLoopPerAppender; i++)
        {
            await _log.AppendAsync(_records[((a * ClosedLoopPerAppender) + i) % _records.Length]).ConfigureAwait(false);
        }
    });

    /// <summary>
    /// Each appender keeps up to 32 appends in flight (a sliding window, like a Kafka producer's
    /// max-in-flight), 2,048 outstanding in all; each append is still acknowledged only after its fsync.
    /// 1,024 appends per appender per invocation, so an invocation is steady state, not window fill and drain.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Appenders * PipelinedPerAppender, Description = "AuditLog, 64 appenders x 32 in flight")]
    public Task AuditLog_PipelinedAppenders() => Run(async (a, _) =>
    {
        var window = new Queue<Task<AuditAppendResult>>(InFlightPerAppender);
        for (var i = 0; i < PipelinedPerAppender; i++)
        {
            if (window.Count == InFlightPerAppender)
            {
                await window.Dequeue().ConfigureAwait(false);
            }

            window.Enqueue(_log.AppendAsync(_records[((a * PipelinedPerAppender) + i) % _records.Length]));
        }

        while (window.Count > 0)
        {
            await window.Dequeue().ConfigureAwait(false);
        }
    });

    private static Task Run(Func<int, int, Task> appender) =>
        Task.WhenAll(Enumerable.Range(0, Appenders).Select(a => Task.Run(() => appender(a, 0))));

    private async Task InsertAsync(AuditEvent record)
    {
        var json = record.ToCanonicalJson();
        var sha = record.ComputeSha256();
        await _sqliteGate.WaitAsync().ConfigureAwait(false);
        try
        {
            using var tx = _sqlite.BeginTransaction();
            using var cmd = _sqlite.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO audit (event_type, entity_type, entity_id, actor, ts, sha256, record) VALUES ($e, $t, $i, $a, $ts, $h, $r);";
            cmd.Parameters.AddWithValue("$e", record.EventType);
            cmd.Parameters.AddWithValue("$t", record.EntityType);
            cmd.Parameters.AddWithValue("$i", record.EntityId);
            cmd.Parameters.AddWithValue("$a", record.Actor);
            cmd.Parameters.AddWithValue("$ts", record.Timestamp.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            cmd.Parameters.AddWithValue("$h", sha);
            cmd.Parameters.AddWithValue("$r", System.Text.Encoding.UTF8.GetString(json));
            await cmd.ExecuteNonQueryAsync().ConfigureAwait(false);
            await tx.CommitAsync().ConfigureAwait(false);
        }
        finally
        {
            _sqliteGate.Release();
        }
    }

    private void Exec(string sql)
    {
        using var cmd = _sqlite.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
}
