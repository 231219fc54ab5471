using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using Har.Testing;
using Npgsql;
using Prometheus;

namespace Har.Audit.Tests.Postgres;

/// <summary>What only the PostgreSQL backend has: schema migrations, byte-identity with the file log, several data sources and processes on one log.</summary>
public sealed class PostgresAuditLogTests(PostgresCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static AuditLog Open(string connectionString, CollectorRegistry? registry = null) =>
        AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, MetricsRegistry = registry ?? new CollectorRegistry() });

    [Fact]
    public async Task Open_NewDatabase_AppliesTheMigrationsOnceAndRefusesASchemaNewerThanTheCode()
    {
        var cs = await cluster.CreateDatabaseAsync();
        using (Open(cs))
        {
        }

        using (Open(cs))
        {
        }

        await using var connection = new NpgsqlConnection(cs);
        await connection.OpenAsync(Ct);
        await using (var versions = new NpgsqlCommand("SELECT string_agg(version::text, ',' ORDER BY version) FROM har_audit.schema_migrations", connection))
        {
            Assert.Equal("1", await versions.ExecuteScalarAsync(Ct));
        }

        await using (var newer = new NpgsqlCommand("INSERT INTO har_audit.schema_migrations (version, description) VALUES (2, 'from a newer Har')", connection))
        {
            await newer.ExecuteNonQueryAsync(Ct);
        }

        var ex = Assert.Throws<InvalidOperationException>(() => Open(cs));
        Assert.Contains("version 2, newer than this Har.Audit", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Upgrade", ex.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => AuditLog.VerifyDatabase(cs, null));
    }

    [Fact]
    public async Task AddHarAudit_ConnectionStringsHarInConfiguration_ResolvesTheDatabaseLogAndItsHealthCheck()
    {
        var cs = await cluster.CreateDatabaseAsync();
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:Har"] = cs, ["Har:Audit:Origin"] = "fleet.example/har", ["Har:Audit:EnableMetrics"] = "false" })
            .Build();
        var services = new ServiceCollection();
        services.AddHarAudit(configuration.GetSection("Har:Audit")).Configure(o => o.ConnectionString = configuration.GetConnectionString("Har"));
        await using var provider = services.BuildServiceProvider();
        var log = provider.GetRequiredService<AuditLog>();
        Assert.Equal("fleet.example/har", log.Origin);
        await log.AppendAsync(Samples.Event(1), Ct);

        var check = new AuditLogHealthCheck(provider);
        var registration = new HealthCheckRegistration("audit", check, HealthStatus.Degraded, null);
        var health = await check.CheckHealthAsync(new HealthCheckContext { Registration = registration }, Ct);
        Assert.Equal(HealthStatus.Healthy, health.Status);
        Assert.Equal(1L, health.Data["entries"]);
    }

    [Fact]
    public async Task AddCheckpointSigning_TwoReplicasOnOneDatabase_SignCheckpointsOverTheWholeFleetsLog()
    {
        var cs = await cluster.CreateDatabaseAsync();
        using var dir = new TempDir();
        var keyPath = dir.Combine("signing.key");
        using (var k = AuditSigningKey.Generate("fleet.test/har"))
        {
            k.Save(keyPath);
        }

        var time = new FakeTimeProvider(Samples.T0);
        ServiceProvider Replica()
        {
            var services = new ServiceCollection().AddSingleton<TimeProvider>(time);
            services.AddHarAudit(o =>
            {
                o.ConnectionString = cs;
                o.Origin = "fleet.test/har";
                o.SigningKeyPath = keyPath;
                o.MetricsRegistry = new CollectorRegistry();
            }).AddCheckpointSigning();
            return services.BuildServiceProvider();
        }

        await using var first = Replica();
        await using var second = Replica();
        var signers = new[] { first, second }.Select(p => Assert.Single(p.GetServices<IHostedService>())).ToArray();
        foreach (var signer in signers)
        {
            await signer.StartAsync(Ct);
        }

        var logs = new[] { first.GetRequiredService<AuditLog>(), second.GetRequiredService<AuditLog>() };
        for (var i = 0; i < 6; i++)
        {
            await logs[i % 2].AppendAsync(Samples.Event(i), Ct);
        }

        time.Advance(TimeSpan.FromMinutes(1));
        var clock = Stopwatch.StartNew();
        while (logs[0].LatestCheckpoint?.TreeSize != 6)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), "no checkpoint at size 6 after the first interval");
            await Task.Delay(20, Ct);
        }

        await logs[1].AppendAsync(Samples.Event(6), Ct);
        foreach (var signer in signers)
        {
            await signer.StopAsync(Ct); // each signs at shutdown: the second finds nothing new
        }

        Assert.Equal(7, logs[1].LatestCheckpoint!.TreeSize);
        using var key = AuditSigningKey.Load(keyPath);
        var result = AuditLog.VerifyDatabase(cs, key.ToVerifierKey());
        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(7, result.Checkpoint!.TreeSize);
    }

    [Fact]
    public async Task CreateCheckpoint_ThreeReplicasSigningTheSameSizeAtOnce_NoneFails()
    {
        // Replicas sign on their own schedules and each at its start, so in a fleet that starts together they sign the same
        // size at the same moment. The one whose snapshot could not see the other's row failed with a serialization error
        // (40001): "checkpoint not signed", /ready degraded and the HarAuditCheckpointFailures alert, over a signed log.
        var cs = await cluster.CreateDatabaseAsync();
        using var key = AuditSigningKey.Generate("fleet.test/har");
        var logs = Enumerable.Range(0, 3).Select(_ => Open(cs)).ToArray();
        try
        {
            for (var round = 0; round < 40; round++)
            {
                await logs[round % 3].AppendAsync(Samples.Event(round), Ct);
                using var together = new Barrier(logs.Length);
                var signed = await Task.WhenAll(logs.Select(log => Task.Run(() =>
                {
                    together.SignalAndWait(Ct);
                    return log.CreateCheckpoint(key).TreeSize;
                }, Ct)));
                Assert.All(signed, size => Assert.Equal(round + 1, size));
            }

            var result = AuditLog.VerifyDatabase(cs, key.ToVerifierKey());
            Assert.True(result.IsValid, result.ToString());
            Assert.Equal(40, result.Checkpoint!.TreeSize);
        }
        finally
        {
            foreach (var log in logs)
            {
                log.Dispose();
            }
        }
    }

    [Fact]
    public async Task VerifyDatabase_StoredNodeHeadOrEntryRowChanged_ReportsTheFirstEntryItAffects()
    {
        var cs = await cluster.CreateDatabaseAsync();
        using (var log = Open(cs))
        {
            for (var i = 0; i < 20; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }
        }

        await using var connection = new NpgsqlConnection(cs);
        await connection.OpenAsync(Ct);
        async Task<AuditVerificationResult> After(string change, string undo)
        {
            await using (var c = new NpgsqlCommand(change, connection))
            {
                Assert.Equal(1, await c.ExecuteNonQueryAsync(Ct));
            }

            var result = AuditLog.VerifyDatabase(cs, null);
            await using (var u = new NpgsqlCommand(undo, connection))
            {
                Assert.Equal(1, await u.ExecuteNonQueryAsync(Ct));
            }

            Assert.True(AuditLog.VerifyDatabase(cs, null).IsValid);
            return result;
        }

        var node = await After(
            "UPDATE har_audit.nodes SET hash = set_byte(hash, 0, get_byte(hash, 0) # 1) WHERE level = 2 AND idx = 1",
            "UPDATE har_audit.nodes SET hash = set_byte(hash, 0, get_byte(hash, 0) # 1) WHERE level = 2 AND idx = 1");
        Assert.Equal(AuditVerificationProblem.StoredTree, node.Problem);
        Assert.Equal(4, node.FirstBadIndex); // node (2, 1) covers entries 4..7

        var head = await After("UPDATE har_audit.head SET size = 19", "UPDATE har_audit.head SET size = 20");
        Assert.Equal(AuditVerificationProblem.Index, head.Problem);

        var column = await After("UPDATE har_audit.entries SET actor = 'mallory' WHERE idx = 11", "UPDATE har_audit.entries SET actor = 'actor-2' WHERE idx = 11");
        Assert.Equal(AuditVerificationProblem.QueryIndex, column.Problem);
        Assert.Equal(11, column.FirstBadIndex);

        await using (var move = new NpgsqlCommand("UPDATE har_audit.entries SET idx = 100 WHERE idx = 7", connection))
        {
            await move.ExecuteNonQueryAsync(Ct);
        }

        var gap = AuditLog.VerifyDatabase(cs, null);
        Assert.Equal(AuditVerificationProblem.Index, gap.Problem);
        Assert.Equal(7, gap.FirstBadIndex);
        Assert.Contains("missing", gap.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VerifyDatabase_WithoutALog_SaysSoAndCreatesNothing()
    {
        var cs = await cluster.CreateDatabaseAsync();
        var ex = Assert.Throws<InvalidDataException>(() => AuditLog.VerifyDatabase(cs, null));
        Assert.Contains("holds no Har audit log", ex.Message, StringComparison.Ordinal);
        await using var connection = new NpgsqlConnection(cs);
        await connection.OpenAsync(Ct);
        await using var schema = new NpgsqlCommand("SELECT count(*) FROM pg_namespace WHERE nspname = 'har_audit'", connection);
        Assert.Equal(0L, await schema.ExecuteScalarAsync(Ct));
    }

    [Fact]
    public async Task AppendAsync_SameRecordsAsTheFileLog_ByteIdenticalEntriesRootsAndCheckpoints()
    {
        var cs = await cluster.CreateDatabaseAsync();
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("same.origin");
        using var file = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, Origin = "same.origin", MetricsRegistry = new CollectorRegistry() });
        using var db = AuditLog.Open(new AuditLogOptions { ConnectionString = cs, Origin = "same.origin", MetricsRegistry = new CollectorRegistry() });
        for (var i = 0; i < 21; i++)
        {
            var record = Samples.Event(i);
            var a = await file.AppendAsync(record, Ct);
            var b = await db.AppendAsync(record, Ct);
            Assert.Equal(a.Index, b.Index);
            Assert.Equal(a.LeafHash.ToArray(), b.LeafHash.ToArray());
        }

        for (var i = 0; i < 21; i++)
        {
            Assert.Equal(file.Get(i).CanonicalJson.ToArray(), db.Get(i).CanonicalJson.ToArray());
        }

        Assert.Equal(file.GetRootHash(21).ToArray(), db.GetRootHash(21).ToArray());
        Assert.Equal(file.GetConsistencyProof(5).Path.Select(p => p.ToArray()), db.GetConsistencyProof(5).Path.Select(p => p.ToArray()));

        // A checkpoint signed over the database verifies the file log's proofs: one tree, two stores.
        var checkpoint = db.CreateCheckpoint(key);
        Assert.Equal(checkpoint.NoteText, file.CreateCheckpoint(key).NoteText);
        Assert.True(file.ExportProof(7).Verify(key.ToVerifierKey(), out _));
        Assert.True(db.ExportProof(7).Verify(key.ToVerifierKey(), out _));
    }

    [Fact]
    public async Task AppendAsync_64ConcurrentAppendersInOneProcess_ShareTransactions()
    {
        var cs = await cluster.CreateDatabaseAsync();
        var registry = new CollectorRegistry();
        using var log = Open(cs, registry);
        var tasks = Enumerable.Range(0, 64).Select(t => Task.Run(async () =>
        {
            for (var k = 0; k < 20; k++)
            {
                await log.AppendAsync(Samples.Event((t * 100) + k), Ct);
            }
        }, Ct)).ToArray();
        await Task.WhenAll(tasks);
        Assert.Equal(1280, log.Count);

        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream, Ct);
        var metrics = Encoding.UTF8.GetString(stream.ToArray());
        Assert.Contains("har_audit_appends_total 1280", metrics, StringComparison.Ordinal);
        var transactions = metrics.Split('\n').Single(l => l.StartsWith("har_audit_fsync_duration_seconds_count", StringComparison.Ordinal)).Split(' ')[1];
        Assert.InRange(double.Parse(transactions, CultureInfo.InvariantCulture), 1, 1279); // group commit: fewer transactions than appends
        Assert.True(log.Verify().IsValid);
    }

    [Fact]
    public async Task AppendAsync_ThreeLogInstancesOnOneDatabase_OneGaplessLogEveryInstanceReads()
    {
        var cs = await cluster.CreateDatabaseAsync();
        var logs = Enumerable.Range(0, 3).Select(_ => Open(cs)).ToArray();
        try
        {
            var tasks = logs.SelectMany((log, n) => Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
            {
                var acks = new List<(long Index, string Entity)>();
                for (var k = 0; k < 30; k++)
                {
                    var e = Samples.Event(k, entity: $"l{n}-t{t}-{k}");
                    acks.Add(((await log.AppendAsync(e, Ct)).Index, e.EntityId));
                }

                return acks;
            }, Ct))).ToArray();
            var all = (await Task.WhenAll(tasks)).SelectMany(x => x).ToList();
            Assert.Equal(Enumerable.Range(0, 720).Select(i => (long)i), all.Select(a => a.Index).Order());
            foreach (var log in logs)
            {
                Assert.Equal(720, log.Count);
            }

            foreach (var (index, entity) in all)
            {
                Assert.Equal(entity, logs[(int)(index % 3)].Get(index).EntityId);
            }

            var result = AuditLog.VerifyDatabase(cs, null);
            Assert.True(result.IsValid, result.ToString());
            Assert.Equal(720, result.EntriesVerified);
        }
        finally
        {
            foreach (var log in logs)
            {
                log.Dispose();
            }
        }
    }

    [Fact]
    public async Task AppendOnceAsync_SameRecordsFromThreeLogInstancesAtOnce_EachIsWrittenOnceAndEveryCallGetsItsEntry()
    {
        // A resumed fleet leader and its successor flush the same rollout events: each must be in the log once. Three
        // instances (three replicas' logs) append the same 40 records, 8 callers each, all at once: duplicates meet both
        // inside one group-commit transaction and across transactions of different instances.
        var cs = await cluster.CreateDatabaseAsync();
        var logs = Enumerable.Range(0, 3).Select(_ => Open(cs)).ToArray();
        try
        {
            await logs[0].AppendAsync(Samples.Event(1000), Ct); // entries that are not duplicates stay where they are
            var tasks = logs.SelectMany(log => Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
            {
                var results = new List<(int Record, AuditAppendResult Result)>();
                foreach (var k in Enumerable.Range(0, 40).OrderBy(k => (k * 7919) + t))
                {
                    results.Add((k, await log.AppendOnceAsync(Samples.Event(k), Ct)));
                }

                return results;
            }, Ct))).ToArray();
            var all = (await Task.WhenAll(tasks)).SelectMany(x => x).ToList();

            Assert.Equal(41, logs[0].Count);
            foreach (var group in all.GroupBy(a => a.Record))
            {
                var index = Assert.Single(group.Select(g => g.Result.Index).Distinct());
                Assert.Single(group, g => !g.Result.AlreadyPresent); // one caller wrote it; the 23 others found it
                Assert.All(group, g => Assert.Equal(logs[0].Get(index).LeafHash.ToArray(), g.Result.LeafHash.ToArray()));
                Assert.Equal(Samples.Event(group.Key).EntityId, logs[1].Get(index).EntityId);
            }

            // A record that differs in anything (here only its timestamp) is another record.
            var later = await logs[2].AppendOnceAsync(Samples.Event(3, at: Samples.Event(3).Timestamp.AddTicks(1)), Ct);
            Assert.False(later.AlreadyPresent);
            Assert.Equal(41, later.Index);

            var result = AuditLog.VerifyDatabase(cs, null);
            Assert.True(result.IsValid, result.ToString());
            Assert.Equal(42, result.EntriesVerified);
        }
        finally
        {
            foreach (var log in logs)
            {
                log.Dispose();
            }
        }
    }

    [Fact]
    public async Task AppendAsync_ConnectionEndedByTheServer_WritableAgainAtTheFirstProbe_NotAfterAWholeRetryInterval()
    {
        // A replica whose transaction the server had ended (idle in transaction while the process was frozen) refused
        // appends for 5 s after it resumed, though the database answered all along. The log's clock is a fake one here:
        // only its first probe, 200 ms after the failure, can make it writable again.
        var cs = await cluster.CreateDatabaseAsync();
        var time = new FakeTimeProvider(Samples.T0);
        using var log = AuditLog.Open(new AuditLogOptions { ConnectionString = cs, MetricsRegistry = new CollectorRegistry(), RetryInterval = TimeSpan.FromSeconds(5) }, timeProvider: time);
        await log.AppendAsync(Samples.Event(1), Ct);

        await using (var admin = new NpgsqlConnection(cs))
        {
            await admin.OpenAsync(Ct);
            await using var end = new NpgsqlCommand("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()", admin);
            Assert.True((long)(await end.ExecuteScalarAsync(Ct))! >= 1);
        }

        await Assert.ThrowsAsync<AuditLogUnavailableException>(() => log.AppendAsync(Samples.Event(2), Ct));
        Assert.Equal(AuditLogState.Unavailable, log.State);

        time.Advance(TimeSpan.FromMilliseconds(200));
        var clock = Stopwatch.StartNew();
        while (log.State != AuditLogState.Writable)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the first probe did not make the log writable");
            await Task.Delay(20, Ct);
        }

        Assert.Equal(1, (await log.AppendAsync(Samples.Event(3), Ct)).Index);
    }

    [Fact]
    public async Task AppendersInThreeProcesses_OneKilledMidStreamThenAll_EveryAcknowledgedEntryIsPresentAndTheLogVerifies()
    {
        var cs = await cluster.CreateDatabaseAsync();
        using (Open(cs))
        {
            // creates the schema once, so the three processes only check it
        }

        var hosts = Enumerable.Range(0, 3).Select(i => new Appender(cs, i)).ToArray();
        try
        {
            await WaitFor(() => hosts.All(h => h.Acks.Count >= 100), hosts, "every appender acknowledged 100 entries");
            hosts[0].Kill(); // SIGKILL mid-stream: its open transaction (if any) dies with its connection
            var before = hosts.Skip(1).Select(h => h.Acks.Count).ToArray();
            await WaitFor(() => hosts[1].Acks.Count >= before[0] + 100 && hosts[2].Acks.Count >= before[1] + 100, hosts, "the survivors acknowledged 100 more entries each (no lock left behind)");
            hosts[1].Kill();
            hosts[2].Kill();
        }
        finally
        {
            foreach (var h in hosts)
            {
                h.Dispose();
            }
        }

        var acked = hosts.SelectMany(h => h.Acks).ToList();
        Assert.Equal(acked.Count, acked.Select(a => a.Index).Distinct().Count());
        using var log = Open(cs);
        foreach (var (index, entity) in acked)
        {
            Assert.Equal(entity, log.Get(index).EntityId);
        }

        var result = log.Verify();
        Assert.True(result.IsValid, result.ToString());
        Assert.True(log.Count >= acked.Count);
        Assert.Equal(log.Count, result.EntriesVerified);
    }

    [Fact]
    public async Task AppendAsync_ServerStoppedAndStartedAgain_RefusesWhileDownThenAcceptsAndKeepsEveryAcknowledgedEntry()
    {
        // A cluster of its own: stopping the shared one would fail the other tests.
        await using var own = new PostgresCluster();
        var cs = await own.CreateDatabaseAsync();
        using var log = AuditLog.Open(new AuditLogOptions { ConnectionString = cs, RetryInterval = TimeSpan.FromMilliseconds(200), MetricsRegistry = new CollectorRegistry() });
        for (var i = 0; i < 5; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        await own.StopServerAsync();
        await Assert.ThrowsAsync<AuditLogUnavailableException>(() => log.AppendAsync(Samples.Event(5), Ct));
        Assert.Equal(AuditLogState.Unavailable, log.State);
        Assert.Throws<AuditLogUnavailableException>(() => { _ = log.AppendAsync(Samples.Event(6), Ct); }); // refused before queueing

        // Reads fail the same way (an IOException callers already handle), not with a database exception.
        Assert.Throws<AuditLogUnavailableException>(() => log.Count);
        Assert.Throws<AuditLogUnavailableException>(() => log.Query(new AuditQuery()));

        await own.StartServerAsync();
        var deadline = Stopwatch.StartNew();
        while (log.State != AuditLogState.Writable)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(2), "the log did not become writable again within 2 minutes of the restart");
            await Task.Delay(50, Ct);
        }

        var ack = await log.AppendAsync(Samples.Event(7), Ct);
        Assert.Equal(5, ack.Index); // the refused appends left nothing behind
        Assert.Equal("entity-0", log.Get(0).EntityId);
        var result = log.Verify();
        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(6, result.EntriesVerified);
    }

    [Fact]
    public async Task ImportToDatabase_FileLog_SameLeavesAndCheckpoint_AppendsContinue_AndAnOccupiedDatabaseOrAnUnsignedLogIsRefused()
    {
        var folder = Directory.CreateTempSubdirectory("har-audit-import-").FullName;
        using var key = AuditSigningKey.Generate("import.test");
        try
        {
            var source = Path.Combine(folder, "log");
            var leaves = new List<string>();
            string note;
            using (var file = AuditLog.Open(new AuditLogOptions { Directory = source, Origin = "import.test/har", EnableMetrics = false }))
            {
                for (var i = 0; i < 2500; i++) // more than one import chunk
                {
                    leaves.Add(Convert.ToHexStringLower((await file.AppendAsync(Samples.Event(i), Ct)).LeafHash.Span));
                }

                note = file.CreateCheckpoint(key).NoteText;
            }

            var cs = await cluster.CreateDatabaseAsync();
            Assert.Equal(2500, AuditLog.ImportToDatabase(source, cs, key.ToVerifierKey()));
            var verified = AuditLog.VerifyDatabase(cs, key.ToVerifierKey());
            Assert.True(verified.IsValid, verified.ToString());
            using (var log = Open(cs))
            {
                Assert.Equal("import.test/har", log.Origin);
                Assert.Equal(note, log.LatestCheckpoint!.NoteText);
                Assert.Equal(leaves[0], Convert.ToHexStringLower(log.Get(0).LeafHash.Span));
                Assert.Equal(leaves[^1], Convert.ToHexStringLower(log.Get(2499).LeafHash.Span));
                var next = await log.AppendAsync(Samples.Event(2500), Ct);
                Assert.Equal(2500, next.Index);
                log.CreateCheckpoint(key);
            }

            Assert.True(AuditLog.VerifyDatabase(cs, key.ToVerifierKey()).IsValid);

            // An occupied database is refused, named, and left as it was.
            var occupied = Assert.Throws<InvalidOperationException>(() => AuditLog.ImportToDatabase(source, cs, key.ToVerifierKey()));
            Assert.Contains("already holds a log of 2501 entries with origin 'import.test/har'", occupied.Message, StringComparison.Ordinal);
            using (var log = Open(cs))
            {
                Assert.Equal(2501, log.Count);
            }

            // A log whose checkpoint another key signed, or without a checkpoint, is refused before the database is touched.
            using var other = AuditSigningKey.Generate("import.other");
            var empty = await cluster.CreateDatabaseAsync();
            Assert.Throws<InvalidDataException>(() => AuditLog.ImportToDatabase(source, empty, other.ToVerifierKey()));
            var unsigned = Path.Combine(folder, "unsigned");
            using (var file = AuditLog.Open(new AuditLogOptions { Directory = unsigned, EnableMetrics = false }))
            {
                await file.AppendAsync(Samples.Event(0), Ct);
            }

            Assert.Contains("no signed checkpoint", Assert.Throws<InvalidDataException>(() => AuditLog.ImportToDatabase(unsigned, empty, key.ToVerifierKey())).Message, StringComparison.Ordinal);
            await using var connection = new NpgsqlConnection(empty);
            await connection.OpenAsync(Ct);
            await using var schema = new NpgsqlCommand("SELECT to_regnamespace('har_audit') IS NULL", connection);
            Assert.Equal(true, await schema.ExecuteScalarAsync(Ct));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task WaitFor(Func<bool> condition, Appender[] hosts, string what)
    {
        // Generous bound for a loaded 2-core machine; polling, not a timing assertion.
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(3) || hosts.Any(h => h.ExitedUnexpectedly))
            {
                Assert.Fail($"Waited {deadline.Elapsed.TotalSeconds:0} s for: {what}. Acks: {string.Join(", ", hosts.Select(h => h.Acks.Count))}. Errors: {string.Join(" | ", hosts.Select(h => h.Errors))}");
            }

            await Task.Delay(50, Ct);
        }
    }

    /// <summary>A Har.Audit.CrashHost process appending to the database from 4 threads; keeps only complete "ack" lines.</summary>
    private sealed class Appender : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _errors = new();
        private readonly Task _reader;
        private bool _killed;

        public Appender(string connectionString, int id)
        {
            var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p && File.Exists(p) ? p : "dotnet";
            var info = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in (string[])[HostPath(), connectionString, "4", $"p{id}"])
            {
                info.ArgumentList.Add(a);
            }

            _process = Process.Start(info) ?? throw new InvalidOperationException("Could not start the crash host.");
            _process.ErrorDataReceived += (_, e) =>
            {
                lock (_errors)
                {
                    _errors.AppendLine(e.Data);
                }
            };
            _process.BeginErrorReadLine();
            _reader = Task.Run(ReadAcks);
        }

        public ConcurrentQueue<(long Index, string Entity)> Acks { get; } = new();

        public bool ExitedUnexpectedly => !_killed && _process.HasExited;

        public string Errors
        {
            get
            {
                lock (_errors)
                {
                    return _errors.ToString();
                }
            }
        }

        public void Kill()
        {
            _killed = true;
            _process.Kill(); // SIGKILL
            _process.WaitForExit();
            _reader.Wait(TimeSpan.FromSeconds(30));
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                Kill();
            }

            _process.Dispose();
        }

        private async Task ReadAcks()
        {
            var buffer = new char[8192];
            var pending = new StringBuilder();
            int n;
            while ((n = await _process.StandardOutput.ReadAsync(buffer)) > 0)
            {
                pending.Append(buffer, 0, n);
                var text = pending.ToString();
                var end = text.LastIndexOf('\n');
                if (end < 0)
                {
                    continue;
                }

                foreach (var line in text[..end].Split('\n'))
                {
                    var parts = line.Split(' ');
                    if (parts is ["ack", var index, var entity])
                    {
                        Acks.Enqueue((long.Parse(index, CultureInfo.InvariantCulture), entity));
                    }
                }

                pending.Clear().Append(text, end + 1, text.Length - end - 1);
            }

            // An unterminated last line (the process was killed while printing it) is not an acknowledgement we can trust.
        }

        private static string HostPath()
        {
            var baseDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var path = Path.Combine(Har.Testing.TestPaths.RepoRoot, "tests", "Har.Audit.CrashHost", "bin", baseDir.Parent!.Name, baseDir.Name, "Har.Audit.CrashHost.dll");
            Assert.True(File.Exists(path), $"The crash host was not built at {path}; build tests/Har.Audit.Tests (it references the host project).");
            return path;
        }
    }
}
