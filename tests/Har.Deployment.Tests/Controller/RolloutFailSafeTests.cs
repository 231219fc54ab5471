using Har.Deployment.Tests.Support;
using Har.Inference;
using Har.Testing;

namespace Har.Deployment.Tests.Controller;

/// <summary>
/// A candidate the pipeline cannot serve never reaches traffic and never takes the controller down: refused
/// before any step, or — when it fails later (load, smoke test, promotion, a restart over its persisted
/// rollout) — the rollout ends Failed on the champion with the reason audited.
/// </summary>
public sealed class RolloutFailSafeTests : IDisposable
{
    private readonly TestRegistry _env = new();

    public void Dispose() => _env.Dispose();

    /// <summary>The candidate fixture with a self-consistent card that asks for 128-sample windows (stride 64), as version 1.2.0.</summary>
    internal static string Make128WindowModel(string directory)
    {
        var bytes = OnnxModelEditor.Rewrite(
            File.ReadAllBytes(TestRegistry.CandidateFile),
            new Dictionary<string, string> { ["har.window_length"] = "128", ["har.stride"] = "64", ["har.model_version"] = "1.2.0" },
            inputTimeDimension: 128);
        var path = Path.Combine(directory, "tiny-logits-128-1.2.0.onnx");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Rewriter_128WindowModel_LoadsAndPredictsAsARealModel()
    {
        var path = Make128WindowModel(_env.Root);
        using var model = HarModel.Load(path, new HarModelOptions { EnableMetrics = false });

        Assert.Equal((128, 64, "1.2.0"), (model.Card.WindowLength, model.Card.Stride, model.Card.ModelVersion));
        var p = model.Predict(new float[128 * 6]);
        Assert.InRange(p.Confidence, 0f, 1f);
    }

    [Fact]
    public async Task StateOfANewerSchema_IsRefusedAtOpen_NotHalfRead()
    {
        // Found from outside (a downgrade): older releases read what they knew of a newer release's state and ignored
        // the rest without a word. This release refuses a schema above its own.
        await using (var c = await _env.OpenAsync())
        {
            await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        }

        var path = Path.Combine(_env.Registry.Root, ".rollout", "rollout.json");
        var state = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var schema = state.First(p => p.Key.Equals("schema", StringComparison.OrdinalIgnoreCase)).Key;
        state[schema] = 2;
        File.WriteAllText(path, state.ToJsonString());

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => _env.OpenAsync());

        Assert.Contains("has schema 2, written by a newer release; this release reads schema 1", error.Message, StringComparison.Ordinal);
        Assert.Equal(state.ToJsonString(), File.ReadAllText(path)); // untouched
    }

    [Fact]
    public async Task Commands_AuditLogNotWritable_RefusedBeforeAnySideEffect()
    {
        await using var c = await _env.OpenAsync();
        var started = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        var persisted = File.ReadAllText(Path.Combine(_env.Registry.Root, ".rollout", "rollout.json"));
        var events = _env.Audit.Events.Count;

        _env.Audit.IsWritable = false;
        foreach (var command in new[]
        {
            RolloutCommand.Create(RolloutCommandKind.Pause, "alice", "hold"),
            RolloutCommand.Create(RolloutCommandKind.Abort, "alice", "stop"),
            RolloutCommand.Create(RolloutCommandKind.Promote, "alice", "ship"),
        })
        {
            var ex = await Assert.ThrowsAsync<Har.Audit.AuditLogUnavailableException>(() => c.ExecuteAsync(command));
            Assert.Contains("Nothing was changed", ex.Message, StringComparison.Ordinal);
        }

        // Nothing took effect: not in memory, not in the persisted state, not in traffic, not in the log.
        Assert.Equal(started.Phase, c.Status!.Phase);
        Assert.Equal(started.Revision, c.Status.Revision);
        Assert.Equal(persisted, File.ReadAllText(Path.Combine(_env.Registry.Root, ".rollout", "rollout.json")));
        Assert.Equal(events, _env.Audit.Events.Count);

        // Writable again: the same command goes through.
        _env.Audit.IsWritable = true;
        Assert.Equal(RolloutPhase.Aborted, (await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Abort, "alice", "stop"))).Phase);
    }

    [Fact]
    public async Task Start_CandidateWithAnotherWindowLength_RefusedBeforeAnyStepAndAudited()
    {
        _env.Registry.Register(Make128WindowModel(_env.Root), new ModelRegistrationOptions { Deployer = "tester" });
        await using var c = await _env.OpenAsync();

        var ex = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Start("1.2.0", "canary", "alice", "try")));

        Assert.Contains("windows of 128 frames", ex.Message, StringComparison.Ordinal);
        Assert.Contains("windows of 200 frames", ex.Message, StringComparison.Ordinal);
        Assert.Null(c.Status);
        Assert.Equal(TrafficPlan.Single(TestRegistry.Champion).ToString(), c.Plan.ToString());
        var refusal = _env.Audit.OfType("rollout.command").Single();
        Assert.Equal("refused", refusal.Details["outcome"]!.GetValue<string>());
        Assert.Contains("128", refusal.Details["message"]!.GetValue<string>(), StringComparison.Ordinal);

        // The champion keeps serving, and a servable candidate can still be rolled out.
        Assert.Equal(TestRegistry.Champion, (await _env.PredictAsync("d", new float[200 * 6])).ModelVersion);
        Assert.Equal(RolloutPhase.Progressing, (await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"))).Phase);
    }

    [Fact]
    public async Task Start_CandidateWithAnotherSetOfActivities_RefusedForAnAnalysedStrategy_AcceptedForRecreate()
    {
        // The candidate fixture with one activity renamed (RUNNING for LIE_TO_STAND) and its labels listed in reverse
        // order: the order alone is mapped by name, the set differs.
        var bytes = File.ReadAllBytes(TestRegistry.CandidateFile);
        var labels = System.Text.Json.JsonSerializer.Deserialize<string[]>(OnnxModelEditor.ReadCard(bytes)["har.labels"])!;
        var renamed = labels.Select(l => l == "LIE_TO_STAND" ? "RUNNING" : l).Reverse().ToArray();
        var path = Path.Combine(_env.Root, "running-1.2.0.onnx");
        File.WriteAllBytes(path, OnnxModelEditor.WithKey(OnnxModelEditor.WithKey(bytes, "har.labels", System.Text.Json.JsonSerializer.Serialize(renamed)), "har.model_version", "1.2.0"));
        _env.Registry.Register(path, new ModelRegistrationOptions { Deployer = "tester" });
        await using var c = await _env.OpenAsync();

        foreach (var strategy in new[] { "canary", "blue-green", "shadow" })
        {
            var ex = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Start("1.2.0", strategy, "alice", "try")));
            Assert.Contains("predicts other activities than champion 1.0.0 (the candidate lacks LIE_TO_STAND; the champion lacks RUNNING)", ex.Message, StringComparison.Ordinal);
            Assert.Contains($"a {strategy} rollout's analysis compares", ex.Message, StringComparison.Ordinal);
            Assert.Null(c.Status);
        }

        Assert.Equal(3, _env.Audit.OfType("rollout.command").Count(e => e.Details["outcome"]!.GetValue<string>() == "refused"));

        // The same labels in another order are not a different set: refused by nothing.
        var reordered = Path.Combine(_env.Root, "reordered-1.3.0.onnx");
        File.WriteAllBytes(reordered, OnnxModelEditor.WithKey(OnnxModelEditor.WithKey(bytes, "har.labels", System.Text.Json.JsonSerializer.Serialize(labels.Reverse().ToArray())), "har.model_version", "1.3.0"));
        _env.Registry.Register(reordered, new ModelRegistrationOptions { Deployer = "tester" });
        Assert.Equal(RolloutPhase.Progressing, (await c.ExecuteAsync(RolloutCommand.Start("1.3.0", "canary", "alice", "try"))).Phase);
        await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Abort, "alice", "next"));

        // Recreate compares nothing: the new set of activities is rolled out.
        Assert.NotEqual(RolloutPhase.Failed, (await c.ExecuteAsync(RolloutCommand.Start("1.2.0", "recreate", "alice", "new activity"))).Phase);
    }

    [Fact]
    public async Task Start_CandidateWhoseWarmUpNeverFinishes_EndsFailedOnTheChampion_AndTheControllerTakesTheNextCommand()
    {
        // A valid card on a graph that counts a Loop to 10^15 before its output (found from outside: POST /v1/rollouts
        // never answered, abort, rollback and backups waited behind it, SIGTERM did not stop the process, and a
        // restart resumed the same load). The run timeout stops its warm-up.
        var path = Path.Combine(_env.Root, "slow-1.2.0.onnx");
        File.WriteAllBytes(path, OnnxModelEditor.WithKey(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "slow-loop-1.0.0.onnx")), "har.model_version", "1.2.0"));
        _env.Registry.Register(path, new ModelRegistrationOptions { Deployer = "tester" });
        var serving = TestRegistry.ServingOptions();
        serving.Model.RunTimeout = TimeSpan.FromSeconds(1);
        _env.UsePipeline(serving);
        await using var c = await _env.OpenAsync();

        var status = await c.ExecuteAsync(RolloutCommand.Start("1.2.0", "canary", "alice", "try")).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(RolloutPhase.Failed, status.Phase);
        Assert.Contains("did not finish its warm-up", status.Message, StringComparison.Ordinal);
        Assert.Contains("HarModelOptions.RunTimeout (00:00:01)", status.Message, StringComparison.Ordinal);
        Assert.Equal(TestRegistry.Champion, (await _env.PredictAsync("d", new float[200 * 6])).ModelVersion);
        Assert.Equal(RolloutPhase.Progressing, (await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "next")).WaitAsync(TimeSpan.FromMinutes(3))).Phase);
    }

    [Fact]
    public async Task Open_PersistedRolloutToAnUnservableCandidate_EndsFailedOnTheChampion()
    {
        // The state an older build left behind: a canary at 10 % to a 128-window candidate (it crashed every restart).
        _env.Registry.Register(Make128WindowModel(_env.Root), new ModelRegistrationOptions { Deployer = "tester" });
        var store = new RolloutStateStore(Path.Combine(_env.Registry.Root, ".rollout"));
        store.Save(new RolloutState
        {
            RolloutId = "rollout-128",
            Strategy = "canary",
            Champion = TestRegistry.Champion,
            Candidate = "1.2.0",
            Phase = RolloutPhase.Progressing,
            Steps = [RolloutState.StepRecord.From(RolloutStep.SetWeight(10)), RolloutState.StepRecord.From(RolloutStep.Analyze(TimeSpan.FromMinutes(1), 1))],
            StepIndex = 1,
            CandidateBuckets = 1000,
            Salt = TrafficPlan.SaltFor("rollout-128"),
            Revision = 3,
            StartedBy = "alice",
            StartedAt = _env.Time.GetUtcNow(),
            UpdatedAt = _env.Time.GetUtcNow(),
            StepStartedAt = _env.Time.GetUtcNow(),
        });

        await using var c = await _env.OpenAsync();

        Assert.Equal(RolloutPhase.Failed, c.Status!.Phase);
        Assert.Contains("windows of 128 frames", c.Status.Message, StringComparison.Ordinal);
        Assert.Equal(TrafficPlan.Single(TestRegistry.Champion, c.Status.Revision).ToString(), c.Plan.ToString());
        Assert.Equal(TestRegistry.Champion, (await _env.PredictAsync("device-1", new float[200 * 6])).ModelVersion);
        var failed = _env.Audit.OfType("rollout.transition").Last();
        Assert.Equal("Failed", failed.Details["to"]!.GetValue<string>());

        // A second restart over the Failed state is quiet.
        await using var again = await _env.OpenAsync();
        Assert.Equal(RolloutPhase.Failed, again.Status!.Phase);
        Assert.Null(await again.ReconcileAsync() is { Phase: not RolloutPhase.Failed } s ? s : null);
    }

    [Fact]
    public async Task Promotion_RegistryRefusesTheCandidate_FailedAndChampionServes()
    {
        await using var c = await _env.OpenAsync();
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));

        // The candidate's file is swapped after it was loaded: the registry's check at promotion refuses it.
        var candidateFile = _env.Registry.Get("1.1.0").ModelPath;
        File.WriteAllBytes(candidateFile, File.ReadAllBytes(TestRegistry.ChampionFile));
        var s = await c.ExecuteAsync(RolloutCommand.Promote("bob", "ship it"));

        Assert.Equal(RolloutPhase.Failed, s.Phase);
        Assert.Contains("promotion of 1.1.0 refused", s.Message, StringComparison.Ordinal);
        Assert.Equal(TestRegistry.Champion, _env.Registry.CurrentVersion);
        Assert.Equal(TrafficPlan.Single(TestRegistry.Champion, s.Revision).ToString(), c.Plan.ToString());
    }

    [Fact]
    public async Task RunAsync_ReconcileThrows_LoopSurvivesAndShowsTheFault()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.FaultRetryInterval = TimeSpan.FromSeconds(7)));
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));

        // The state folder becomes a file: persisting the next transition fails (as a full or read-only disk would).
        var stateDir = Path.Combine(_env.Registry.Root, ".rollout");
        var moved = stateDir + ".moved";
        Directory.Move(stateDir, moved);
        File.WriteAllText(stateDir, "not a folder");
        using var cts = new CancellationTokenSource();
        var loop = c.RunAsync(cts.Token);
        Traffic.Feed(c, 400, healthy: true);
        _env.Time.Advance(TimeSpan.FromMinutes(1));

        await WaitUntil(() => c.Fault is not null);
        Assert.False(loop.IsCompleted);
        Assert.Equal(10, c.Plan.CandidatePercent);

        // The disk recovers: the next retry (on the controller's clock) clears the fault.
        File.Delete(stateDir);
        Directory.Move(moved, stateDir);
        await WaitUntil(() => c.Fault is null, () => _env.Time.Advance(TimeSpan.FromSeconds(1)));
        await cts.CancelAsync();
        await loop;
    }

    private static async Task WaitUntil(Func<bool> condition, Action? tick = null)
    {
        // Real threads run the loop: poll with a generous bound (no timing assertion); the fake clock moves only when told.
        for (var i = 0; i < 600 && !condition(); i++)
        {
            tick?.Invoke();
            await Task.Delay(50);
        }

        Assert.True(condition());
    }
}
