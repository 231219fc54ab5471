using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Inference;
using Har.Testing;
using Npgsql;

namespace Har.Deployment.Tests.Backup;

/// <summary>
/// A backup of a fleet replica on a real PostgreSQL: the audit log exported from the database up to the backup record,
/// the rollout state and the current pointer as the database holds them, this replica's registry folder; restored and
/// verified as a single-process data folder; and restored into a fresh PostgreSQL database (same log, same tree, the
/// archive's signed checkpoint verifying against it), where a new replica serves the restored current version.
/// </summary>
public sealed class FleetBackupTests(PostgresCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CreateAsync_OnPostgreSql_RestoresAsAVerifiedFolderWithTheDatabasesStateAndLog()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("har-fleet-backup-").FullName;
        using var key = AuditSigningKey.Generate("fleet.backup.test");
        try
        {
            await using var audit = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
            var registry = new ModelRegistry(Path.Combine(dir, "registry"), audit);
            registry.Register(TestRegistry.ChampionFile);
            registry.Register(TestRegistry.CandidateFile);
            await using var pipeline = ServingPipeline.Open(registry, TestRegistry.ServingOptions());
            var options = TestRegistry.Options(o => o.ConnectionString = connectionString);
            await using var controller = await RolloutController.OpenAsync(registry, pipeline, options, cancellationToken: Ct);
            var started = await controller.ExecuteAsync(RolloutCommand.Start(TestRegistry.Candidate, "canary", "alice", "fleet backup"), Ct);

            var backup = await DeploymentBackup.CreateAsync(registry, audit, controller, Path.Combine(dir, "backups"), new DeploymentBackupOptions { SigningKey = key }, Ct);
            Assert.Equal(TestRegistry.Champion, backup.CurrentVersion);
            Assert.Equal(audit.Count, backup.AuditEntries);

            var target = Path.Combine(dir, "restored");
            var restored = DeploymentBackup.Restore(backup.ArchivePath, target, key.ToVerifierKey());
            Assert.Equal([TestRegistry.Champion, TestRegistry.Candidate], restored.Versions);
            Assert.Equal(TestRegistry.Champion, restored.CurrentVersion);
            Assert.Equal(started.RolloutId, RolloutController.ReadStatus(Path.Combine(target, "registry", ".rollout"))!.RolloutId);
            Assert.True(AuditLog.Verify(Path.Combine(target, "audit"), key.ToVerifierKey()).IsValid);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task RestoreToDatabase_FreshDatabase_SameLogAndCheckpoint_ANewReplicaServesTheRestoredCurrentVersion()
    {
        var source = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("har-fleet-restore-").FullName;
        using var key = AuditSigningKey.Generate("fleet.restore.test");
        try
        {
            var (backup, rolloutId) = await BackUpAReplicaAsync(source, dir, key, promote: true);
            await using var sourceAudit = AuditLog.Open(new AuditLogOptions { ConnectionString = source, EnableMetrics = false });

            var target = await cluster.CreateDatabaseAsync();
            var restored = DeploymentBackup.RestoreToDatabase(backup.ArchivePath, target, key.ToVerifierKey(), "restorer");
            Assert.Equal([TestRegistry.Champion, TestRegistry.Candidate], restored.Versions);
            Assert.Equal(TestRegistry.Candidate, restored.CurrentVersion);
            Assert.True(restored.KeyPinned);

            // The accuracy gate's evidence: the windows labelled on the source are rows of the restored database. Before,
            // the archive held none, and a fleet restored into a new database counted none of them.
            Assert.Equal(LabelledWindows, backup.LabelledWindows);
            Assert.Equal(LabelledWindows, restored.LabelledWindows);
            Assert.Equal((long)LabelledWindows, await ScalarAsync<long>(target, "SELECT count(DISTINCT window_id) FROM har_fleet.labelled_windows WHERE payload->>'Truth' = 'WALKING'"));

            // The database's log is the archive's: the same leaves, the same root, and the archive's checkpoint (signed by the
            // source's key over the export) verifies against it; the restore itself is the one entry after it.
            var verification = AuditLog.VerifyDatabase(target, key.ToVerifierKey());
            Assert.True(verification.IsValid, verification.ToString());
            await using (var restoredAudit = AuditLog.Open(new AuditLogOptions { ConnectionString = target, EnableMetrics = false }))
            {
                Assert.Equal(backup.AuditEntries + 1, restoredAudit.Count);
                var checkpoint = restoredAudit.LatestCheckpoint!;
                Assert.Equal(backup.AuditEntries, checkpoint.TreeSize);
                Assert.Equal(ArchivedCheckpoint(backup.ArchivePath), checkpoint.NoteText);
                for (var i = 0L; i < backup.AuditEntries; i++)
                {
                    Assert.Equal(Convert.ToHexStringLower(sourceAudit.Get(i).LeafHash.Span), Convert.ToHexStringLower(restoredAudit.Get(i).LeafHash.Span));
                }

                var last = (AuditEvent)restoredAudit.Get(backup.AuditEntries).Record;
                Assert.Equal(("backup.restored", backup.BackupId, "restorer"), (last.EventType, last.EntityId, last.Actor));
                Assert.Contains("postgresql://", last.ActionDetails.GetProperty("database").GetString(), StringComparison.Ordinal);
            }

            // A new replica on the restored database, started as the service starts one (its bundled model, 1.0.0, seeded into
            // its own folder): the pointer and the rollout state are the archive's, the promoted 1.1.0 comes from the database,
            // checked against the restored log, and is what it serves.
            await using var audit = AuditLog.Open(new AuditLogOptions { ConnectionString = target, EnableMetrics = false });
            var registry = new ModelRegistry(Path.Combine(dir, "new-replica"), audit);
            registry.Seed([TestRegistry.ChampionFile]);
            await using var pipeline = ServingPipeline.Open(registry, TestRegistry.ServingOptions());
            await using var controller = await RolloutController.OpenAsync(registry, pipeline, TestRegistry.Options(o => o.ConnectionString = target), cancellationToken: Ct);
            Assert.Equal(TestRegistry.Candidate, registry.CurrentVersion);
            Assert.Equal([TestRegistry.Champion, TestRegistry.Candidate], registry.List().Select(m => m.Version));
            Assert.True(registry.Verify(TestRegistry.Candidate).IsValid);
            Assert.Equal((rolloutId, RolloutPhase.Succeeded), (controller.Status!.RolloutId, controller.Status.Phase));
            Assert.Equal(TestRegistry.Candidate, controller.Plan.Stable);
            var predictions = new Prediction[1];
            await pipeline.PredictAsync("device-restored", new float[200 * 6], predictions, Ct);
            Assert.Equal(TestRegistry.Candidate, predictions[0].ModelVersion);

            // The new replica takes the lead; its first round as leader adds the restored windows to its store.
            using (var stop = new CancellationTokenSource())
            {
                var loop = controller.RunAsync(stop.Token);
                await WaitUntilAsync(() => controller.IsLeader && pipeline.Feedback.Accuracy(TestRegistry.Champion).Labelled >= LabelledWindows, "the new leader to read the restored windows");
                await stop.CancelAsync();
                await loop;
            }

            Assert.Equal((long)LabelledWindows, pipeline.Feedback.Accuracy(TestRegistry.Champion).Labelled);

            // Restoring again into the same database, or into the source's, is refused; neither log grows.
            var targetCount = audit.Count;
            var again = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.RestoreToDatabase(backup.ArchivePath, target, key.ToVerifierKey()));
            Assert.Contains("already holds 2 registered version(s), a current pointer (1.1.0), a rollout state", again.Message, StringComparison.Ordinal);
            Assert.Contains("Create a new, empty database", again.Message, StringComparison.Ordinal);
            Assert.Equal(targetCount, audit.Count);
            var sourceCount = sourceAudit.Count;
            Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.RestoreToDatabase(backup.ArchivePath, source, key.ToVerifierKey()));
            Assert.Equal(sourceCount, sourceAudit.Count);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task RestoreToDatabase_DatabaseWithALogOnly_RefusedWithWhatWasFound()
    {
        var source = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("har-fleet-restore-").FullName;
        using var key = AuditSigningKey.Generate("fleet.restore.test");
        try
        {
            var (backup, _) = await BackUpAReplicaAsync(source, dir, key);
            var target = await cluster.CreateDatabaseAsync();
            await using (var other = AuditLog.Open(new AuditLogOptions { ConnectionString = target, EnableMetrics = false, Origin = "other.log" }))
            {
                await other.AppendAsync(new AuditEvent { EventType = "other.event", EntityType = "test", EntityId = "x", Severity = AuditSeverity.Info, Actor = "someone", Timestamp = DateTimeOffset.UtcNow, ActionDetails = System.Text.Json.JsonSerializer.SerializeToElement(new { }) }, Ct);
            }

            var ex = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.RestoreToDatabase(backup.ArchivePath, target, key.ToVerifierKey()));
            Assert.Contains("already holds a log of 1 entry with origin 'other.log'", ex.Message, StringComparison.Ordinal);
            Assert.Contains("Nothing of the archive was written", ex.Message, StringComparison.Ordinal);
            Assert.Equal(0L, await ScalarAsync<long>(target, "SELECT count(*) FROM har_fleet.models"));
            Assert.Equal(1L, await ScalarAsync<long>(target, "SELECT size FROM har_audit.head"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("audit/entries.log", "does not verify")]
    [InlineData("registry/v1.1.0/model.onnx", "recorded in backup.created")]
    [InlineData("registry/.rollout/feedback.jsonl", "recorded in backup.created")]
    public async Task RestoreToDatabase_TamperedArchive_RefusedAndNothingWrittenToTheDatabase(string file, string expected)
    {
        var source = await cluster.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("har-fleet-restore-").FullName;
        using var key = AuditSigningKey.Generate("fleet.restore.test");
        try
        {
            var (backup, _) = await BackUpAReplicaAsync(source, dir, key);

            // One byte changed, and the manifest made to agree with it: only the signed log (or the backup record in it) can tell.
            var entries = ReadArchive(backup.ArchivePath);
            var bytes = entries[file];
            bytes[bytes.Length / 2] ^= 0x01;
            var manifest = JsonNode.Parse(entries["manifest.json"])!;
            var line = manifest["files"]!.AsArray().Single(f => f!["path"]!.GetValue<string>() == file)!;
            line["sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
            entries["manifest.json"] = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(manifest);
            var tampered = Path.Combine(dir, "tampered.tar.gz");
            await using (var gzip = new GZipStream(File.Create(tampered), CompressionLevel.Fastest))
            await using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
            {
                foreach (var (name, content) in entries)
                {
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) }, Ct);
                }
            }

            var target = await cluster.CreateDatabaseAsync();
            var ex = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.RestoreToDatabase(tampered, target, key.ToVerifierKey()));
            Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
            Assert.True(await ScalarAsync<bool>(target, "SELECT to_regnamespace('har_audit') IS NULL AND to_regnamespace('har_fleet') IS NULL"), "the refused restore created something in the database");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The windows <see cref="BackUpAReplicaAsync"/> labels.</summary>
    private const int LabelledWindows = 15;

    /// <summary>A fleet replica on <paramref name="connectionString"/> with two versions and 15 windows labelled, and a canary, promoted (the candidate is current) or aborted, backed up.</summary>
    private static async Task<(DeploymentBackupResult Backup, string RolloutId)> BackUpAReplicaAsync(string connectionString, string dir, AuditSigningKey key, bool promote = false)
    {
        await using var audit = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
        var registry = new ModelRegistry(Path.Combine(dir, "registry"), audit);
        registry.Register(TestRegistry.ChampionFile);
        registry.Register(TestRegistry.CandidateFile);
        await using var pipeline = ServingPipeline.Open(registry, TestRegistry.ServingOptions());
        await using var controller = await RolloutController.OpenAsync(registry, pipeline, TestRegistry.Options(o => o.ConnectionString = connectionString), cancellationToken: Ct);
        Assert.Equal(LabelledWindows, await Fleet.FleetLabelledWindowsTests.ServeAndLabelAsync(pipeline, "device-labelled", LabelledWindows)); // by 1.0.0, the current version
        var started = await controller.ExecuteAsync(RolloutCommand.Start(TestRegistry.Candidate, "canary", "alice", "fleet restore"), Ct);
        if (promote)
        {
            using var stop = new CancellationTokenSource();
            var loop = controller.RunAsync(stop.Token);
            try
            {
                await WaitUntilAsync(() => controller.Status?.Phase is RolloutPhase.Progressing, "the canary to progress");
                await controller.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Promote, "alice", "ship"), Ct);
                await WaitUntilAsync(() => controller.Status?.Phase is RolloutPhase.Succeeded && registry.CurrentVersion == TestRegistry.Candidate, "the promotion");
            }
            finally
            {
                await stop.CancelAsync();
                await loop;
            }
        }
        else
        {
            await controller.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Abort, "alice", "not now"), Ct);
        }

        var backup = await DeploymentBackup.CreateAsync(registry, audit, controller, Path.Combine(dir, "backups"), new DeploymentBackupOptions { SigningKey = key }, Ct);
        return (backup, started.RolloutId);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(120), $"Not reached within 120 s: {what}.");
            await Task.Delay(50, Ct);
        }
    }

    private static string ArchivedCheckpoint(string archive) =>
        JsonNode.Parse(ReadArchive(archive)["manifest.json"])!["audit"]!["checkpoint"]!.GetValue<string>();

    private static Dictionary<string, byte[]> ReadArchive(string archive)
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var gzip = new GZipStream(File.OpenRead(archive), CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            using var data = new MemoryStream();
            entry.DataStream?.CopyTo(data);
            entries[entry.Name] = data.ToArray();
        }

        return entries;
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }
}
