using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Har.Audit.Storage;
using Prometheus;

namespace Har.Audit;

/// <summary>
/// The log's metrics, through prometheus-net and through the <c>System.Diagnostics.Metrics</c> meter
/// <c>Har.Audit</c> (same instrument names, so OpenTelemetry users collect them without prometheus-net).
/// </summary>
internal sealed class AuditMetrics : IDisposable
{
    /// <summary>The meter name: the assembly name.</summary>
    public const string MeterName = "Har.Audit";

    private static readonly Meter Meter = new(MeterName, typeof(AuditMetrics).Assembly.GetName().Version?.ToString());
    private static readonly ConcurrentDictionary<AuditMetrics, byte> Live = new();
    private static readonly Counter<long> MeterAppends = Meter.CreateCounter<long>("har_audit_appends_total", description: "Audit log appends acknowledged (durable).");
    private static readonly Counter<long> MeterFailures = Meter.CreateCounter<long>("har_audit_append_failures_total", description: "Audit log appends that failed (I/O error; the log is then unavailable until a probe write succeeds).");
    private static readonly Counter<long> MeterCheckpointFailures = Meter.CreateCounter<long>("har_audit_checkpoint_failures_total", description: "Checkpoints the signer refused or failed to sign.");
    private static readonly Histogram<double> MeterFsync = Meter.CreateHistogram<double>("har_audit_fsync_duration_seconds", unit: "s", description: "Latency of one group-commit fsync of the audit log segment.");
    private static readonly Histogram<long> MeterGroup = Meter.CreateHistogram<long>("har_audit_group_commit_records", description: "Appends committed per fsync (group commit size).");

    private readonly AuditLog _log;
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly Prometheus.Counter? _appends;
    private readonly Prometheus.Counter? _failures;
    private readonly Prometheus.Counter? _checkpointFailures;
    private readonly Prometheus.Histogram? _fsync;
    private readonly Prometheus.Histogram? _group;
    private readonly Gauge? _entries;
    private readonly Gauge? _bytes;
    private readonly Gauge? _writable;
    private readonly Gauge? _quarantined;
    private readonly Gauge? _checkpointSize;
    private readonly bool _enabled;
    private long _entriesValue;
    private long _bytesValue;
    private long _quarantinedValue;
    private long _checkpointSizeValue;
    private int _writableValue = 1;

    static AuditMetrics()
    {
        Meter.CreateObservableGauge("har_audit_log_entries", () => Observe(m => m._entriesValue), description: "Entries in the audit log.");
        Meter.CreateObservableGauge("har_audit_log_bytes", () => Observe(m => m._bytesValue), unit: "By", description: "Size of the audit log segment in bytes.");
        Meter.CreateObservableGauge("har_audit_writable", () => Observe(m => m._writableValue), description: "1 when the audit log accepts appends, 0 while it is unavailable (read-only or full disk, I/O error).");
        Meter.CreateObservableGauge("har_audit_quarantined_entries", () => Observe(m => m._quarantinedValue), description: "Entries removed from the audit log by repairs (kept in quarantine/); non-zero means the log is incomplete.");
        Meter.CreateObservableGauge("har_audit_checkpoint_size", () => Observe(m => m._checkpointSizeValue), description: "Tree size of the latest signed checkpoint.");
    }

    public AuditMetrics(AuditLogOptions options, AuditLog log)
    {
        _log = log;
        _tags = [new("origin", log.Origin)];
        _enabled = options.EnableMetrics;
        if (!_enabled)
        {
            return;
        }

        var factory = Metrics.WithCustomRegistry(options.MetricsRegistry ?? Metrics.DefaultRegistry);
        _appends = factory.CreateCounter("har_audit_appends_total", "Audit log appends acknowledged (durable).");
        _failures = factory.CreateCounter("har_audit_append_failures_total", "Audit log appends that failed (I/O error; the log is then unavailable until a probe write succeeds).");
        _checkpointFailures = factory.CreateCounter("har_audit_checkpoint_failures_total", "Checkpoints the signer refused or failed to sign.");
        _fsync = factory.CreateHistogram("har_audit_fsync_duration_seconds", "Latency of one group-commit fsync of the audit log segment.", new HistogramConfiguration
        {
            Buckets = Prometheus.Histogram.ExponentialBuckets(0.0001, 2, 16),
        });
        _group = factory.CreateHistogram("har_audit_group_commit_records", "Appends committed per fsync (group commit size).", new HistogramConfiguration
        {
            Buckets = Prometheus.Histogram.ExponentialBuckets(1, 2, 16),
        });
        _entries = factory.CreateGauge("har_audit_log_entries", "Entries in the audit log.");
        _bytes = factory.CreateGauge("har_audit_log_bytes", "Size of the audit log segment in bytes.");
        _writable = factory.CreateGauge("har_audit_writable", "1 when the audit log accepts appends, 0 while it is unavailable (read-only or full disk, I/O error).");
        _quarantined = factory.CreateGauge("har_audit_quarantined_entries", "Entries removed from the audit log by repairs (kept in quarantine/); non-zero means the log is incomplete.");
        _checkpointSize = factory.CreateGauge("har_audit_checkpoint_size", "Tree size of the latest signed checkpoint.");
        _writable.Set(1);
        Live[this] = 0;
    }

    public void Committed(int records, double fsyncSeconds, long entries, long bytes)
    {
        if (!_enabled)
        {
            return;
        }

        _appends!.Inc(records);
        _fsync!.Observe(fsyncSeconds);
        _group!.Observe(records);
        MeterAppends.Add(records, _tags[0]);
        MeterFsync.Record(fsyncSeconds, _tags[0]);
        MeterGroup.Record(records, _tags[0]);
        Size(entries, bytes);
    }

    public void Size(long entries, long bytes)
    {
        Volatile.Write(ref _entriesValue, entries);
        Volatile.Write(ref _bytesValue, bytes);
        _entries?.Set(entries);
        _bytes?.Set(bytes);
    }

    public void Failed(int records)
    {
        _failures?.Inc(records);
        if (_enabled)
        {
            MeterFailures.Add(records, _tags[0]);
        }
    }

    public void Writable(bool writable)
    {
        Volatile.Write(ref _writableValue, writable ? 1 : 0);
        _writable?.Set(writable ? 1 : 0);
    }

    public void Quarantine(QuarantineSummary summary)
    {
        Volatile.Write(ref _quarantinedValue, summary.EntriesRemoved + (summary.Repairs > 0 && summary.EntriesRemoved == 0 ? 1 : 0));
        _quarantined?.Set(Volatile.Read(ref _quarantinedValue));
    }

    public void Checkpoint(long size)
    {
        Volatile.Write(ref _checkpointSizeValue, size);
        _checkpointSize?.Set(size);
    }

    public void CheckpointFailed()
    {
        _checkpointFailures?.Inc();
        if (_enabled)
        {
            MeterCheckpointFailures.Add(1, _tags[0]);
        }
    }

    public void Dispose() => Live.TryRemove(this, out _);

    private static IEnumerable<Measurement<long>> Observe(Func<AuditMetrics, long> value)
    {
        foreach (var m in Live.Keys)
        {
            yield return new Measurement<long>(value(m), new KeyValuePair<string, object?>("origin", m._log.Origin));
        }
    }
}
