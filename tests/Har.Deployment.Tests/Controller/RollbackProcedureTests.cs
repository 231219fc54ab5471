using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Inference;
using Har.Testing;
using Prometheus;

namespace Har.Deployment.Tests.Controller;

/// <summary>
/// The six-step rollback of the reference deployment on the real controller, real ONNX sessions (the committed
/// fixture models) and a real audit log: detect, identify, verify, execute, verify success, log (incident report).
/// </summary>
public sealed class RollbackProcedureTests : IDisposable
{
    private static readonly string[] SixSteps = ["detect", "identify", "verify", "execute", "verify_success", "log"];

    private readonly TestRegistry _env = new(registerCandidate: false);
    private readonly AuditLog _log;
    private readonly ModelRegistry _registry;
    private readonly CollectorRegistry _metrics = Metrics.NewCustomRegistry();

    public RollbackProcedureTests()
    {
        _log = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(_env.Root, "audit"), EnableMetrics = false });
        _registry = new ModelRegistry(Path.Combine(_env.Root, "audited-registry"), _log, _env.Time);
        _registry.Register(TestRegistry.ChampionFile, new ModelRegistrationOptions { Deployer = "alice" });
        _registry.Register(TestRegistry.CandidateFile, new ModelRegistrationOptions { Deployer = "alice" });
    }

    public void Dispose()
    {
        _log.Dispose();
        _env.Dispose();
    }

    [Fact]
    public async Task FailingCanary_RolledBackInSixRecordedSteps_IncidentReportWithTimeToRestore()
    {
        await using var pipeline = Open();
        await using var c = await RolloutController.OpenAsync(_registry, pipeline, Options(), timeProvider: _env.Time);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        await FailingIntervalAsync(c);
        s = await FailingIntervalAsync(c);

        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        Assert.Equal(TrafficPlan.Single("1.0.0").ToString(), pipeline.Plan.ToString());
        Assert.Contains("verifying 1.0.0", s.Message, StringComparison.Ordinal);
        Assert.Equal(["detect", "identify", "verify", "execute"], Steps(s.RolloutId).Select(e => Text(e, "name")));

        // Step 3 on a target that was already loaded (the warm champion): hash against the registration entry, card, warm-up.
        var verify = Steps(s.RolloutId)[2].ActionDetails;
        Assert.True(verify.GetProperty("already_loaded").GetBoolean());
        Assert.True(verify.GetProperty("verified").GetBoolean());
        var registered = Assert.Single(_log.Query(new AuditQuery { EventType = "registry.registered", EntityId = "tiny-probs@1.0.0" , PageSize = 1000 }).Entries);
        Assert.Equal(((AuditEvent)registered.Record).ActionDetails.GetProperty("sha256").GetString(), verify.GetProperty("actual_sha256").GetString());
        Assert.True(verify.GetProperty("warm_up").GetProperty("passed").GetBoolean());
        Assert.Equal("1.0.0", verify.GetProperty("card").GetProperty("version").GetString());

        // Step 5: real windows served through the restored version during the next interval, then the gates.
        await ServeAsync(pipeline, 30);
        _env.Time.Advance(TimeSpan.FromMinutes(1));
        s = (await c.ReconcileAsync())!;
        var steps = Steps(s.RolloutId);
        Assert.Equal(SixSteps, steps.Select(e => Text(e, "name")));
        Assert.Equal([1, 2, 3, 4, 5, 6], steps.Select(e => e.ActionDetails.GetProperty("step").GetInt32()));
        var success = steps[4].ActionDetails;
        Assert.Equal("passed", success.GetProperty("result").GetString());
        Assert.Equal(30, success.GetProperty("requests").GetInt64());
        Assert.True(success.GetProperty("smoke").GetProperty("passed").GetBoolean());
        Assert.Contains("verified over the interval", s.Message, StringComparison.Ordinal);

        var report = Assert.Single(Events(s.RolloutId, "rollout.incident")).ActionDetails;
        Assert.Equal("incident-" + s.RolloutId, report.GetProperty("incident_id").GetString());
        Assert.Equal("automatic", report.GetProperty("trigger").GetString());
        Assert.Contains("failing analysis interval", report.GetProperty("detected_cause").GetString(), StringComparison.Ordinal);
        Assert.Contains("\"error-rate\"", report.GetProperty("evidence").GetRawText(), StringComparison.Ordinal);
        Assert.Equal(("1.1.0", "1.0.0"), (report.GetProperty("from").GetString(), report.GetProperty("to").GetString()));
        Assert.Equal(0, report.GetProperty("time_to_restore_seconds").GetDouble());
        Assert.Equal(SixSteps, report.GetProperty("timeline").EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        Assert.Equal("passed", report.GetProperty("verification").GetString());

        // The typed rollback record points at the incident.
        var rollback = (RollbackRecord)Assert.Single(_log.Query(new AuditQuery { Kind = AuditRecordKind.Rollback , PageSize = 1000 }).Entries).Record;
        Assert.Equal("incident-" + s.RolloutId, rollback.Incident!.Id);
        Assert.Contains("har_rollout_rollback_verifications_total{result=\"passed\"} 1", await ScrapeAsync(), StringComparison.Ordinal);
        Assert.True(_log.Verify().IsValid);
    }

    [Fact]
    public async Task RestoredVersionFailsOverTheNextInterval_VerificationFailedIsCriticalAndCounted()
    {
        await using var pipeline = Open();
        await using var c = await RolloutController.OpenAsync(_registry, pipeline, Options(), timeProvider: _env.Time);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Rollback, "oncall", "pager fired") with
        {
            IncidentSummary = "wrong activities for 10 % of devices",
        });
        Assert.Equal(RolloutPhase.RolledBack, s.Phase);

        // The restored version itself fails requests in the verification interval (e.g. the incident was elsewhere).
        for (var i = 0; i < 200; i++)
        {
            c.Observations.RecordError("1.0.0", TimeSpan.FromMilliseconds(5));
        }

        _env.Time.Advance(TimeSpan.FromMinutes(1));
        s = (await c.ReconcileAsync())!;
        var success = Steps(s.RolloutId)[4];
        Assert.Equal("failed", success.ActionDetails.GetProperty("result").GetString());
        Assert.Equal(AuditSeverity.Critical, success.Severity);
        Assert.Contains("error rate", success.ActionDetails.GetProperty("findings")[0].GetString(), StringComparison.Ordinal);
        Assert.Contains("rollback verification failed", s.Message, StringComparison.Ordinal);
        var report = Assert.Single(Events(s.RolloutId, "rollout.incident"));
        Assert.Equal(AuditSeverity.Critical, report.Severity);
        Assert.Equal("command", report.ActionDetails.GetProperty("trigger").GetString());
        Assert.Equal("wrong activities for 10 % of devices", report.ActionDetails.GetProperty("summary").GetString());
        Assert.Contains("har_rollout_rollback_verifications_total{result=\"failed\"} 1", await ScrapeAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task VerificationIntervalCutByARestart_StartsAgain_InsteadOfBeingJudgedFromNothing()
    {
        string rolloutId;
        await using (var pipeline = Open())
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, Options(), timeProvider: _env.Time))
        {
            var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
            s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Rollback, "oncall", "pager fired"));
            Assert.Equal(RolloutPhase.RolledBack, s.Phase);
            rolloutId = s.RolloutId;
            await ServeAsync(pipeline, 30);
        }

        // The process stops with the interval half run and starts again after it was due: the 30 requests it observed
        // are gone. Judged now, the restored version would be "unmeasurable" on 0 requests, though it served.
        _env.Time.Advance(TimeSpan.FromMinutes(2));
        var reopened = _env.Time.GetUtcNow();
        await using (var pipeline = Open())
        await using (var c = await RolloutController.OpenAsync(_registry, pipeline, Options(), timeProvider: _env.Time))
        {
            var s = c.Status!;
            Assert.Equal(RolloutPhase.RolledBack, s.Phase);
            Assert.Contains("verifying 1.0.0 again", s.Message, StringComparison.Ordinal);
            Assert.Equal(["detect", "identify", "verify", "execute"], Steps(rolloutId).Select(e => Text(e, "name")));

            await ServeAsync(pipeline, 20);
            _env.Time.Advance(TimeSpan.FromMinutes(1));
            s = (await c.ReconcileAsync())!;
            var success = Steps(rolloutId)[4].ActionDetails;
            Assert.Equal("passed", success.GetProperty("result").GetString());
            Assert.Equal(20, success.GetProperty("requests").GetInt64());
            Assert.Equal(1, success.GetProperty("interval_restarts").GetInt32());
            Assert.Equal(reopened, success.GetProperty("interval_start").GetDateTimeOffset());
            Assert.Contains("verified over the interval", s.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task RollbackTo_EarlierVerifiedVersion_ThatVersionServesAndIsCurrent()
    {
        RegisterThird();
        await using var pipeline = Open();
        await using var c = await RolloutController.OpenAsync(_registry, pipeline, Options(), timeProvider: _env.Time);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "recreate", "alice", "ship 1.1.0"));
        Assert.Equal((RolloutPhase.Succeeded, "1.1.0"), (s.Phase, _registry.CurrentVersion));
        s = await c.ExecuteAsync(RolloutCommand.Start("1.2.0", "canary", "alice", "ship 1.2.0"));
        Assert.Equal("1.1.0", s.Champion);

        s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Rollback, "oncall", "1.1.0 and 1.2.0 share the bug") with { RollbackTo = "v1.0.0" });

        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        Assert.Equal("1.0.0", _registry.CurrentVersion);
        Assert.Equal(TrafficPlan.Single("1.0.0").ToString(), pipeline.Plan.ToString());
        for (var i = 0; i < 200; i++)
        {
            Assert.Equal("1.0.0", TrafficRouter.Route(pipeline.Plan, $"device-{i}").Version);
        }

        var steps = Steps(s.RolloutId);
        Assert.Equal("1.0.0", steps[1].ActionDetails.GetProperty("target").GetString());
        Assert.Contains("earlier registered version", steps[1].ActionDetails.GetProperty("rule").GetString(), StringComparison.Ordinal);
        Assert.False(steps[2].ActionDetails.GetProperty("already_loaded").GetBoolean());
        Assert.True(steps[2].ActionDetails.GetProperty("verified").GetBoolean());

        // Real windows go through 1.0.0 (the only version serving); 1.1.0 and 1.2.0 were unloaded.
        var predictions = await ServeAsync(pipeline, 5);
        Assert.All(predictions, p => Assert.Equal("1.0.0", p));
        _env.Time.Advance(TimeSpan.FromMinutes(1));
        s = (await c.ReconcileAsync())!;
        Assert.Equal("passed", Steps(s.RolloutId)[4].ActionDetails.GetProperty("result").GetString());

        // After a restart the controller serves the rollback's target, not the rollout's champion.
        await using var pipeline2 = Open();
        await using var reopened = await RolloutController.OpenAsync(_registry, pipeline2, Options(), timeProvider: _env.Time);
        Assert.Equal(TrafficPlan.Single("1.0.0").ToString(), pipeline2.Plan.ToString());
    }

    [Theory]
    [InlineData("1.2.0", "not earlier than the candidate")]
    [InlineData("1.3.0", "not a registered version")]
    [InlineData("tampered", "does not verify against the audit log")]
    public async Task RollbackTo_RefusedTarget_NothingChangesAndTheRefusalIsAudited(string target, string expected)
    {
        RegisterThird();
        await using var pipeline = Open();
        await using var c = await RolloutController.OpenAsync(_registry, pipeline, Options(), timeProvider: _env.Time);
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "recreate", "alice", "ship 1.1.0"));
        var before = await c.ExecuteAsync(RolloutCommand.Start("1.2.0", "canary", "alice", "ship 1.2.0"));
        if (target == "tampered")
        {
            var path = _registry.Get("1.0.0").ModelPath;
            var bytes = await File.ReadAllBytesAsync(path);
            bytes[^10] ^= 0x01;
            await File.WriteAllBytesAsync(path, bytes);
            target = "1.0.0";
        }

        var error = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Rollback, "oncall", "x") with { RollbackTo = target }));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        var after = c.Status!;
        Assert.Equal((before.Phase, before.Revision, before.CandidatePercent), (after.Phase, after.Revision, after.CandidatePercent));
        Assert.Empty(Steps(after.RolloutId));
        var refusal = Events(after.RolloutId, "rollout.command").Last();
        Assert.False(refusal.ActionDetails.GetProperty("accepted").GetBoolean());
        Assert.Contains(expected, refusal.ActionDetails.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoadedChampionTamperedOnDisk_VerifyStepIsCriticalAndTheRollbackStillRestoresIt()
    {
        await using var pipeline = Open();
        await using var c = await RolloutController.OpenAsync(_registry, pipeline, Options(), timeProvider: _env.Time);
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        var path = _registry.Get("1.0.0").ModelPath;
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[^10] ^= 0x01;
        await File.WriteAllBytesAsync(path, bytes);

        var s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Rollback, "oncall", "complaints"));

        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        Assert.Equal(TrafficPlan.Single("1.0.0").ToString(), pipeline.Plan.ToString());
        var verify = Steps(s.RolloutId)[2];
        Assert.Equal(AuditSeverity.Critical, verify.Severity);
        Assert.False(verify.ActionDetails.GetProperty("verified").GetBoolean());
        Assert.NotEqual(verify.ActionDetails.GetProperty("expected_sha256").GetString(), verify.ActionDetails.GetProperty("actual_sha256").GetString());
        Assert.Contains("resident session", verify.ActionDetails.GetProperty("note").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task IncidentReport_FilledAtRollbackThenCompletedLater_EvenAfterANewRollout()
    {
        RegisterThird();
        await using var pipeline = Open();
        await using var c = await RolloutController.OpenAsync(_registry, pipeline, Options(), timeProvider: _env.Time);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        var first = s.RolloutId;
        await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Rollback, "oncall", "pager") with { IncidentSummary = "misclassified stairs", IncidentCause = "unknown yet" });

        // Completed while it is the current rollout (the verification interval is still open).
        s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Incident, "oncall", "postmortem") with { IncidentCause = "gyro units in deg/s" });
        var reports = Events(first, "rollout.incident");
        Assert.Equal("gyro units in deg/s", reports[^1].ActionDetails.GetProperty("cause").GetString());
        Assert.Equal("misclassified stairs", reports[^1].ActionDetails.GetProperty("summary").GetString());

        // A new rollout cuts the verification short (judged on what it saw), archives the first; its report can still be completed.
        s = await c.ExecuteAsync(RolloutCommand.Start("1.2.0", "canary", "alice", "next"));
        Assert.True(Steps(first)[4].ActionDetails.GetProperty("cut_short").GetBoolean());
        await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Incident, "lead", "actions agreed") with { RolloutId = first, IncidentActions = "unit check in the drift monitor" });
        reports = Events(first, "rollout.incident");
        var last = reports[^1].ActionDetails;
        Assert.Equal(("gyro units in deg/s", "unit check in the drift monitor", "lead"), (last.GetProperty("cause").GetString(), last.GetProperty("actions").GetString(), last.GetProperty("reported_by").GetString()));
        Assert.Equal(reports.Count, last.GetProperty("report_revision").GetInt32());
        Assert.Equal(RolloutPhase.Progressing, c.Status!.Phase);

        // No report without content, and none for a rollout that was not rolled back.
        await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Incident, "lead", "x") with { RolloutId = first }));
        await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Incident, "lead", "x") with { IncidentSummary = "y" }));
    }

    private RolloutControllerOptions Options() => TestRegistry.Options(o => o.MetricsRegistry = _metrics);

    private ServingPipeline Open() => ServingPipeline.Open(_registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);

    /// <summary>Registers 1.2.0: the candidate fixture with its card's version changed (a self-consistent real model).</summary>
    private void RegisterThird()
    {
        var path = Path.Combine(_env.Root, "tiny-logits-1.2.0.onnx");
        File.WriteAllBytes(path, OnnxModelEditor.WithKey(File.ReadAllBytes(TestRegistry.CandidateFile), "har.model_version", "1.2.0"));
        _registry.Register(path, new ModelRegistrationOptions { Deployer = "alice" });
    }

    private async Task<RolloutStatus> FailingIntervalAsync(RolloutController c)
    {
        Traffic.Feed(c, 400, healthy: false);
        _env.Time.Advance(TimeSpan.FromMinutes(1));
        return (await c.ReconcileAsync())!;
    }

    /// <summary>Serves real windows through the pipeline (real ONNX sessions); returns the versions that served them.</summary>
    private static async Task<List<string>> ServeAsync(ServingPipeline pipeline, int windows)
    {
        var random = new Random(7);
        var versions = new List<string>();
        var predictions = new Prediction[1];
        for (var i = 0; i < windows; i++)
        {
            var window = new float[pipeline.WindowValues];
            for (var k = 0; k < window.Length; k++)
            {
                window[k] = (float)(random.NextDouble() * 2 - 1);
            }

            await pipeline.PredictAsync($"device-{i}", window, predictions);
            versions.Add(predictions[0].ModelVersion);
        }

        return versions;
    }

    private List<AuditEvent> Steps(string rolloutId) => Events(rolloutId, RolloutController.RollbackStepEvent);

    private List<AuditEvent> Events(string rolloutId, string type) =>
        [.. _log.Query(new AuditQuery { EntityId = rolloutId, EventType = type , PageSize = 1000 }).Entries.Select(e => (AuditEvent)e.Record)];

    private async Task<string> ScrapeAsync()
    {
        using var stream = new MemoryStream();
        await _metrics.CollectAndExportAsTextAsync(stream);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static string? Text(AuditEvent e, string name) => e.ActionDetails.GetProperty(name).GetString();
}
