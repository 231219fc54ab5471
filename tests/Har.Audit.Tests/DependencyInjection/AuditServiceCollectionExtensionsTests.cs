using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Audit.Tests.DependencyInjection;

public sealed class AuditServiceCollectionExtensionsTests
{
    [Fact]
    public void AddHarAudit_WithoutDirectory_FailsValidationWithTheReason()
    {
        using var provider = new ServiceCollection().AddHarAudit().Services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<AuditLog>());
        Assert.Contains("AuditLogOptions.Directory is required", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddHarAudit_OutOfRangeOption_FailsValidation()
    {
        using var dir = new TempDir();
        using var provider = new ServiceCollection()
            .AddHarAudit(o => o.Directory = dir.Path)
            .Configure(o => o.MaxGroupCommitRecords = 0)
            .Services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<AuditLogOptions>>().Value);
        Assert.Contains("MaxGroupCommitRecords", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AddHarAudit_Configured_ResolvesOneLogAndRecordsMetricsInTheGivenRegistry()
    {
        using var dir = new TempDir();
        var registry = new CollectorRegistry();
        await using (var provider = new ServiceCollection()
            .AddHarAudit(o =>
            {
                o.Directory = dir.Path;
                o.MetricsRegistry = registry;
            })
            .Services.BuildServiceProvider())
        {
            var log = provider.GetRequiredService<AuditLog>();
            Assert.Same(log, provider.GetRequiredService<AuditLog>());
            await log.AppendAsync(Samples.Event(1), TestContext.Current.CancellationToken);
            await log.AppendAsync(Samples.Event(2), TestContext.Current.CancellationToken);

            using var stream = new MemoryStream();
            await registry.CollectAndExportAsTextAsync(stream, TestContext.Current.CancellationToken);
            var text = Encoding.UTF8.GetString(stream.ToArray());
            Assert.Contains("har_audit_appends_total 2", text, StringComparison.Ordinal);
            Assert.Contains("har_audit_log_entries 2", text, StringComparison.Ordinal);
            Assert.Contains("har_audit_fsync_duration_seconds_bucket", text, StringComparison.Ordinal);
            Assert.Contains("har_audit_log_bytes", text, StringComparison.Ordinal);
        }

        // Disposed with the container: the log can be opened again.
        using var reopened = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, EnableMetrics = false });
        Assert.Equal(2, reopened.Count);
    }
}
