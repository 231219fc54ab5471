using Har.Deployment.Tests.Support;
using Har.Inference;
using Prometheus;

namespace Har.Deployment.Tests.Controller;

public sealed class RolloutControllerTests : IDisposable
{
    private readonly TestRegistry _env = new();

    public void Dispose() => _env.Dispose();

    [Fact]
    public async Task Canary_HealthyCandidate_WalksTenFiftyHundredAndIsPromoted()
    {
        await using var c = await _env.OpenAsync();
        var status = await c.ExecuteAsync(RolloutCommand.Start("v1.1.0", "canary", "alice", "better model"));
        Assert.Equal(RolloutPhase.Progressing, status.Phase);
        Assert.Equal(10, status.CandidatePercent);
        Assert.Equal(10, c.Plan.CandidatePercent);

        var weights = new List<double>();
        for (var i = 0; i < 20 && status.Phase == RolloutPhase.Progressing; i++)
        {
            weights.Add(status.CandidatePercent);
            status = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        }

        Assert.Equal(RolloutPhase.Succeeded, status.Phase);
        Assert.True(status.Promoted);
        Assert.Equal([10.0, 10, 50, 50, 100, 100], weights);
        Assert.Equal(6, status.AnalysesRun);
        Assert.Equal(TestRegistry.Candidate, _env.Registry.CurrentVersion);
        Assert.Equal(TrafficPlan.Single(TestRegistry.Candidate).ToString(), c.Plan.ToString());
        var steps = _env.Audit.OfType("rollout.step").Select(e => e.Details["step"]!.GetValue<int>()).ToList();
        Assert.Equal(Enumerable.Range(0, status.Steps.Count), steps);
    }

    [Fact]
    public async Task ExecuteAndReconcile_AfterDispose_ThrowObjectDisposedNamingTheController()
    {
        var c = await _env.OpenAsync();
        await c.DisposeAsync();
        await c.DisposeAsync();

        // Before: the disposed gate's ObjectDisposedException, naming System.Threading.SemaphoreSlim.
        var execute = await Assert.ThrowsAsync<ObjectDisposedException>(() => c.ExecuteAsync(RolloutCommand.Start("v1.1.0", "canary", "alice", "after dispose")));
        var reconcile = await Assert.ThrowsAsync<ObjectDisposedException>(() => c.ReconcileAsync());

        Assert.Equal(typeof(RolloutController).FullName, execute.ObjectName);
        Assert.Equal(typeof(RolloutController).FullName, reconcile.ObjectName);
        Assert.Null(c.Status);
    }

    [Fact]
    public async Task Canary_FailingCandidate_RolledBackAtSecondFailingInterval()
    {
        var registry = Metrics.NewCustomRegistry();
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.MetricsRegistry = registry));

        // Both triggers exist at 0 before any rollback: Prometheus's increase() needs a sample before the first one, or
        // HarRollback misses the first rollback after every start (seen against a real Prometheus).
        var before = await Scrape(registry);
        Assert.Contains("har_rollout_rollbacks_total{trigger=\"automatic\"} 0", before, StringComparison.Ordinal);
        Assert.Contains("har_rollout_rollbacks_total{trigger=\"manual\"} 0", before, StringComparison.Ordinal);
        Assert.Contains("har_rollout_analyses_total{verdict=\"fail\"} 0", before, StringComparison.Ordinal);
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));

        var first = await Traffic.IntervalAsync(_env, c, 400, healthy: false);
        Assert.Equal(RolloutPhase.Progressing, first.Phase);
        Assert.Equal(1, first.Failures);

        var second = await Traffic.IntervalAsync(_env, c, 400, healthy: false);
        Assert.Equal(RolloutPhase.RolledBack, second.Phase);
        Assert.Equal(TestRegistry.Champion, _env.Registry.CurrentVersion);
        Assert.Equal(TrafficPlan.Single(TestRegistry.Champion).ToString(), c.Plan.ToString());
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(TestRegistry.Champion, TrafficRouter.Route(c.Plan, $"device-{i}").Version);
        }

        var rollback = Assert.Single(_env.Audit.OfType("rollout.rollback"));
        Assert.Equal("automatic", rollback.Details["trigger"]!.GetValue<string>());
        Assert.Contains("error-rate", rollback.Details.ToJsonString(), StringComparison.Ordinal);
        var text = await Scrape(registry);
        Assert.Contains("har_rollout_rollbacks_total{trigger=\"automatic\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("har_rollout_rollbacks_total{trigger=\"manual\"} 0", text, StringComparison.Ordinal);
        Assert.Contains("har_rollout_phase{phase=\"RolledBack\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("har_rollout_gate_verdicts_total{gate=\"error-rate\",verdict=\"fail\"} 2", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Canary_OneNoisyInterval_NeitherRollsBackNorAdvances()
    {
        await using var c = await _env.OpenAsync();
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        var s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        Assert.Equal((10.0, 1), (s.CandidatePercent, s.ConsecutivePasses));
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: false);
        Assert.Equal((RolloutPhase.Progressing, 10.0, 0, 1), (s.Phase, s.CandidatePercent, s.ConsecutivePasses, s.Failures));
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        Assert.Equal((10.0, 1, 0), (s.CandidatePercent, s.ConsecutivePasses, s.Failures));
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        Assert.Equal(50.0, s.CandidatePercent);
    }

    [Fact]
    public async Task Canary_TooFewSamples_ExtendsTheStepThenPausesWithWhatIsMissing_ResumedByTraffic()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.MaxInconclusiveIntervals = 3));
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        RolloutStatus s = null!;
        for (var i = 0; i < 3; i++)
        {
            // 20 windows an interval: the samples are kept while inconclusive (20, 40, 60 < the 100 needed).
            s = await Traffic.IntervalAsync(_env, c, 20, healthy: true);
            Assert.Equal((RolloutPhase.Progressing, GateVerdict.Inconclusive), (s.Phase, s.LastAnalysis!.Verdict));
            Assert.Equal(20 * (i + 1), s.LastAnalysis.CandidateRequests);
        }

        s = await Traffic.IntervalAsync(_env, c, 20, healthy: true);
        Assert.Equal((RolloutPhase.Paused, true, 10.0), (s.Phase, s.WaitingForData, s.CandidatePercent));
        Assert.Contains("waiting for data", s.Message, StringComparison.Ordinal);
        Assert.Contains("80 requests (0 errors); at least 100", s.Message, StringComparison.Ordinal);
        Assert.Equal(10.0, c.Plan.CandidatePercent);
        Assert.Empty(_env.Audit.OfType("rollout.rollback"));

        // The fifth interval brings the kept samples to 100: conclusive, so traffic resumes the rollout.
        s = await Traffic.IntervalAsync(_env, c, 20, healthy: true);
        Assert.Equal((RolloutPhase.Progressing, false, 1), (s.Phase, s.WaitingForData, s.ConsecutivePasses));
        Assert.Equal(100, s.LastAnalysis!.CandidateRequests);
        Assert.Contains(_env.Audit.OfType("rollout.transition"), e => e.Details["message"]!.GetValue<string>().StartsWith("resumed by traffic", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Canary_PausedForData_FailingTrafficRollsBack_AndOperatorCanResume()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.MaxInconclusiveIntervals = 1));
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        _ = await Traffic.IntervalAsync(_env, c, 10, healthy: true);
        var s = await Traffic.IntervalAsync(_env, c, 10, healthy: true);
        Assert.True(s.WaitingForData);
        s = await c.ExecuteAsync(RolloutCommand.Resume("bob", "seen enough"));
        Assert.Equal((RolloutPhase.Progressing, false), (s.Phase, s.WaitingForData));

        s = await Traffic.IntervalAsync(_env, c, 10, healthy: true);
        s = await Traffic.IntervalAsync(_env, c, 10, healthy: true);
        Assert.True(s.WaitingForData);
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: false);
        Assert.Equal((RolloutPhase.Progressing, false, 1), (s.Phase, s.WaitingForData, s.Failures)); // a conclusive (failing) interval resumes it
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: false);
        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        Assert.Equal(TestRegistry.Champion, _env.Registry.CurrentVersion);
    }

    [Fact]
    public async Task Canary_TooFewSamples_RollbackOnInconclusiveOptIn_RollsBack()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => (o.MaxInconclusiveIntervals, o.RollbackOnInconclusive) = (3, true)));
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        RolloutStatus s = null!;
        for (var i = 0; i < 4; i++)
        {
            s = await Traffic.IntervalAsync(_env, c, 10, healthy: true);
        }

        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        Assert.Contains("RollbackOnInconclusive", s.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Canary_NoTraffic_UnmeasurableThreeTimesPauses_ThenTrafficResumes()
    {
        await using var c = await _env.OpenAsync();
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        var s = await Traffic.IntervalAsync(_env, c, 0, healthy: true);
        s = await Traffic.IntervalAsync(_env, c, 0, healthy: true);
        Assert.Equal(RolloutPhase.Progressing, s.Phase);
        s = await Traffic.IntervalAsync(_env, c, 0, healthy: true);
        Assert.Equal((RolloutPhase.Paused, true), (s.Phase, s.WaitingForData));
        Assert.Contains("unmeasurable", s.Message, StringComparison.Ordinal);
        Assert.Contains("received no requests", s.Message, StringComparison.Ordinal);
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        Assert.Equal((RolloutPhase.Progressing, 1), (s.Phase, s.ConsecutivePasses));
    }

    [Fact]
    public async Task Canary_NoStreamRoutedToTheCandidateWhileTheChampionServes_MovesToTheNextWeight()
    {
        // Without shadow runs of the candidate: with them (the default) the candidate is judged on the champion's windows.
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.BuiltInStrategies.CanaryShadowPercent = 0));
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "few devices"));
        Assert.Equal(10.0, s.CandidatePercent);
        var first = s.StepIndex;
        for (var i = 0; i < 50; i++)
        {
            c.Observations.RecordPrediction(TestRegistry.Champion, new PredictionObservation(i % 5, 0.9f, false, TimeSpan.FromMilliseconds(5)));
        }

        _env.Time.Advance(TimeSpan.FromMinutes(1));
        s = (await c.ReconcileAsync())!;
        Assert.Equal((RolloutPhase.Progressing, 50.0), (s.Phase, s.CandidatePercent));
        Assert.True(s.StepIndex > first);
        Assert.Contains(_env.Audit.OfType("rollout.step"), e => e.Details.ToJsonString().Contains("too few streams for this weight", StringComparison.Ordinal));

        // Judged at the next weight as usual: a healthy candidate passes there.
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        Assert.Equal((50.0, 1), (s.CandidatePercent, s.ConsecutivePasses));
    }

    [Fact]
    public async Task Canary_ApprovalGate_WaitsForApproveThenPromotes()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.BuiltInStrategies.RequireApproval = true));
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        while (s.Phase == RolloutPhase.Progressing)
        {
            s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        }

        Assert.Equal(RolloutPhase.AwaitingApproval, s.Phase);
        _env.Time.Advance(TimeSpan.FromHours(3));
        Assert.Equal(RolloutPhase.AwaitingApproval, (await c.ReconcileAsync())!.Phase);
        s = await c.ExecuteAsync(RolloutCommand.Approve("bob", "metrics look good") with { ExpectedPhase = RolloutPhase.AwaitingApproval });
        Assert.Equal(RolloutPhase.Succeeded, s.Phase);
        var approve = _env.Audit.OfType("rollout.command").Single(e => e.Details["command"]!.GetValue<string>() == "Approve");
        Assert.Equal("bob", approve.Actor);
    }

    [Fact]
    public async Task Pause_TimePasses_NoAnalysisUntilResumed()
    {
        await using var c = await _env.OpenAsync();
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        var paused = await c.ExecuteAsync(RolloutCommand.Pause("ops", "incident elsewhere"));
        Assert.Equal(RolloutPhase.Paused, paused.Phase);
        for (var i = 0; i < 5; i++)
        {
            var s = await Traffic.IntervalAsync(_env, c, 400, healthy: false);
            Assert.Equal((RolloutPhase.Paused, 0), (s.Phase, s.AnalysesRun));
        }

        Assert.Equal(10, c.Plan.CandidatePercent);
        var resumed = await c.ExecuteAsync(RolloutCommand.Resume("ops", "incident over"));
        Assert.Equal(RolloutPhase.Progressing, resumed.Phase);
        var after = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        Assert.Equal((1, 1), (after.AnalysesRun, after.ConsecutivePasses));
    }

    [Fact]
    public async Task Command_StaleExpectedPhaseOrRevision_ConflictAndNoChange()
    {
        await using var c = await _env.OpenAsync();
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        var ex = await Assert.ThrowsAsync<RolloutConflictException>(() => c.ExecuteAsync(RolloutCommand.Approve("bob", "ok") with { ExpectedPhase = RolloutPhase.AwaitingApproval }));
        Assert.Contains("expected the rollout in phase AwaitingApproval", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<RolloutConflictException>(() => c.ExecuteAsync(RolloutCommand.Pause("bob", "x") with { ExpectedRevision = s.Revision - 1 }));
        Assert.Equal(s.Revision, c.Status!.Revision);
        Assert.Equal(2, _env.Audit.OfType("rollout.command").Count(e => e.Details["outcome"]?.GetValue<string>() == "conflict"));
        var ok = await c.ExecuteAsync(RolloutCommand.Pause("bob", "x") with { ExpectedRevision = s.Revision, ExpectedPhase = RolloutPhase.Progressing });
        Assert.Equal(RolloutPhase.Paused, ok.Phase);
    }

    [Fact]
    public async Task Hooks_PreRolloutDenies_FailedAndCandidateNeverServes()
    {
        // FailureThreshold 1: the first pre-rollout refusal fails the rollout (by default it is held once, as Flagger does).
        var options = TestRegistry.Options(o =>
        {
            o.FailureThreshold = 1;
            o.Hooks.Add(new DelegateRolloutHook("compliance", RolloutHookPoint.PreRollout, (_, _) => ValueTask.FromResult(RolloutHookResult.Deny("model card lacks sign-off"))));
        });
        await using var c = await _env.OpenAsync(options);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        Assert.Equal(RolloutPhase.Failed, s.Phase);
        Assert.Contains("sign-off", s.Message, StringComparison.Ordinal);
        Assert.Equal(TestRegistry.Champion, TrafficRouter.Route(c.Plan, "d").Version);
        Assert.Equal(TestRegistry.Champion, _env.Registry.CurrentVersion);
    }

    [Fact]
    public async Task Hooks_PrePromotionDenies_RolledBack_PostHookRunsOnce()
    {
        var post = 0;
        var options = TestRegistry.Options(o =>
        {
            o.BuiltInStrategies.SmokeTest = false;
            o.Hooks.Add(new DelegateRolloutHook("change-board", RolloutHookPoint.PrePromotion, (_, _) => ValueTask.FromResult(RolloutHookResult.Deny("freeze"))));
            o.Hooks.Add(new DelegateRolloutHook("notify", RolloutHookPoint.PostRollout, (ctx, _) =>
            {
                post++;
                Assert.Equal(RolloutPhase.RolledBack, ctx.Status.Phase);
                return ValueTask.FromResult(RolloutHookResult.Allow());
            }));
        });
        await using var c = await _env.OpenAsync(options);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "recreate", "alice", "try"));
        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        Assert.Equal(1, post);
        Assert.Equal(TestRegistry.Champion, _env.Registry.CurrentVersion);
    }

    [Fact]
    public async Task Recreate_Start_SmokeTestsSwitchesAndPromotesAtOnce()
    {
        await using var c = await _env.OpenAsync();
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "recreate", "alice", "hotfix"));
        Assert.Equal(RolloutPhase.Succeeded, s.Phase);
        Assert.Equal(TestRegistry.Candidate, _env.Registry.CurrentVersion);
        var smoke = _env.Audit.OfType("rollout.step").First();
        Assert.Equal("SmokeTest", smoke.Details["kind"]!.GetValue<string>());
        Assert.True(smoke.Details["evidence"]!["built_in_passed"]!.GetValue<bool>());
    }

    [Fact]
    public async Task BlueGreen_FailureInRollbackWindow_InstantBackToWarmChampion()
    {
        await using var c = await _env.OpenAsync();
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "blue-green", "alice", "switch"));
        Assert.Equal(100, s.CandidatePercent);
        Assert.Equal(TestRegistry.Champion, c.Plan.Stable);
        Assert.True(c.Plan.MirrorCandidateToStable);

        // The champion is still loaded: serving it needs no load.
        var window = new float[200 * 6];
        var served = await _env.PredictAsync("device-1", window);
        Assert.Equal(TestRegistry.Candidate, served.ModelVersion);

        await Traffic.IntervalAsync(_env, c, 400, healthy: false);
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: false);
        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        var back = await _env.PredictAsync("device-1", window);
        Assert.Equal(TestRegistry.Champion, back.ModelVersion);
    }

    [Fact]
    public async Task Shadow_WithoutHandover_FinishesWithoutPromotion()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.BuiltInStrategies.ShadowPassesRequired = 2));
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "shadow", "alice", "evaluate"));
        Assert.Equal((0.0, 100.0), (s.CandidatePercent, s.ShadowPercent));
        var d = TrafficRouter.Route(c.Plan, "device-9");
        Assert.Equal((TestRegistry.Champion, TestRegistry.Candidate), (d.Version, d.ShadowVersion));
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        Assert.Equal(RolloutPhase.Succeeded, s.Phase);
        Assert.False(s.Promoted);
        Assert.Equal(TestRegistry.Champion, _env.Registry.CurrentVersion);
        Assert.Null(TrafficRouter.Route(c.Plan, "device-9").ShadowVersion);
    }

    [Fact]
    public async Task Shadow_ThenCanary_HandsOverAfterShadowPeriod()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options(o =>
        {
            o.BuiltInStrategies.ShadowPassesRequired = 1;
            o.BuiltInStrategies.ShadowThen = "canary";
        }));
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "shadow", "alice", "evaluate then ship"));
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        // The canary it hands over to shadows the champion's windows as well (BuiltInStrategyOptions.CanaryShadowPercent).
        Assert.Equal((10.0, 100.0), (s.CandidatePercent, s.ShadowPercent));
        while (s.Phase == RolloutPhase.Progressing)
        {
            s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        }

        Assert.Equal(RolloutPhase.Succeeded, s.Phase);
        Assert.True(s.Promoted);
    }

    [Fact]
    public async Task Rollback_AfterPromotion_RestoresChampionAsCurrent()
    {
        await using var c = await _env.OpenAsync();
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "recreate", "alice", "ship"));
        Assert.Equal(TestRegistry.Candidate, _env.Registry.CurrentVersion);
        var s = await c.ExecuteAsync(RolloutCommand.Rollback("oncall", "customer complaints") with { ExpectedPhase = RolloutPhase.Succeeded });
        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        Assert.Equal(TestRegistry.Champion, _env.Registry.CurrentVersion);
        var rb = Assert.Single(_env.Audit.OfType("rollout.rollback"));
        Assert.True(rb.Details["after_promotion"]!.GetValue<bool>());
        Assert.Equal("oncall", rb.Details["operator"]!.GetValue<string>());
    }

    [Fact]
    public async Task Start_TamperedCandidate_FailedAndRefusalAudited()
    {
        var model = _env.Registry.Get("1.1.0").ModelPath;
        var bytes = await File.ReadAllBytesAsync(model);
        bytes[^10] ^= 0x01;
        await File.WriteAllBytesAsync(model, bytes);
        await using var c = await _env.OpenAsync();
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        Assert.Equal(RolloutPhase.Failed, s.Phase);
        Assert.Contains("SHA-256", s.Message, StringComparison.Ordinal);
        var refused = Assert.Single(_env.Audit.OfType("registry.refused"));
        Assert.Equal("1.1.0", refused.Details["version"]!.GetValue<string>());
    }

    [Fact]
    public async Task Reopen_MidRollout_SameStateAndNoStepRepeated()
    {
        RolloutStatus before;
        await using (var c = await _env.OpenAsync())
        {
            await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
            await Traffic.IntervalAsync(_env, c, 400, healthy: true);
            before = (await Traffic.IntervalAsync(_env, c, 400, healthy: true))!;
        }

        await using (var c = await _env.OpenAsync())
        {
            var after = c.Status!;
            Assert.Equal((before.Phase, before.StepIndex, before.Revision, before.CandidatePercent), (after.Phase, after.StepIndex, after.Revision, after.CandidatePercent));
            Assert.Equal(50, c.Plan.CandidatePercent);
            var s = after;
            while (s.Phase == RolloutPhase.Progressing)
            {
                s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
            }

            Assert.Equal(RolloutPhase.Succeeded, s.Phase);
        }

        var steps = _env.Audit.OfType("rollout.step").Select(e => e.Details["step"]!.GetValue<int>()).ToList();
        Assert.Equal(steps.Distinct().Count(), steps.Count);
        var sequences = _env.Audit.Events.Where(e => e.Details["sequence"] is not null).Select(e => e.Details["sequence"]!.GetValue<long>()).ToList();
        Assert.Equal(Enumerable.Range(0, sequences.Count).Select(i => (long)i), sequences);
    }

    [Fact]
    public async Task PredictAsync_CanaryWithMirror_RecordsServedAndPairedObservations()
    {
        // Without the candidate's shadow runs on the champion's windows, its requests are the windows it served.
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.BuiltInStrategies.CanaryShadowPercent = 0));
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        var candidateStreams = await ServeRandomDevicesAsync(_env.Pipeline, 300);

        Assert.InRange(candidateStreams, 10, 60);
        _env.Time.Advance(TimeSpan.FromMinutes(1));
        var s = await c.ReconcileAsync();
        var verdict = _env.Audit.OfType("rollout.verdict").Last();
        var json = verdict.Details.ToJsonString();
        Assert.Contains("\"requests\":" + candidateStreams, json, StringComparison.Ordinal);
        Assert.NotNull(s);
    }

    [Fact]
    public async Task PredictAsync_CanaryWithDefaultShadow_TheCandidateAlsoScoresEveryWindowTheChampionServes()
    {
        // A queue large enough that the off-path budget (a quarter of it) holds all 300 copies: none can be shed.
        await using var pipeline = OpenPipeline(queueCapacity: 4 * 300);
        await using var c = await OpenControllerAsync(pipeline);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        Assert.Equal((10.0, 100.0), (s.CandidatePercent, s.ShadowPercent));
        var candidateStreams = await ServeRandomDevicesAsync(pipeline, 300);

        // Served answers come from both versions by weight; the shadow and mirror copies run after the answers.
        Assert.InRange(candidateStreams, 10, 60);
        var snapshot = await ObservedAsync(c, o => o.Candidate.Requests >= 300 && o.Paired.Pairs >= 300);

        // Every window has a candidate run (served or shadow) and a pair; the champion's requests are the ones it served.
        Assert.Equal((300L, 300L, 300L - candidateStreams), (snapshot.Candidate.Requests, snapshot.Paired.Pairs, snapshot.Stable.Requests));
    }

    [Fact]
    public async Task Status_AfterAnInterval_LastAnalysisHasEveryGateWithEvidenceAndCounts()
    {
        await using var c = await _env.OpenAsync();
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        Assert.Null(c.Status!.LastAnalysis);

        var s = await Traffic.IntervalAsync(_env, c, 400, healthy: false);

        var a = Assert.IsType<AnalysisResult>(s.LastAnalysis);
        Assert.Equal(GateVerdict.Fail, a.Verdict);
        Assert.Equal((400L, 400L), (a.StableRequests, a.CandidateRequests));
        var errorRate = Assert.Single(a.Gates, g => g.Gate == "error-rate");
        Assert.Equal(GateVerdict.Fail, errorRate.Verdict);
        Assert.Equal(400, errorRate.Evidence["requests"]);
        Assert.Contains("error-rate Fail", a.ToString(), StringComparison.Ordinal);

        // Persisted: a reader of the state file (har rollout status) sees the same analysis.
        var persisted = RolloutController.ReadStatus(Path.Combine(_env.Registry.Root, ".rollout"))!.LastAnalysis!;
        Assert.Equal(a.Verdict, persisted.Verdict);
        Assert.Equal(a.Gates.Select(g => (g.Gate, g.Verdict)), persisted.Gates.Select(g => (g.Gate, g.Verdict)));
        Assert.Equal(400, persisted.Gates.Single(g => g.Gate == "error-rate").Evidence["requests"]);
    }

    [Fact]
    public async Task PredictAsync_ShadowCopiesBeyondTheOffPathBudget_AreShedNotCountedAsTheCandidatesErrors()
    {
        // A queue of 8 windows leaves 2 to shadow and mirror copies (a quarter): a call of 4 windows on the champion is
        // shed from the candidate's shadow, one of 1 window is shadowed.
        await using var pipeline = OpenPipeline(queueCapacity: 8, out var metrics);
        await using var c = await OpenControllerAsync(pipeline);
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        var stream = Enumerable.Range(0, 100).Select(i => $"device-{i}").First(id => !TrafficRouter.Route(pipeline.Plan, id).IsCandidate);
        var rng = new Random(3);
        var windows = Enumerable.Range(0, 4 * pipeline.WindowValues).Select(_ => (float)((rng.NextDouble() * 2) - 1)).ToArray();

        await pipeline.PredictAsync(stream, windows, new Prediction[4]);
        await pipeline.PredictAsync(stream, windows.AsMemory(0, pipeline.WindowValues), new Prediction[1]);

        var snapshot = await ObservedAsync(c, o => o.Candidate.Requests >= 1);

        Assert.Equal((1L, 0L, 5L), (snapshot.Candidate.Requests, snapshot.Candidate.Errors, snapshot.Stable.Requests));
        var text = await Scrape(metrics);
        Assert.Contains("har_serving_shed_windows_total{version=\"1.1.0\",role=\"shadow\"} 4", text, StringComparison.Ordinal);
        Assert.DoesNotContain("har_serving_errors_total{version=\"1.1.0\"", text, StringComparison.Ordinal);
    }

    private ServingPipeline OpenPipeline(int queueCapacity) => OpenPipeline(queueCapacity, out _);

    private ServingPipeline OpenPipeline(int queueCapacity, out CollectorRegistry metrics)
    {
        var options = TestRegistry.ServingOptions();
        options.Model.QueueCapacity = queueCapacity;
        metrics = options.MetricsRegistry!;
        return ServingPipeline.Open(_env.Registry, options, timeProvider: _env.Time);
    }

    private Task<RolloutController> OpenControllerAsync(ServingPipeline pipeline) =>
        RolloutController.OpenAsync(_env.Registry, TestRegistry.Options(), pipeline, _env.Audit, DriftClassMixTest.Instance, null, _env.Time, CancellationToken.None);

    /// <summary>One random window from each of <paramref name="devices"/> devices; returns how many the candidate served.</summary>
    private static async Task<int> ServeRandomDevicesAsync(ServingPipeline pipeline, int devices)
    {
        var rng = new Random(5);
        var window = new float[pipeline.WindowValues];
        var predictions = new Prediction[1];
        var candidate = 0;
        for (var i = 0; i < devices; i++)
        {
            for (var k = 0; k < window.Length; k++)
            {
                window[k] = (float)((rng.NextDouble() * 2) - 1);
            }

            await pipeline.PredictAsync($"device-{i}", window, predictions);
            candidate += predictions[0].ModelVersion == TestRegistry.Candidate ? 1 : 0;
        }

        return candidate;
    }

    /// <summary>The observations once <paramref name="done"/> holds (shadow and mirror copies land after the answers), or after 60 s.</summary>
    private async Task<AnalysisSnapshot> ObservedAsync(RolloutController c, Func<AnalysisSnapshot, bool> done)
    {
        var labels = ModelCard.Load(TestRegistry.ChampionFile).Labels;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        AnalysisSnapshot snapshot;
        do
        {
            await Task.Delay(20);
            snapshot = c.Observations.TakeSnapshot(TestRegistry.Candidate, TestRegistry.Champion, _env.Time.GetUtcNow(), labels, reset: false);
        }
        while (!done(snapshot) && DateTime.UtcNow < deadline);

        return snapshot;
    }

    private static async Task<string> Scrape(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
