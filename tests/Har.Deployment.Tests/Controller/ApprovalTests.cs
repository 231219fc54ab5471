using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Controller;

/// <summary>Approval gates with several sign-offs on the real controller: distinct approvers, counted until enough.</summary>
public sealed class ApprovalTests : IDisposable
{
    private readonly TestRegistry _env = new();

    public void Dispose() => _env.Dispose();

    [Fact]
    public async Task BlueGreen_TwoApprovalsRequired_SameApproverTwiceRefused_SecondDistinctApproverSwitches()
    {
        var options = TestRegistry.Options(o =>
        {
            o.BuiltInStrategies.RequireApproval = true;
            o.RequiredApprovals = 2;
        });
        await using var c = await _env.OpenAsync(options);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "blue-green", "alice", "ship"));
        Assert.Equal(RolloutPhase.AwaitingApproval, s.Phase);

        s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "bob", "looks good"));
        Assert.Equal(RolloutPhase.AwaitingApproval, s.Phase);
        Assert.Contains("1 of 2", s.Message, StringComparison.Ordinal);
        Assert.Equal(0, c.Plan.CandidatePercent);

        var twice = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "bob", "again")));
        Assert.Contains("already approved", twice.Message, StringComparison.Ordinal);
        Assert.Equal(RolloutPhase.AwaitingApproval, c.Status!.Phase);

        s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "carol", "agreed"));
        Assert.Equal(RolloutPhase.Progressing, s.Phase);
        Assert.Equal(100, c.Plan.CandidatePercent);
        var approvals = _env.Audit.OfType("rollout.command").Where(e => e.Details["command"]!.GetValue<string>() == "Approve").ToList();
        Assert.Equal([true, false, true], approvals.Select(e => e.Details["accepted"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task RequiredApprovals_FixedAtStart_AReopenedControllerWithDefaultsStillNeedsTwo()
    {
        await using (var c = await _env.OpenAsync(TestRegistry.Options(o => (o.BuiltInStrategies.RequireApproval, o.RequiredApprovals) = (true, 2))))
        {
            await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "blue-green", "alice", "ship"));
            await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "bob", "ok"));
        }

        await using var reopened = await _env.OpenAsync(TestRegistry.Options());
        Assert.Equal(RolloutPhase.AwaitingApproval, reopened.Status!.Phase);
        Assert.Equal(RolloutPhase.Progressing, (await reopened.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "carol", "ok"))).Phase);
    }

    [Fact]
    public async Task Approve_ByTheStarter_RefusedInAnyCase_AndAudited_OthersStillApprove()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => (o.BuiltInStrategies.RequireApproval, o.RequiredApprovals) = (true, 2)));
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "blue-green", "alice", "ship"));

        foreach (var self in new[] { "alice", "ALICE" })
        {
            var refused = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, self, "my own change")));
            Assert.Contains("started this rollout and cannot approve it", refused.Message, StringComparison.Ordinal);
        }

        Assert.Equal(RolloutPhase.AwaitingApproval, c.Status!.Phase);
        Assert.Equal(0, c.Plan.CandidatePercent);
        var refusals = _env.Audit.OfType("rollout.command").Where(e => e.Details["command"]!.GetValue<string>() == "Approve").ToList();
        Assert.Equal(2, refusals.Count);
        Assert.All(refusals, e => Assert.False(e.Details["accepted"]!.GetValue<bool>()));
        Assert.All(refusals, e => Assert.Contains("started this rollout", e.Details["message"]!.GetValue<string>(), StringComparison.Ordinal));

        await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "bob", "ok"));
        Assert.Equal(RolloutPhase.Progressing, (await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "carol", "ok"))).Phase);
    }

    [Fact]
    public async Task Approve_SameApproverInAnotherCase_CountsOnce()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => (o.BuiltInStrategies.RequireApproval, o.RequiredApprovals) = (true, 2)));
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "blue-green", "alice", "ship"));
        await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "bob", "ok"));

        var twice = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "Bob", "again")));
        Assert.Contains("already approved", twice.Message, StringComparison.Ordinal);
        Assert.Equal(RolloutPhase.AwaitingApproval, c.Status!.Phase);
        Assert.Contains("1 of 2", c.Status.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StarterMayApprove_FixedAtStart_LetsTheStarterApprove()
    {
        await using (var c = await _env.OpenAsync(TestRegistry.Options(o => (o.BuiltInStrategies.RequireApproval, o.StarterMayApprove) = (true, true))))
        {
            await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "blue-green", "alice", "ship"));
        }

        // Reopened with the defaults: the rollout keeps the setting it started with.
        await using var reopened = await _env.OpenAsync(TestRegistry.Options());
        Assert.Equal(RolloutPhase.Progressing, (await reopened.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "alice", "ok"))).Phase);
    }
}
