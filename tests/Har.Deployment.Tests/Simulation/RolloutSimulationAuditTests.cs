using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Testing;

namespace Har.Deployment.Tests.Simulation;

/// <summary>
/// A simulation prepared on a registry that has an audit log writes every run's decisions to that log,
/// as the controller does for a real rollout, and the log verifies offline against a signed checkpoint.
/// Real HAPT streams through the tiny fixture models (see <see cref="RolloutSimulationPipelineTests"/>).
/// </summary>
public sealed class RolloutSimulationAuditTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("har-sim-audit-test-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task RunAsync_AuditedRegistryFaultyCandidate_VerifiedTrailOfStartFailuresWithEvidenceAndRollback()
    {
        var data = TestPaths.RequireSharedData();
        var auditDir = Path.Combine(_root, "audit");
        using var key = AuditSigningKey.Generate("har-test");
        SimulationResult result;
        long entriesBefore;
        using (var log = AuditLog.Open(new AuditLogOptions { Directory = auditDir, EnableMetrics = false }))
        {
            var registry = new ModelRegistry(Path.Combine(_root, "registry"), log);
            registry.Register(TestRegistry.ChampionFile);
            registry.Register(TestRegistry.CandidateFile);
            entriesBefore = log.Query(new AuditQuery { PageSize = 100 }).Entries.Count;

            await using (var simulation = await RolloutSimulation.PrepareAsync(registry, "1.1.0", HaptTestSessions.Load(data).Take(4).ToList(), RolloutSimulationPipelineTests.TinyModelOptions()))
            {
                result = await simulation.RunAsync(new SimulationScenario { Fault = SimulationFault.Errors, Seed = 3 });
            }

            Assert.True(result.RolledBack, string.Join('\n', result.Decisions.Select(d => d.Summary)));
            log.CreateCheckpoint(key);
        }

        // Har.Audit's offline verification (framing, chain, schemas, Merkle root) against the pinned key.
        var verification = AuditLog.Verify(auditDir, key.ToVerifierKey());
        Assert.True(verification.IsValid, verification.Message);

        using var reader = AuditLog.Open(new AuditLogOptions { Directory = auditDir, EnableMetrics = false });
        var rolloutId = result.Status.RolloutId;
        var events = reader.Query(new AuditQuery { EntityId = rolloutId, Kind = AuditRecordKind.Event, PageSize = 500 }).Entries.Select(e => (AuditEvent)e.Record).ToList();

        // Every decision of the run, in order, exactly once, each marked as simulated with its virtual time.
        Assert.Equal(result.Decisions.Select(d => d.EventType), events.Select(e => e.EventType));
        Assert.Equal(Enumerable.Range(0, events.Count).Select(i => (long)i), events.Select(e => e.ActionDetails.GetProperty("sequence").GetInt64()));
        Assert.All(events, e => Assert.True(e.ActionDetails.GetProperty("simulated").GetBoolean()));
        Assert.Equal(result.Decisions.Select(d => d.At), events.Select(e => e.ActionDetails.GetProperty("virtual_time").GetDateTimeOffset()));

        // Rollout started.
        var start = events[0];
        Assert.Equal("rollout.command", start.EventType);
        Assert.Equal("Start", start.ActionDetails.GetProperty("command").GetString());
        Assert.Equal("1.1.0", start.ActionDetails.GetProperty("candidate").GetString());
        Assert.Equal("simulator", start.Actor);

        // Analysis failures, with the error-rate gate's evidence.
        var failures = events.Where(e => e.EventType == "rollout.verdict" && e.ActionDetails.GetProperty("verdict").GetString() == "Fail").ToList();
        Assert.NotEmpty(failures);
        foreach (var f in failures)
        {
            var gate = f.ActionDetails.GetProperty("gates").EnumerateArray().Single(g => g.GetProperty("gate").GetString() == "error-rate");
            Assert.Equal("Fail", gate.GetProperty("verdict").GetString());
            var evidence = gate.GetProperty("evidence");
            Assert.True(evidence.GetProperty("requests").GetDouble() > 0);
            Assert.True(evidence.GetProperty("error_rate").GetDouble() > 0.05, evidence.ToString());
        }

        // Rollback: the event, the final transition and the schema'd rollback record with the failing verdict as evidence.
        var rollbackEvent = Assert.Single(events, e => e.EventType == "rollout.rollback");
        Assert.Equal("automatic", rollbackEvent.ActionDetails.GetProperty("trigger").GetString());
        Assert.Equal("RolledBack", events.Last(e => e.EventType == "rollout.transition").ActionDetails.GetProperty("to").GetString());
        var record = (RollbackRecord)Assert.Single(reader.Query(new AuditQuery { Kind = AuditRecordKind.Rollback }).Entries).Record;
        Assert.Equal(("1.1.0", "1.0.0", RolloutController.SystemActor), (record.FromVersion, record.ToVersion, record.Operator));
        Assert.StartsWith(rolloutId + "#", record.RollbackId, StringComparison.Ordinal);
        Assert.Equal("Fail", record.Evidence.GetProperty("verdict").GetString());
        Assert.True(record.Evidence.GetProperty("simulated").GetBoolean());

        // The registrations before the run are still there, and nothing but the run was added.
        Assert.Equal(entriesBefore + events.Count + 1, verification.EntriesVerified);
    }
}
