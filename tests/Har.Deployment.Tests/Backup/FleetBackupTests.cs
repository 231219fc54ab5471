using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Testing;

namespace Har.Deployment.Tests.Backup;

/// <summary>
/// A backup of a fleet replica on a real PostgreSQL: the audit log exported from the database up to the backup record,
/// the rollout state and the current pointer as the database holds them, this replica's registry folder; restored and
/// verified as a single-process data folder.
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
}
