using Har.Audit;
using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Controller;

/// <summary>The audit contents of whole rollouts, read back and verified with Har.Audit.</summary>
public sealed class RolloutAuditTests : IDisposable
{
    private readonly TestRegistry _env = new(registerCandidate: false);
    private readonly AuditLog _log;
    private readonly ModelRegistry _registry;

    public RolloutAuditTests()
    {
        _log = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(_env.Root, "audit"), EnableMetrics = false });
        _registry = new ModelRegistry(Path.Combine(_env.Root, "audited-registry"), _log, _env.Time);
        _registry.Register(TestRegistry.ChampionFile, new ModelRegistrationOptions { Deployer = "alice" });
        _registry.Register(TestRegistry.CandidateFile, new ModelRegistrationOptions { Deployer = "alice", ApprovedBy = "bob" });
    }

    public void Dispose()
    {
        _log.Dispose();
        _env.Dispose();
    }

    [Fact]
    public async Task Canary_PromotedRollout_EveryCommandTransitionStepAndVerdictInTheVerifiedLog()
    {
        await using var pipeline = ServingPipeline.Open(_registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "more accurate model"));
            while (s.Phase == RolloutPhase.Progressing)
            {
                Traffic.Feed(c, 400, healthy: true);
                _env.Time.Advance(TimeSpan.FromMinutes(1));
                s = (await c.ReconcileAsync())!;
            }

            Assert.Equal(RolloutPhase.Succeeded, s.Phase);
            var verification = _log.Verify();
            Assert.True(verification.IsValid, verification.Message);

            var events = Events(s.RolloutId);
            Assert.Equal(["Pending", "Progressing", "Promoting", "Succeeded"], events.Where(e => e.EventType == "rollout.transition").Select(e => e.ActionDetails.GetProperty("to").GetString()));
            var start = Assert.Single(events, e => e.EventType == "rollout.command");
            Assert.Equal("alice", start.Actor);
            Assert.Equal("more accurate model", start.ActionDetails.GetProperty("reason").GetString());
            Assert.Equal(s.Steps.Count, events.Count(e => e.EventType == "rollout.step"));
            var verdicts = events.Where(e => e.EventType == "rollout.verdict").ToList();
            Assert.Equal(6, verdicts.Count);
            foreach (var v in verdicts)
            {
                Assert.Equal("Pass", v.ActionDetails.GetProperty("verdict").GetString());
                var gates = v.ActionDetails.GetProperty("gates").EnumerateArray().Select(g => g.GetProperty("gate").GetString()).ToList();
                Assert.Contains("error-rate", gates);
                Assert.Contains("class-mix", gates);
                Assert.Contains("agreement", gates);
                var errorRate = v.ActionDetails.GetProperty("gates").EnumerateArray().First(g => g.GetProperty("gate").GetString() == "error-rate");
                Assert.Equal(400, errorRate.GetProperty("evidence").GetProperty("requests").GetDouble());
            }

            Assert.Equal(Enumerable.Range(0, events.Count).Select(i => (long)i), events.Select(e => e.ActionDetails.GetProperty("sequence").GetInt64()));
            var deployments = _log.Query(new AuditQuery { Kind = AuditRecordKind.Deployment }).Entries.Select(e => (DeploymentRecord)e.Record).ToList();
            Assert.Equal(["1.0.0", "1.1.0"], deployments.Select(d => d.Model.Version));
            Assert.Equal("bob", deployments[1].Deployer.ApprovedBy);
        }
    }

    [Fact]
    public async Task Canary_EveryEventCarriesTheTimeOfTheChangeThatMadeIt()
    {
        // Events took the time of the state they were added to, which was the previous change's: each verdict was
        // stamped with the time of the analysis before it, and a promotion finished by a new fleet leader for a frozen
        // one with the time the frozen leader began it.
        await using var pipeline = ServingPipeline.Open(_registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        await using var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time);
        var started = _env.Time.GetUtcNow();
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "more accurate model"));
        var reconciled = new List<DateTimeOffset>();
        while (s.Phase == RolloutPhase.Progressing)
        {
            Traffic.Feed(c, 400, healthy: true);
            _env.Time.Advance(TimeSpan.FromMinutes(1));
            reconciled.Add(_env.Time.GetUtcNow());
            s = (await c.ReconcileAsync())!;
        }

        Assert.Equal(RolloutPhase.Succeeded, s.Phase);
        var events = Events(s.RolloutId);
        var verdicts = events.Where(e => e.EventType == "rollout.verdict").ToList();
        Assert.Equal(reconciled.Take(verdicts.Count), verdicts.Select(v => v.Timestamp));
        Assert.Equal(reconciled[^1], events.Single(e => e.EventType == "rollout.transition" && e.ActionDetails.GetProperty("to").GetString() == "Succeeded").Timestamp);
        Assert.All(events.Where(e => e.EventType == "rollout.command"), e => Assert.Equal(started, e.Timestamp));
        Assert.Equal(events.Select(e => e.Timestamp).Order(), events.Select(e => e.Timestamp)); // in the log's order
    }

    [Fact]
    public async Task StateFileLostMidRollout_TheReopenedControllerEndsItInTheLog_OnceAndANewRolloutStarts()
    {
        // Found from outside: with rollout.json deleted while a canary ran, the restarted service said there had been no
        // rollout, the history showed the canary in progress for good, and a new rollout started beside it.
        await using var pipeline = ServingPipeline.Open(_registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        string lost;
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "more accurate model"));
            Traffic.Feed(c, 400, healthy: true);
            _env.Time.Advance(TimeSpan.FromMinutes(1));
            s = (await c.ReconcileAsync())!;
            Assert.Equal(RolloutPhase.Progressing, s.Phase);
            lost = s.RolloutId;
        }

        File.Delete(Path.Combine(_registry.Root, ".rollout", "rollout.json"));
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            Assert.Null(c.Status);
            var ended = Events(lost).Where(e => e.EventType == "rollout.transition").ToList();
            Assert.Equal(["Pending", "Progressing", "Aborted"], ended.Select(e => e.ActionDetails.GetProperty("to").GetString()));
            var end = ended[^1];
            Assert.Equal(AuditSeverity.Warning, end.Severity);
            Assert.True(end.ActionDetails.GetProperty("state_lost").GetBoolean());
            Assert.Contains("was missing when the controller opened", end.ActionDetails.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Contains("current version 1.0.0 serves", end.ActionDetails.GetProperty("message").GetString(), StringComparison.Ordinal);
            var sequences = Events(lost).Select(e => e.ActionDetails.GetProperty("sequence").GetInt64()).ToList();
            Assert.Equal(sequences.Count, sequences.Distinct().Count());
            Assert.Equal(sequences.Max(), end.ActionDetails.GetProperty("sequence").GetInt64());

            var next = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "again"));
            Assert.NotEqual(lost, next.RolloutId);
        }

        // A third open finds the new rollout's state: nothing more is ended.
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            Assert.NotNull(c.Status);
            Assert.Single(Events(lost), e => e.EventType == "rollout.transition" && e.ActionDetails.GetProperty("to").GetString() == "Aborted");
        }

        var verification = _log.Verify();
        Assert.True(verification.IsValid, verification.Message);
    }

    [Fact]
    public async Task StateAndPointerRestoredFromBeforeAPromotion_TheReopenedControllerFollowsTheLog_NothingIsDecidedAgain()
    {
        // A file-level restore of the registry folder (a volume snapshot) taken while a canary ran, with the audit log
        // kept: the state file and the pointer say Progressing on 1.0.0, the log says 1.1.0 was promoted since.
        await using var pipeline = ServingPipeline.Open(_registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        var statePath = Path.Combine(_registry.Root, ".rollout", "rollout.json");
        var pointerPath = Path.Combine(_registry.Root, "current");
        byte[] oldState, oldPointer;
        string id;
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "more accurate model"));
            Traffic.Feed(c, 400, healthy: true);
            _env.Time.Advance(TimeSpan.FromMinutes(1));
            s = (await c.ReconcileAsync())!;
            Assert.Equal(RolloutPhase.Progressing, s.Phase);
            (oldState, oldPointer, id) = (File.ReadAllBytes(statePath), File.ReadAllBytes(pointerPath), s.RolloutId);
            while (s.Phase == RolloutPhase.Progressing)
            {
                Traffic.Feed(c, 400, healthy: true);
                _env.Time.Advance(TimeSpan.FromMinutes(1));
                s = (await c.ReconcileAsync())!;
            }

            Assert.Equal(RolloutPhase.Succeeded, s.Phase);
        }

        var recorded = Events(id).Count;
        File.WriteAllBytes(statePath, oldState);
        File.WriteAllBytes(pointerPath, oldPointer);
        Assert.Equal("1.0.0", _registry.CurrentVersion);

        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            Assert.Null(c.Status);
            Assert.Equal("1.1.0", _registry.CurrentVersion);
            Assert.Equal(recorded, Events(id).Count);
            Assert.Equal("Succeeded", Events(id).Last(e => e.EventType == "rollout.transition").ActionDetails.GetProperty("to").GetString());
            var aligned = Assert.Single(RegistryEvents("registry.current_aligned"));
            Assert.Equal(("1.1.0", "1.0.0", id), (aligned.ActionDetails.GetProperty("version").GetString(), aligned.ActionDetails.GetProperty("pointer").GetString(), aligned.ActionDetails.GetProperty("rollout_id").GetString()));
            Assert.Equal(AuditSeverity.Warning, aligned.Severity);
            var setAside = Assert.Single(Directory.GetFiles(Path.GetDirectoryName(statePath)!, "rollout.json.behind-log-*"));
            Assert.Equal(oldState, File.ReadAllBytes(setAside));
            Assert.False(File.Exists(statePath));
        }

        // The next open finds the pointer and the log in step: nothing more is recorded.
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            Assert.Single(RegistryEvents("registry.current_aligned"));
            Assert.Equal("1.1.0", _registry.CurrentVersion);
        }

        var verification = _log.Verify();
        Assert.True(verification.IsValid, verification.Message);
    }

    [Fact]
    public async Task StateRestoredFromAnEarlierStepOfARunningRollout_TheRolloutEndsAsAbortedInsteadOfDecidingAgain()
    {
        await using var pipeline = ServingPipeline.Open(_registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        var statePath = Path.Combine(_registry.Root, ".rollout", "rollout.json");
        byte[] oldState;
        string id;
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "more accurate model"));
            (oldState, id) = (File.ReadAllBytes(statePath), s.RolloutId);
            var before = Events(id).Count;
            Traffic.Feed(c, 400, healthy: true);
            _env.Time.Advance(TimeSpan.FromMinutes(1));
            s = (await c.ReconcileAsync())!;
            Assert.Equal(RolloutPhase.Progressing, s.Phase);
            Assert.True(Events(id).Count > before);
        }

        File.WriteAllBytes(statePath, oldState);
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            Assert.Null(c.Status);
            Assert.Equal("1.0.0", _registry.CurrentVersion);
            var transitions = Events(id).Where(e => e.EventType == "rollout.transition").ToList();
            Assert.Equal(["Pending", "Progressing", "Aborted"], transitions.Select(e => e.ActionDetails.GetProperty("to").GetString()));
            var end = transitions[^1];
            Assert.True(end.ActionDetails.GetProperty("state_behind_log").GetBoolean());
            var message = end.ActionDetails.GetProperty("message").GetString();
            Assert.Contains("older than the audit log", message, StringComparison.Ordinal);
            Assert.Contains("current version 1.0.0 serves", message, StringComparison.Ordinal);
            var sequences = Events(id).Select(e => e.ActionDetails.GetProperty("sequence").GetInt64()).ToList();
            Assert.Equal(sequences.Count, sequences.Distinct().Count());
            Assert.Equal(sequences.Max(), end.ActionDetails.GetProperty("sequence").GetInt64());
            Assert.Empty(RegistryEvents("registry.current_aligned"));

            var next = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "again"));
            Assert.NotEqual(id, next.RolloutId);
        }

        var verification = _log.Verify();
        Assert.True(verification.IsValid, verification.Message);
    }

    [Fact]
    public async Task PointerBehindTheLog_TheLoggedVersionNoLongerVerifies_ThePointerStaysAndTheLogSaysWhy()
    {
        await using var pipeline = ServingPipeline.Open(_registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "more accurate model"));
            while (!s.Phase.IsTerminal())
            {
                Traffic.Feed(c, 400, healthy: true);
                _env.Time.Advance(TimeSpan.FromMinutes(1));
                s = (await c.ReconcileAsync())!;
            }

            Assert.Equal(RolloutPhase.Succeeded, s.Phase);
        }

        File.WriteAllText(Path.Combine(_registry.Root, "current"), "v1.0.0\n");
        File.Delete(Path.Combine(_registry.Root, "v1.1.0", "model.onnx"));
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            Assert.Equal("1.0.0", _registry.CurrentVersion);
            Assert.Empty(RegistryEvents("registry.current_aligned"));
            var behind = Assert.Single(RegistryEvents("registry.current_behind_log"));
            Assert.Equal(AuditSeverity.Error, behind.Severity);
            var message = behind.ActionDetails.GetProperty("message").GetString();
            Assert.Contains("1.1.0 cannot be served from this registry", message, StringComparison.Ordinal);
            Assert.Contains("1.0.0 stays current", message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task TwoRegistriesShareOneLog_OneOpensWithoutState_TheOthersRunningRolloutIsNotEndedOrJudged()
    {
        // Replicas with their own registries and rollouts may share one audit log: a controller that opens without a
        // state file must not take the other registry's running rollout for its own lost one.
        var other = new ModelRegistry(Path.Combine(_env.Root, "other-registry"), _log, _env.Time);
        other.Register(TestRegistry.ChampionFile, new ModelRegistrationOptions { Deployer = "alice" });
        other.Register(TestRegistry.CandidateFile, new ModelRegistrationOptions { Deployer = "alice", ApprovedBy = "bob" });
        await using var otherPipeline = ServingPipeline.Open(other, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        await using var otherController = await RolloutController.OpenAsync(other, otherPipeline, TestRegistry.Options(), timeProvider: _env.Time);
        var running = await otherController.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "on the other registry"));
        Assert.False(running.Phase.IsTerminal());

        await using var pipeline = ServingPipeline.Open(_registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            Assert.Null(c.Status);
            Assert.Equal("1.0.0", _registry.CurrentVersion);
        }

        Assert.DoesNotContain(Events(running.RolloutId), e => e.EventType == "rollout.transition" && e.ActionDetails.GetProperty("to").GetString() == "Aborted");
        Assert.Empty(RegistryEvents("registry.current_aligned"));
        Assert.Equal(running.RolloutId, otherController.Status!.RolloutId);
        Assert.False(otherController.Status.Phase.IsTerminal());
    }

    [Fact]
    public async Task Canary_FailingCandidate_RollbackRecordWithEvidenceAndProvableInclusion()
    {
        await using var pipeline = ServingPipeline.Open(_registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        await using var c = await RolloutController.OpenAsync(_registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        while (s.Phase == RolloutPhase.Progressing)
        {
            Traffic.Feed(c, 400, healthy: false);
            _env.Time.Advance(TimeSpan.FromMinutes(1));
            s = (await c.ReconcileAsync())!;
        }

        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        var rollback = Assert.Single(_log.Query(new AuditQuery { Kind = AuditRecordKind.Rollback }).Entries);
        var record = (RollbackRecord)rollback.Record;
        Assert.Equal(("1.1.0", "1.0.0", RolloutController.SystemActor), (record.FromVersion, record.ToVersion, record.Operator));
        Assert.StartsWith("automatic", record.Trigger, StringComparison.Ordinal);
        Assert.Equal("Fail", record.Evidence.GetProperty("verdict").GetString());

        using var key = AuditSigningKey.Generate("har-test");
        var checkpoint = _log.CreateCheckpoint(key);
        var proof = _log.ExportProof(rollback.Index);
        Assert.True(proof.Verify(key.ToVerifierKey(), out var problem), problem);
        Assert.True(checkpoint.Verify(key.ToVerifierKey()));

        var verdicts = Events(s.RolloutId).Where(e => e.EventType == "rollout.verdict").ToList();
        Assert.Equal(2, verdicts.Count);
        Assert.All(verdicts, v => Assert.Equal("Fail", v.ActionDetails.GetProperty("verdict").GetString()));
        Assert.Equal(RolloutPhase.RolledBack.ToString(), Events(s.RolloutId).Last(e => e.EventType == "rollout.transition").ActionDetails.GetProperty("to").GetString());
    }

    private List<AuditEvent> RegistryEvents(string eventType) =>
        [.. _log.Query(new AuditQuery { EventType = eventType, EntityType = "registry", PageSize = 100 }).Entries.Select(e => e.Record).OfType<AuditEvent>()];

    private List<AuditEvent> Events(string rolloutId)
    {
        var result = new List<AuditEvent>();
        string? token = null;
        do
        {
            var page = _log.Query(new AuditQuery { EntityId = rolloutId, PageSize = 100, PageToken = token });
            result.AddRange(page.Entries.Select(e => e.Record).OfType<AuditEvent>());
            token = page.NextPageToken;
        }
        while (token is not null);

        return result;
    }
}
