using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Testing;

namespace Har.Deployment.Tests.Registry;

/// <summary>
/// Retiring a version (<see cref="ModelRegistry.Retire"/>): an audited decision, kept in the audit log, that no rollout
/// starts with the version and no rollback is sent to it; refused while the version serves or a rollout needs it. Real
/// audit log, real controller and ONNX sessions on the committed fixture models.
/// </summary>
public sealed class RetirementTests : IDisposable
{
    private readonly AuditedRegistry _env = new();

    public void Dispose() => _env.Dispose();

    [Fact]
    public async Task RetiredCandidate_StartRefusedAndAudited_ReinstatedCandidate_Starts()
    {
        var retirement = _env.Registry.Retire("v1.1.0", "permuted labels in the training export", "carol");

        Assert.Equal(("1.1.0", "carol", "permuted labels in the training export", _env.Time.GetUtcNow()), (retirement.Version, retirement.Actor, retirement.Reason, retirement.RetiredAt));
        var entry = Assert.Single(_env.Log.Query(new AuditQuery { EventType = "registry.retired", PageSize = 10 }).Entries);
        Assert.Equal(entry.Index, retirement.AuditIndex);
        Assert.Equal("tiny-logits@1.1.0", entry.EntityId);
        Assert.Equal(AuditSeverity.Warning, ((AuditEvent)entry.Record).Severity);
        Assert.Equal(_env.Registry.Get("1.1.0").Sha256, ((AuditEvent)entry.Record).ActionDetails.GetProperty("sha256").GetString());

        await using (var pipeline = Open())
        await using (var c = await RolloutController.OpenAsync(_env.Registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            var refused = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try")));
            Assert.Contains("Version 1.1.0 was retired by carol", refused.Message, StringComparison.Ordinal);
            Assert.Contains("permuted labels in the training export", refused.Message, StringComparison.Ordinal);
            Assert.Contains($"audit entry {retirement.AuditIndex}", refused.Message, StringComparison.Ordinal);
            Assert.Null(c.Status);
            var command = Assert.Single(_env.Events("rollout.command"));
            Assert.Equal("refused", command.ActionDetails.GetProperty("outcome").GetString());

            Assert.True(_env.Registry.Reinstate("1.1.0", "the export was fixed upstream; labels checked", "carol"));
            Assert.Null(_env.Registry.GetRetirement("1.1.0"));
            var reinstated = Assert.Single(_env.Events("registry.reinstated"));
            Assert.Equal(retirement.AuditIndex, reinstated.ActionDetails.GetProperty("retired_index").GetInt64());

            var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try again"));
            Assert.Equal("1.1.0", s.Candidate);
            Assert.False(s.Phase.IsTerminal());
        }

        // Not retired: reinstating records nothing.
        Assert.False(_env.Registry.Reinstate("1.1.0", "again", "carol"));
        Assert.Single(_env.Events("registry.reinstated"));
    }

    [Fact]
    public void Retire_Twice_ReturnsTheRetirementInForce_WritesOneEntry()
    {
        var first = _env.Registry.Retire("1.1.0", "too slow on watches", "carol");
        _env.Time.Advance(TimeSpan.FromMinutes(5));
        var second = _env.Registry.Retire("1.1.0", "another reason", "dave");

        Assert.Equal((first.AuditIndex, first.Actor, first.Reason), (second.AuditIndex, second.Actor, second.Reason));
        Assert.Single(_env.Events("registry.retired"));
    }

    [Fact]
    public void CurrentVersion_IsNotRetired_NothingWritten()
    {
        var count = _env.Log.Count;

        var refused = Assert.Throws<ModelInUseException>(() => _env.Registry.Retire("1.0.0", "old", "carol"));

        Assert.Contains("1.0.0 was not retired: it is the current version", refused.Message, StringComparison.Ordinal);
        Assert.Equal(count, _env.Log.Count);
        Assert.Null(_env.Registry.GetRetirement("1.0.0"));
    }

    [Fact]
    public async Task RunningRollout_ItsCandidateIsNotRetired_UntilTheRolloutEnds()
    {
        await using var pipeline = Open();
        await using var c = await RolloutController.OpenAsync(_env.Registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));

        var refused = Assert.Throws<ModelInUseException>(() => _env.Registry.Retire("1.1.0", "bad", "carol"));
        Assert.Contains($"rollout {s.RolloutId} ({s.Phase}) has it as its candidate", refused.Message, StringComparison.Ordinal);

        s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Abort, "alice", "wrong build"));
        Assert.Equal(RolloutPhase.Aborted, s.Phase);
        Assert.Equal("1.1.0", _env.Registry.Retire("1.1.0", "wrong build", "carol").Version);
    }

    [Fact]
    public async Task PromotedRollout_ThePreviousChampionIsNotRetired_WhileARollbackCouldRestoreIt()
    {
        await using var pipeline = Open();
        await using var c = await RolloutController.OpenAsync(_env.Registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time);
        var s = await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "recreate", "alice", "hotfix"));
        Assert.Equal(RolloutPhase.Succeeded, s.Phase);

        var refused = Assert.Throws<ModelInUseException>(() => _env.Registry.Retire("1.0.0", "superseded", "carol"));

        Assert.Contains($"rollout {s.RolloutId} promoted 1.1.0 over it", refused.Message, StringComparison.Ordinal);
        s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Rollback, "oncall", "pager fired"));
        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        Assert.Equal("1.0.0", _env.Registry.CurrentVersion);
    }

    [Fact]
    public async Task RetiredVersion_IsNotARollbackTarget()
    {
        RegisterThird();
        _env.Registry.Retire("1.1.0", "drops the stairs classes", "carol");
        await using var pipeline = Open();
        await using var c = await RolloutController.OpenAsync(_env.Registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time);
        await c.ExecuteAsync(RolloutCommand.Start("1.2.0", "canary", "alice", "try"));

        var refused = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Rollback, "oncall", "pager") with { RollbackTo = "1.1.0" }));

        Assert.Contains("Rollback target 1.1.0 was retired by carol", refused.Message, StringComparison.Ordinal);
        Assert.Contains("drops the stairs classes", refused.Message, StringComparison.Ordinal);
        Assert.Equal("1.2.0", c.Status!.Candidate);
        Assert.False(c.Status.Phase.IsTerminal());
    }

    [Fact]
    public async Task WithoutAController_TheStateFileDecides()
    {
        // A command-line retirement opens the registry alone: the rollout's state file in the registry still protects its versions.
        string rolloutId;
        await using (var pipeline = Open())
        await using (var c = await RolloutController.OpenAsync(_env.Registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time))
        {
            rolloutId = (await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"))).RolloutId;
        }

        _env.Reopen();
        var refused = Assert.Throws<ModelInUseException>(() => _env.Registry.Retire("1.1.0", "bad", "carol"));
        Assert.Contains($"rollout {rolloutId}", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StartingInThisProcess_TheCandidateIsNotRetired_UntilTheStartEnds()
    {
        Assert.Null(_env.Registry.TryBeginStart("1.1.0"));

        Assert.Throws<ModelInUseException>(() => _env.Registry.Retire("1.1.0", "bad", "carol"));
        _env.Registry.EndStart();
        var retirement = _env.Registry.Retire("1.1.0", "bad", "carol");
        Assert.Equal(retirement.AuditIndex, _env.Registry.TryBeginStart("1.1.0")!.AuditIndex);
    }

    [Fact]
    public void Retirement_IsReadFromTheLog_AfterARestart_AndByAnotherRegistrySharingIt()
    {
        var other = new ModelRegistry(Path.Combine(_env.Root, "replica-b"), _env.Log, _env.Time);
        Assert.Null(other.GetRetirement("1.1.0")); // read once, before the retirement

        var retirement = _env.Registry.Retire("1.1.0", "crashes on 25 Hz watches", "carol");

        Assert.Equal(retirement.AuditIndex, other.GetRetirement("1.1.0")?.AuditIndex); // brought up to date from the log
        Assert.Equal(["1.1.0"], other.GetRetirements().Keys);
        _env.Reopen();
        var reread = _env.Registry.GetRetirement("v1.1.0");
        Assert.Equal((retirement.AuditIndex, "carol", "crashes on 25 Hz watches", retirement.RetiredAt), (reread!.AuditIndex, reread.Actor, reread.Reason, reread.RetiredAt));
        Assert.True(_env.Registry.Verify("1.1.0").IsValid); // its files stay, verified as before
        Assert.Contains(_env.Registry.List(), m => m.Version == "1.1.0");
    }

    [Fact]
    public void BadRequests_SayWhatWasWrong_NothingWritten()
    {
        var count = _env.Log.Count;

        Assert.Contains("is blank", Assert.Throws<ArgumentException>(() => _env.Registry.Retire("1.1.0", "  ", "carol")).Message, StringComparison.Ordinal);
        Assert.Contains("at most 2,048 characters without control characters", Assert.Throws<ArgumentException>(() => _env.Registry.Retire("1.1.0", new string('x', 2049), "carol")).Message, StringComparison.Ordinal);
        Assert.Contains("control characters", Assert.Throws<ArgumentException>(() => _env.Registry.Retire("1.1.0", "bad", "car\u0007ol")).Message, StringComparison.Ordinal);
        Assert.Contains("has 8 characters and control characters", Assert.Throws<ArgumentException>(() => _env.Registry.Retire("1.1.0", "bad\u0000news", "carol")).Message, StringComparison.Ordinal);
        Assert.Throws<KeyNotFoundException>(() => _env.Registry.Retire("9.9.9", "bad", "carol"));
        Assert.Throws<ArgumentException>(() => _env.Registry.Retire("latest", "bad", "carol"));
        Assert.Equal(count, _env.Log.Count);

        var bare = new ModelRegistry(_env.RegistryRoot);
        Assert.Contains("opened without one", Assert.Throws<InvalidOperationException>(() => bare.Retire("1.1.0", "bad", "carol")).Message, StringComparison.Ordinal);
        Assert.Null(bare.GetRetirement("1.1.0"));
    }

    private ServingPipeline Open() => ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);

    private void RegisterThird()
    {
        var path = Path.Combine(_env.Root, "tiny-logits-1.2.0.onnx");
        File.WriteAllBytes(path, OnnxModelEditor.WithKey(File.ReadAllBytes(TestRegistry.CandidateFile), "har.model_version", "1.2.0"));
        _env.Registry.Register(path, new ModelRegistrationOptions { Deployer = "alice" });
    }
}
