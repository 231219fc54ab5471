using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Controller;

/// <summary>Flagger's webhook semantics on the real controller: confirm-rollout holds, pre-rollout holds up to the failure threshold, rollout hooks are a gate, event hooks hear every transition.</summary>
public sealed class RolloutHookPointTests : IDisposable
{
    private readonly TestRegistry _env = new();

    public void Dispose() => _env.Dispose();

    [Fact]
    public async Task PreRollout_RefusesThenAllows_HeldThenRuns()
    {
        var answers = new Queue<bool>([false, true]);
        var hook = new DelegateRolloutHook("compliance", RolloutHookPoint.PreRollout, (_, _) => ValueTask.FromResult(answers.Dequeue() ? RolloutHookResult.Allow("signed") : RolloutHookResult.Deny("not signed yet")));
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.Hooks.Add(hook)));

        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        Assert.Equal(RolloutPhase.Pending, s.Phase);
        Assert.Contains("held: pre-rollout hook refused (1 of 2", s.Message, StringComparison.Ordinal);
        Assert.Equal(0, c.Plan.CandidatePercent);
        Assert.Equal(_env.Time.GetUtcNow() + TimeSpan.FromMinutes(1), c.NextDueAt());

        // Not asked again before the interval.
        Assert.Equal(RolloutPhase.Pending, (await c.ReconcileAsync())!.Phase);
        Assert.Single(answers);

        _env.Time.Advance(TimeSpan.FromMinutes(1));
        s = (await c.ReconcileAsync())!;
        Assert.Equal(RolloutPhase.Progressing, s.Phase);
        Assert.Equal(10, c.Plan.CandidatePercent);
        Assert.Equal([false, true], _env.Audit.OfType("rollout.hook").Select(e => e.Details["allowed"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task PreRollout_RefusesUpToTheThreshold_Fails()
    {
        var hook = new DelegateRolloutHook("compliance", RolloutHookPoint.PreRollout, (_, _) => ValueTask.FromResult(RolloutHookResult.Deny("no")));
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.Hooks.Add(hook)));
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        _env.Time.Advance(TimeSpan.FromMinutes(1));
        var s = (await c.ReconcileAsync())!;
        Assert.Equal(RolloutPhase.Failed, s.Phase);
        Assert.Contains("refused 2 time(s) (threshold 2)", s.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConfirmRollout_HoldsWithoutLimit_UntilAllowed()
    {
        var confirmed = false;
        var hook = new DelegateRolloutHook("go-ahead", RolloutHookPoint.ConfirmRollout, (_, _) => ValueTask.FromResult(confirmed ? RolloutHookResult.Allow() : RolloutHookResult.Deny("waiting for the on-call's go")));
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.Hooks.Add(hook)));
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        for (var i = 0; i < 5; i++)
        {
            _env.Time.Advance(TimeSpan.FromMinutes(1));
            s = (await c.ReconcileAsync())!;
            Assert.Equal(RolloutPhase.Pending, s.Phase);
            Assert.Contains("confirm-rollout", s.Message, StringComparison.Ordinal);
        }

        confirmed = true;
        _env.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(RolloutPhase.Progressing, (await c.ReconcileAsync())!.Phase);
    }

    [Fact]
    public async Task RolloutHook_Refuses_CountsAsFailingIntervals_RolledBack()
    {
        var hook = new DelegateRolloutHook("load-test", RolloutHookPoint.Rollout, (_, _) => ValueTask.FromResult(RolloutHookResult.Deny("p99 above SLO under load")));
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.Hooks.Add(hook)));
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        var s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        Assert.Equal((RolloutPhase.Progressing, 1), (s.Phase, s.Failures));
        Assert.Contains(s.LastAnalysis!.Gates, g => g.Gate == "rollout-hook" && g.Verdict == GateVerdict.Fail);
        s = await Traffic.IntervalAsync(_env, c, 400, healthy: true);
        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
    }

    [Fact]
    public async Task EventHook_HearsStartSuccessAndEveryTransitionOnce()
    {
        var phases = new List<RolloutPhase>();
        var hook = new DelegateRolloutHook("notify", RolloutHookPoint.Event, (ctx, _) =>
        {
            phases.Add(ctx.Status.Phase);
            return ValueTask.FromResult(RolloutHookResult.Deny("chat is down")); // informational: changes nothing
        });
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.Hooks.Add(hook)));
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "recreate", "alice", "ship"));
        Assert.Equal(RolloutPhase.Succeeded, s.Phase);
        Assert.Equal([RolloutPhase.Pending, RolloutPhase.Progressing, RolloutPhase.Promoting, RolloutPhase.Succeeded], phases);
    }
}
