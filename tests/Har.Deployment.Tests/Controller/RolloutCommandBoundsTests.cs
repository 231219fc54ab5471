using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Controller;

/// <summary>
/// What a command records is bounded before anything is applied. Found from outside: a 2 MB reason started a rollout
/// through the service, then every later record of it was refused by the audit log's record limit, so no command could
/// end it and the service stopped on every start after.
/// </summary>
public sealed class RolloutCommandBoundsTests : IDisposable
{
    private readonly TestRegistry _env = new();

    public void Dispose() => _env.Dispose();

    [Fact]
    public async Task AStartWithAnOverlongReason_IsRefusedBeforeAnythingChanges()
    {
        await using var c = await _env.OpenAsync();
        var reason = new string('r', RolloutCommand.MaxTextLength + 1);

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", reason)));
        Assert.Contains("reason has 8,193 characters; expected at most 8,192", ex.Message, StringComparison.Ordinal);
        Assert.Null(c.Status);
        Assert.Equal(0, c.Plan.CandidatePercent);
        Assert.Empty(_env.Audit.OfType("rollout.command"));

        // At the bound it is accepted.
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", new string('r', RolloutCommand.MaxTextLength)));
        Assert.Equal(RolloutPhase.Progressing, s.Phase);
    }

    [Fact]
    public async Task AnOverlongIncidentText_OrActor_IsRefused_AndTheRolloutCanStillBeEnded()
    {
        await using var c = await _env.OpenAsync();
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "ship"));
        var revision = c.Status!.Revision;

        var summary = await Assert.ThrowsAsync<ArgumentException>(() => c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Rollback, "alice", "bad") with { IncidentSummary = new string('s', 3_000_000) }));
        Assert.Contains("incident summary has 3,000,000 characters", summary.Message, StringComparison.Ordinal);
        var actor = await Assert.ThrowsAsync<ArgumentException>(() => c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Pause, "alice\r\nmallory", "x")));
        Assert.Contains("without control characters", actor.Message, StringComparison.Ordinal);
        Assert.Equal(revision, c.Status!.Revision);
        Assert.Equal(RolloutPhase.Progressing, c.Status.Phase);

        var s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Abort, "alice", "done"));
        Assert.Equal(RolloutPhase.Aborted, s.Phase);
    }

    [Theory]
    [InlineData("../../outside")]
    [InlineData("a/b")]
    [InlineData("")]
    [InlineData(".hidden")]
    public async Task ARolloutIdThatIsNotAPlainName_IsRefused(string id)
    {
        // The id names the rollout's archived state file (history/<id>.json).
        await using var c = await _env.OpenAsync();
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "ship") with { RolloutId = id }));
        Assert.Contains("is not a plain name", ex.Message, StringComparison.Ordinal);
        Assert.Null(c.Status);
    }
}
