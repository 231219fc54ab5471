using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Har.Audit;

namespace Har.Benchmarks.Audit;

/// <summary>
/// What <see cref="AuditLog.AppendOnceAsync"/> costs in the file log, where it scans the 40-byte index rows for an
/// identical record: a retry of the newest entry (found after a scan of every row, nothing written) in logs of 1,000
/// and 1,000,000 entries, beside a plain durable append (one write and fsync) as the baseline.
/// </summary>
[MemoryDiagnoser]
public class AppendOnceBenchmarks
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 15, 0, 0, 0, TimeSpan.Zero);
    private static readonly JsonElement Details = JsonSerializer.SerializeToElement(new { step = 1 });
    private string _dir = string.Empty;
    private AuditLog _small = null!;
    private AuditLog _large = null!;
    private AuditEvent _smallNewest = null!;
    private AuditEvent _largeNewest = null!;
    private int _appended;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "har-bench-once-" + Guid.NewGuid().ToString("N"));
        (_small, _smallNewest) = Build(Path.Combine(_dir, "small"), 1_000);
        (_large, _largeNewest) = Build(Path.Combine(_dir, "large"), 1_000_000);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _small.Dispose();
        _large.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true, Description = "AppendAsync, new record (write + fsync)")]
    public long Append() => _small.AppendAsync(Event(2_000_000 + _appended++)).GetAwaiter().GetResult().Index;

    [Benchmark(Description = "AppendOnceAsync, retry of the newest entry, n = 1,000")]
    public long Retry_1000() => Found(_small, _smallNewest);

    [Benchmark(Description = "AppendOnceAsync, retry of the newest entry, n = 1,000,000")]
    public long Retry_1000000() => Found(_large, _largeNewest);

    private static long Found(AuditLog log, AuditEvent record)
    {
        var result = log.AppendOnceAsync(record).GetAwaiter().GetResult();
        return result.AlreadyPresent ? result.Index : throw new InvalidOperationException("the retry was written again");
    }

    private static AuditEvent Event(int i) => new()
    {
        EventType = "bench",
        EntityType = "model",
        EntityId = "m",
        Severity = AuditSeverity.Info,
        ActionDetails = Details,
        Actor = "bench",
        Timestamp = T0.AddMilliseconds(i),
    };

    private static (AuditLog Log, AuditEvent Newest) Build(string dir, int count)
    {
        var log = AuditLog.Open(new AuditLogOptions { Directory = dir, EnableMetrics = false });
        var pending = new List<Task<AuditAppendResult>>(8192);
        for (var i = 0; i < count; i++)
        {
            pending.Add(log.AppendAsync(Event(i)));
            if (pending.Count == 8192)
            {
                Task.WaitAll(pending);
                pending.Clear();
            }
        }

        Task.WaitAll(pending);
        return (log, Event(count - 1));
    }
}
