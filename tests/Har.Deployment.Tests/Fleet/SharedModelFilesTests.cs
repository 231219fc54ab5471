using System.Diagnostics;
using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Inference;
using Har.Testing;
using Npgsql;

namespace Har.Deployment.Tests.Fleet;

/// <summary>
/// Registered models' files in the fleet's database (real PostgreSQL, two replicas each with its own registry folder and
/// audit-log connection): a version registered through replica A is fetched by replica B when B needs it, checked against
/// A's registration in the shared audit log, cached in B's folder and served there; a row altered in the database is
/// refused (audited once), and nothing is written to the folder.
/// </summary>
public sealed class SharedModelFilesTests(PostgresCluster cluster)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task RegisteredOnReplicaA_RolledOutAndServedOnReplicaB()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var root = Directory.CreateTempSubdirectory("har-fleet-models-").FullName;
        try
        {
            await using var auditA = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
            await using var auditB = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
            var a = new ModelRegistry(Path.Combine(root, "a"), auditA);
            var b = new ModelRegistry(Path.Combine(root, "b"), auditB);

            // Both replicas start as the service does: the bundled champion seeded into their own folders, then the controller.
            a.Seed([TestRegistry.ChampionFile]);
            b.Seed([TestRegistry.ChampionFile]);
            await using var pipelineA = ServingPipeline.Open(a, TestRegistry.ServingOptions());
            await using var controllerA = await RolloutController.OpenAsync(a, pipelineA, Options(connectionString));
            await using var pipelineB = ServingPipeline.Open(b, TestRegistry.ServingOptions());
            await using var controllerB = await RolloutController.OpenAsync(b, pipelineB, Options(connectionString));

            // Registered through replica A only: its files are in the database, not in B's folder.
            var registered = a.Register(TestRegistry.CandidateFile, new ModelRegistrationOptions { Deployer = "tester" });
            var candidateFolderB = Path.Combine(root, "b", "v" + TestRegistry.Candidate);
            Assert.False(Directory.Exists(candidateFolderB));
            Assert.Equal(registered.Sha256, await ScalarAsync<string>(connectionString, $"SELECT model_sha256 FROM har_fleet.models WHERE version = '{TestRegistry.Candidate}'"));
            Assert.Equal(1L, await ScalarAsync<long>(connectionString, $"SELECT count(*) FROM har_fleet.model_files WHERE sha256 = '{registered.Sha256}'"));

            // Replica B leads (only its loop runs), is told to roll the candidate out and promotes it: it fetches the files,
            // verifies them against A's registration in the audit log, loads and serves them.
            using var stop = new CancellationTokenSource();
            var loop = controllerB.RunAsync(stop.Token);
            try
            {
                await WaitUntilAsync(() => controllerB.IsLeader, "replica B to lead");
                await controllerB.ExecuteAsync(RolloutCommand.Start(TestRegistry.Candidate, "canary", "tester", "registered on another replica"), TestContext.Current.CancellationToken);
                await WaitUntilAsync(() => controllerB.Status?.Phase is RolloutPhase.Progressing, "the canary to progress on replica B");
                await controllerB.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Promote, "tester", "fetched candidate verified"), TestContext.Current.CancellationToken);
                await WaitUntilAsync(() => controllerB.Status?.Phase is RolloutPhase.Succeeded && controllerB.Plan.Stable == TestRegistry.Candidate, "the promotion on replica B");
            }
            finally
            {
                await stop.CancelAsync();
                await loop;
            }

            var predictions = new Prediction[1];
            await pipelineB.PredictAsync("device-b", new float[200 * 6], predictions, TestContext.Current.CancellationToken);
            Assert.Equal(TestRegistry.Candidate, predictions[0].ModelVersion);

            // B's cached copy is A's registration: the same model bytes and deployment record, vouched for by A's anchor.
            Assert.True(Directory.Exists(candidateFolderB));
            Assert.Equal(File.ReadAllBytes(Path.Combine(root, "a", "v" + TestRegistry.Candidate, "deployment_record.json")), File.ReadAllBytes(Path.Combine(candidateFolderB, "deployment_record.json")));
            Assert.Equal(registered.Sha256, ModelRegistry.HashFile(Path.Combine(candidateFolderB, "model.onnx")));
            Assert.True(b.Verify(TestRegistry.Candidate).IsValid);
            a.SharedCurrent!.Refresh();
            Assert.Equal(TestRegistry.Candidate, a.CurrentVersion); // the shared pointer, moved by B's promotion

            // Registering the version again, on either replica, is a conflict: versions are immutable fleet-wide.
            Assert.Throws<ModelVersionConflictException>(() => a.Register(TestRegistry.CandidateFile));
            Assert.Throws<ModelVersionConflictException>(() => b.Register(TestRegistry.CandidateFile));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task RowAlteredInTheDatabase_RefusedOnFetch_AuditedOnce_NothingWritten()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var root = Directory.CreateTempSubdirectory("har-fleet-models-").FullName;
        try
        {
            await using var auditA = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
            await using var auditB = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
            using var storeA = FleetStore.Open(connectionString);
            using var storeB = FleetStore.Open(connectionString);
            var a = new ModelRegistry(Path.Combine(root, "a"), auditA);
            a.UseSharedModels(storeA);
            var champion = a.Register(TestRegistry.ChampionFile);
            var candidate = a.Register(TestRegistry.CandidateFile);

            // Three alterations: the candidate's model bytes (one bit), the champion's card, and a forged version copied from
            // the champion's row under a version nobody registered.
            await ExecuteAsync(connectionString, $"UPDATE har_fleet.model_files SET bytes = set_byte(bytes, 1000, get_byte(bytes, 1000) # 1) WHERE sha256 = '{candidate.Sha256}'");
            await ExecuteAsync(connectionString, $"UPDATE har_fleet.models SET config = config || '\\x20'::bytea WHERE version = '{TestRegistry.Champion}'");
            await ExecuteAsync(connectionString, $"INSERT INTO har_fleet.models (version, model_sha256, config, record, registry_id, written_by, written_at) SELECT '9.9.9', model_sha256, config, record, registry_id, 'intruder', now() FROM har_fleet.models WHERE version = '{TestRegistry.Champion}'");

            var b = new ModelRegistry(Path.Combine(root, "b"), auditB);
            b.UseSharedModels(storeB);
            var altered = Assert.Throws<ModelIntegrityException>(() => b.Get(TestRegistry.Candidate));
            Assert.Contains("the stored model was altered after registration", altered.Message, StringComparison.Ordinal);
            Assert.Contains($"but the audit log registered {candidate.Sha256}", altered.Message, StringComparison.Ordinal);
            Assert.Contains("differs from the card the audit log registered", Assert.Throws<ModelIntegrityException>(() => b.Get(TestRegistry.Champion)).Message, StringComparison.Ordinal);
            Assert.Contains("is not one the audit log", Assert.Throws<ModelIntegrityException>(() => b.Get("9.9.9")).Message, StringComparison.Ordinal);
            Assert.False(b.Verify(TestRegistry.Candidate).IsValid);

            // Listing (twice) shows none of them and audits nothing more; nothing reached B's folder.
            Assert.Empty(b.List());
            Assert.Empty(b.List());
            Assert.Empty(Directory.EnumerateDirectories(Path.Combine(root, "b")));
            var refusals = Refusals(auditB);
            Assert.Equal(3, refusals.Count);
            Assert.Equal([TestRegistry.Champion, TestRegistry.Candidate, "9.9.9"], refusals.Select(r => r.Version).Order(StringComparer.Ordinal));
            Assert.All(refusals, r => Assert.Equal("fetch from the fleet database", r.Purpose));

            // Shared again by the replica that holds a verified copy (A, restarted): the altered blob is replaced by the verified
            // bytes under the same hash, and B fetches the candidate.
            await ExecuteAsync(connectionString, $"DELETE FROM har_fleet.models WHERE version = '{TestRegistry.Candidate}'");
            using var storeRestarted = FleetStore.Open(connectionString);
            new ModelRegistry(Path.Combine(root, "a"), auditA).UseSharedModels(storeRestarted);
            Assert.Equal(candidate.Sha256, b.Get(TestRegistry.Candidate).Sha256);
            Assert.True(b.Verify(TestRegistry.Candidate).IsValid);

            // Every load verifies the cached copy again: an edit in B's folder is refused there too.
            var cached = Path.Combine(root, "b", "v" + TestRegistry.Candidate, "model.onnx");
            var bytes = File.ReadAllBytes(cached);
            bytes[1000] ^= 1;
            File.WriteAllBytes(cached, bytes);
            Assert.Throws<ModelIntegrityException>(() => b.ReadVerified(TestRegistry.Candidate, "serve"));
            Assert.Equal(champion.Sha256, a.Get(TestRegistry.Champion).Sha256); // A's own folder is untouched by the database
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static RolloutControllerOptions Options(string connectionString) => TestRegistry.Options(o =>
    {
        o.ConnectionString = connectionString;
        o.LeaseDuration = TimeSpan.FromSeconds(4);
        o.BuiltInStrategies.AnalysisInterval = TimeSpan.FromMinutes(10);
    });

    private static List<(string Version, string Purpose)> Refusals(AuditLog audit)
    {
        var page = audit.Query(new AuditQuery { EventType = "registry.refused", Kind = AuditRecordKind.Event, PageSize = 100 });
        return [.. page.Entries.Select(e => ((AuditEvent)e.Record).ActionDetails).Select(d => (d.GetProperty("version").GetString()!, d.GetProperty("purpose").GetString()!))];
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < Generous, $"Not reached within {Generous.TotalSeconds:0} s: {what}.");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        Assert.Equal(1, await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken));
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }
}
