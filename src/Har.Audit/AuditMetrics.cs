using Prometheus;

namespace Har.Audit;

/// <summary>The log's Prometheus metrics.</summary>
internal sealed class AuditMetrics
{
    private readonly Counter? _appends;
    private readonly Counter? _failures;
    private readonly Histogram? _fsync;
    private readonly Histogram? _group;
    private readonly Gauge? _entries;
    private readonly Gauge? _bytes;

    public AuditMetrics(AuditLogOptions options)
    {
        if (!options.EnableMetrics)
        {
            return;
        }

        var factory = Metrics.WithCustomRegistry(options.MetricsRegistry ?? Metrics.DefaultRegistry);
        _appends = factory.CreateCounter("har_audit_appends_total", "Audit log appends acknowledged (durable).");
        _failures = factory.CreateCounter("har_audit_append_failures_total", "Audit log appends that failed (I/O error; the log is then faulted).");
        _fsync = factory.CreateHistogram("har_audit_fsync_duration_seconds", "Latency of one group-commit fsync of the audit log segment.", new HistogramConfiguration
        {
            Buckets = Histogram.ExponentialBuckets(0.0001, 2, 16),
        });
        _group = factory.CreateHistogram("har_audit_group_commit_records", "Appends committed per fsync (group commit size).", new HistogramConfiguration
        {
            Buckets = Histogram.ExponentialBuckets(1, 2, 16),
        });
        _entries = factory.CreateGauge("har_audit_log_entries", "Entries in the audit log.");
        _bytes = factory.CreateGauge("har_audit_log_bytes", "Size of the audit log segment in bytes.");
    }

    public void Committed(int records, double fsyncSeconds, long entries, long bytes)
    {
        _appends?.Inc(records);
        _fsync?.Observe(fsyncSeconds);
        _group?.Observe(records);
        _entries?.Set(entries);
        _bytes?.Set(bytes);
    }

    public void Size(long entries, long bytes)
    {
        _entries?.Set(entries);
        _bytes?.Set(bytes);
    }

    public void Failed(int records) => _failures?.Inc(records);
}
