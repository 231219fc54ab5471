using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Prometheus;

namespace Har.Audit.Tests.DependencyInjection;

/// <summary>The package as a host uses it: configuration binding, automatic checkpoints, the health check, the Meter.</summary>
public sealed class AuditHostingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AddCheckpointSigning_SignsEachIntervalTheLogGrewAndAtShutdown()
    {
        using var dir = new TempDir();
        var keyPath = SaveSigningKey(dir);

        var time = new FakeTimeProvider(Samples.T0);
        await using var provider = Services(dir.Combine("log"), keyPath, time).BuildServiceProvider();
        var signer = Assert.Single(provider.GetServices<IHostedService>());
        await signer.StartAsync(Ct);
        var log = provider.GetRequiredService<AuditLog>();
        for (var i = 0; i < 3; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        Assert.Null(log.LatestCheckpoint);
        time.Advance(TimeSpan.FromMinutes(1));
        await Until(() => log.LatestCheckpoint?.TreeSize == 3, "a checkpoint at size 3 after the first interval");

        await log.AppendAsync(Samples.Event(3), Ct);
        await log.AppendAsync(Samples.Event(4), Ct);
        await signer.StopAsync(Ct);
        Assert.Equal(5, log.LatestCheckpoint!.TreeSize); // signed at shutdown: every acknowledged entry anchored
        Assert.True(AuditLog.Verify(log.Directory, null).IsValid);
    }

    [Fact]
    public async Task AddCheckpointSigning_StartedOverEntriesACrashLeftUnsigned_SignsThemAtStartNotAfterTheInterval()
    {
        // A process that crashes sooner than the interval after its start (a crash loop, frequent kills) never signed: the
        // entries it acknowledged stayed beyond every checkpoint, where they can be cut off the log unnoticed.
        using var dir = new TempDir();
        var keyPath = SaveSigningKey(dir);

        var time = new FakeTimeProvider(Samples.T0);
        await using (var first = Services(dir.Combine("log"), keyPath, time).BuildServiceProvider())
        {
            await Assert.Single(first.GetServices<IHostedService>()).StartAsync(Ct);
            var log = first.GetRequiredService<AuditLog>();
            for (var i = 0; i < 4; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }

            Assert.Null(log.LatestCheckpoint);
        } // no StopAsync: the process died before its shutdown signing

        await using var provider = Services(dir.Combine("log"), keyPath, time).BuildServiceProvider();
        await Assert.Single(provider.GetServices<IHostedService>()).StartAsync(Ct);

        Assert.Equal(4, provider.GetRequiredService<AuditLog>().LatestCheckpoint?.TreeSize); // the clock has not moved
        Assert.True(AuditLog.Verify(dir.Combine("log"), null).IsValid);
    }

    [Fact]
    public async Task AddCheckpointSigning_EntryDamagedAfterTheLastCheckpoint_RefusesToSignAndReportsIt()
    {
        using var dir = new TempDir();
        var keyPath = SaveSigningKey(dir);

        var time = new FakeTimeProvider(Samples.T0);
        var registry = new CollectorRegistry();
        await using var provider = Services(dir.Combine("log"), keyPath, time, registry).BuildServiceProvider();
        var signer = Assert.Single(provider.GetServices<IHostedService>());
        await signer.StartAsync(Ct);
        var log = provider.GetRequiredService<AuditLog>();
        for (var i = 0; i < 5; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        time.Advance(TimeSpan.FromMinutes(1));
        await Until(() => log.LatestCheckpoint?.TreeSize == 5, "the first checkpoint");

        await log.AppendAsync(Samples.Event(5), Ct);
        await log.AppendAsync(Samples.Event(6), Ct);
        await Storage.AuditLogCrashTests.FlipByte(Path.Combine(log.Directory, "entries.log"), Storage.AuditLogCrashTests.IndexRowOffset(log.Directory, 6) + 30, Ct);
        time.Advance(TimeSpan.FromMinutes(1));
        await Until(() => log.SignerProblem is not null, "the signer to report the damaged entry");

        Assert.Equal(5, log.LatestCheckpoint!.TreeSize); // nothing signed over the damaged entry
        Assert.Contains("Entry 6", log.SignerProblem, StringComparison.Ordinal);
        var health = await new AuditLogHealthCheck(provider).CheckHealthAsync(Context(HealthStatus.Unhealthy), Ct);
        Assert.Equal(HealthStatus.Degraded, health.Status);
        Assert.Contains("not being signed", health.Description, StringComparison.Ordinal);
        Assert.Contains("har_audit_checkpoint_failures_total 1", await Export(registry), StringComparison.Ordinal);
        await signer.StopAsync(Ct);
        Assert.Equal(5, log.LatestCheckpoint!.TreeSize);
    }

    [Fact]
    public async Task AddCheckpointSigning_PassFailedOnIO_IsRetriedSoonAfter_NotOnlyAtTheNextInterval()
    {
        // Found from outside: after a full disk was freed, appends resumed within 5 s but /ready said "checkpoints are not
        // being signed" until the next interval, a minute later. Here the key file is away at the interval's pass.
        using var dir = new TempDir();
        var keyPath = SaveSigningKey(dir);
        var time = new FakeTimeProvider(Samples.T0);
        await using var provider = Services(dir.Combine("log"), keyPath, time).BuildServiceProvider();
        var signer = Assert.Single(provider.GetServices<IHostedService>());
        await signer.StartAsync(Ct);
        var log = provider.GetRequiredService<AuditLog>();
        for (var i = 0; i < 3; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        File.Move(keyPath, keyPath + ".away");
        time.Advance(TimeSpan.FromMinutes(1));
        await Until(() => log.SignerProblem is not null, "the interval's pass to fail without its key");
        var health = await new AuditLogHealthCheck(provider).CheckHealthAsync(Context(HealthStatus.Unhealthy), Ct);
        Assert.Contains("not being signed", health.Description, StringComparison.Ordinal);

        File.Move(keyPath + ".away", keyPath);

        // Half the checkpoint interval, one fake second at a time (each step lets the signer's delay see it): the retries
        // start at the log's retry interval (5 s) and double, so one falls in it; the next regular pass does not.
        for (var s = 0; s < 30 && log.SignerProblem is not null; s++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(50, Ct);
        }

        await Until(() => log.SignerProblem is null, "a retry to sign");
        Assert.Equal(3, log.LatestCheckpoint?.TreeSize);
        Assert.True(time.GetUtcNow() < Samples.T0.AddMinutes(2)); // before the second interval's pass
        health = await new AuditLogHealthCheck(provider).CheckHealthAsync(Context(HealthStatus.Unhealthy), Ct);
        Assert.Equal(HealthStatus.Healthy, health.Status);
        await signer.StopAsync(Ct);
    }

    [Fact]
    public async Task HealthCheck_FolderNotWritable_ReportsTheFailureStatus_ThenHealthyWithoutARestart()
    {
        using var dir = new TempDir();
        var blocker = dir.Combine("data");
        await File.WriteAllTextAsync(blocker, "a file where the log folder should be", Ct);
        await using var provider = new ServiceCollection()
            .AddHarAudit(o =>
            {
                o.Directory = Path.Combine(blocker, "audit");
                o.EnableMetrics = false;
            })
            .Services.BuildServiceProvider();
        var check = new AuditLogHealthCheck(provider);

        var down = await check.CheckHealthAsync(Context(HealthStatus.Degraded), Ct);
        Assert.Equal(HealthStatus.Degraded, down.Status);
        Assert.StartsWith("audit log unavailable: operations that must be audited are refused", down.Description, StringComparison.Ordinal);
        Assert.IsType<AuditLogUnavailableException>(down.Exception);
        Assert.Throws<AuditLogUnavailableException>(() => provider.GetRequiredService<AuditLog>());

        File.Delete(blocker); // the disk is writable again: the next resolution opens the log
        var up = await check.CheckHealthAsync(Context(HealthStatus.Degraded), Ct);
        Assert.Equal(HealthStatus.Healthy, up.Status);
        await provider.GetRequiredService<AuditLog>().AppendAsync(Samples.Event(1), Ct);
    }

    [Fact]
    public async Task AddHarAudit_ConfigurationSection_BindsAndValidates()
    {
        using var dir = new TempDir();
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Har:Audit:Directory"] = dir.Path,
            ["Har:Audit:Origin"] = "audit.example.com/har",
            ["Har:Audit:RetryInterval"] = "00:00:02",
            ["Har:Audit:EnableMetrics"] = "false",
        }).Build();
        await using (var provider = new ServiceCollection().AddHarAudit(config.GetSection("Har:Audit")).Services.BuildServiceProvider())
        {
            Assert.Equal(TimeSpan.FromSeconds(2), provider.GetRequiredService<IOptions<AuditLogOptions>>().Value.RetryInterval);
            var log = provider.GetRequiredService<AuditLog>();
            Assert.Equal("audit.example.com/har", log.Origin);
            Assert.Equal(Path.GetFullPath(dir.Path), log.Directory);
        }

        var bad = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Directory"] = dir.Path, ["MaxRecordBytes"] = "12" }).Build();
        await using var invalid = new ServiceCollection().AddHarAudit(bad).Services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => invalid.GetRequiredService<IOptions<AuditLogOptions>>().Value);
        Assert.Contains("MaxRecordBytes", ex.Message, StringComparison.Ordinal);

        // A pinned verifier key that is not one fails at start, not at the first Verify().
        var badKey = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Directory"] = dir.Path, ["VerifierKey"] = "garbage" }).Build();
        await using var invalidKey = new ServiceCollection().AddHarAudit(badKey).Services.BuildServiceProvider();
        var keyEx = Assert.Throws<OptionsValidationException>(() => invalidKey.GetRequiredService<IOptions<AuditLogOptions>>().Value);
        Assert.Contains("AuditLogOptions.VerifierKey is not a verifier key", keyEx.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Meter_HarAudit_PublishesTheInstrumentsUnderThePrometheusNames()
    {
        using var dir = new TempDir();
        using var log = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, MetricsRegistry = new CollectorRegistry() });
        var names = new HashSet<string>();
        var values = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Har.Audit")
            {
                names.Add(instrument.Name);
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "origin" && (string?)tag.Value == log.Origin)
                {
                    lock (values)
                    {
                        values[instrument.Name] = instrument is Counter<long> ? values.GetValueOrDefault(instrument.Name) + value : value;
                    }
                }
            }
        });
        listener.Start();
        await log.AppendAsync(Samples.Event(1), Ct);
        await log.AppendAsync(Samples.Event(2), Ct);
        listener.RecordObservableInstruments();

        Assert.Superset(
            new HashSet<string> { "har_audit_appends_total", "har_audit_append_failures_total", "har_audit_fsync_duration_seconds", "har_audit_group_commit_records", "har_audit_log_entries", "har_audit_log_bytes", "har_audit_writable", "har_audit_quarantined_entries", "har_audit_checkpoint_size", "har_audit_checkpoint_failures_total" },
            names);
        Assert.Equal(2, values["har_audit_appends_total"]);
        Assert.Equal(2, values["har_audit_log_entries"]);
        Assert.Equal(1, values["har_audit_writable"]);
        Assert.Equal(0, values["har_audit_quarantined_entries"]);
    }

    [Fact]
    public async Task Results_PrintWhatTheyHold()
    {
        using var dir = new TempDir();
        using var log = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, EnableMetrics = false });
        var ack = await log.AppendAsync(Samples.Event(1, eventType: "model.promoted", actor: "alice"), Ct);
        await log.AppendAsync(Samples.Event(2), Ct);

        Assert.StartsWith("entry 0 (leaf ", ack.ToString(), StringComparison.Ordinal);
        var page = log.Query(new AuditQuery { PageSize = 1 }).ToString();
        Assert.Contains("1 entry; next page token 1", page, StringComparison.Ordinal);
        Assert.Contains("#0 2026-01-15T10:30:01Z model.promoted model/entity-1 by alice", page, StringComparison.Ordinal);
        Assert.StartsWith("OK: 2 entries verified", log.Verify().ToString(), StringComparison.Ordinal);
        Assert.StartsWith("0 entries (0 trusted from the seal, 0 re-scanned)", log.Recovery.ToString(), StringComparison.Ordinal);
        Assert.StartsWith("inclusion of entry 1 in tree size 2: root ", log.GetInclusionProof(1).ToString(), StringComparison.Ordinal);
        Assert.StartsWith("consistency of tree size 1 with 2", log.GetConsistencyProof(1).ToString(), StringComparison.Ordinal);
    }

    private static string SaveSigningKey(TempDir dir)
    {
        var keyPath = dir.Combine("signing.key");
        using var key = AuditSigningKey.Generate("audit.test/har");
        key.Save(keyPath);
        return keyPath;
    }

    private static IServiceCollection Services(string logDir, string keyPath, TimeProvider time, CollectorRegistry? registry = null)
    {
        var services = new ServiceCollection().AddSingleton(time);
        services.AddHarAudit(o =>
        {
            o.Directory = logDir;
            o.SigningKeyPath = keyPath;
            o.MetricsRegistry = registry ?? new CollectorRegistry();
        }).AddCheckpointSigning();
        return services;
    }

    private static HealthCheckContext Context(HealthStatus failureStatus) => new()
    {
        Registration = new HealthCheckRegistration("audit", _ => throw new InvalidOperationException("not used"), failureStatus, null),
    };

    private static async Task<string> Export(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream, Ct);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Polls a condition the signer's timer thread makes true (bounded; generous for a loaded machine).</summary>
    private static async Task Until(Func<bool> condition, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"timed out waiting for {what}");
            await Task.Delay(10, Ct);
        }
    }
}
