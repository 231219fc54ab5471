using System.Globalization;
using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Inference;

namespace Har.Deployment.Tests.Controller;

/// <summary>
/// The compliance gate on the candidate's recorded validation metrics, and the deployment record completed at
/// promotion (a new audit entry referencing the registration's record, which stays as it was written).
/// </summary>
public sealed class DeploymentCompletionTests : IDisposable
{
    private readonly TestRegistry _env = new();

    public void Dispose() => _env.Dispose();

    private static ModelCardMetrics CandidateMetrics => ModelCard.Load(TestRegistry.CandidateFile).Metrics;

    [Fact]
    public async Task ComplianceGate_AccuracyBelowMinimum_StartRefusedWithBothNumbers_AuditedAndNothingChanged()
    {
        var recorded = CandidateMetrics.Accuracy;
        var minimum = Math.Min(1, recorded + 0.01);
        await using var c = await _env.OpenAsync(TestRegistry.Options(o => o.MinCandidateAccuracy = minimum));
        var refused = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "ship")));

        Assert.Contains("compliance gate", refused.Message, StringComparison.Ordinal);
        Assert.Contains(recorded.ToString("0.####", CultureInfo.InvariantCulture), refused.Message, StringComparison.Ordinal);
        Assert.Contains(minimum.ToString("0.####", CultureInfo.InvariantCulture), refused.Message, StringComparison.Ordinal);
        Assert.Null(c.Status);
        Assert.Equal(TestRegistry.Champion, _env.Registry.CurrentVersion);
        var audited = Assert.Single(_env.Audit.OfType("rollout.command"));
        Assert.False(audited.Details["accepted"]!.GetValue<bool>());
        Assert.Equal("refused", audited.Details["outcome"]!.GetValue<string>());
    }

    [Fact]
    public async Task ComplianceGate_MacroF1BelowMinimum_Refused_MinimumsMetStarts()
    {
        var f1 = CandidateMetrics.MacroF1;
        await using (var c = await _env.OpenAsync(TestRegistry.Options(o => o.MinCandidateMacroF1 = Math.Min(1, f1 + 0.01))))
        {
            var refused = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "ship")));
            Assert.Contains("macro-F1", refused.Message, StringComparison.Ordinal);
        }

        await using var met = await _env.OpenAsync(TestRegistry.Options(o => (o.MinCandidateAccuracy, o.MinCandidateMacroF1) = (CandidateMetrics.Accuracy, f1)));
        Assert.Equal(RolloutPhase.Progressing, (await met.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "ship"))).Phase);
    }

    [Fact]
    public void ComplianceGate_MinimumOutsideZeroToOne_RefusedByValidation()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TestRegistry.Options(o => o.MinCandidateAccuracy = 1.5).Validate());
    }

    [Fact]
    public async Task Promotion_AppendsTheCompletedDeploymentRecord_ReferencingTheRegistration_WhichStaysPending()
    {
        var registered = _env.Registry.ReadRecord(TestRegistry.Candidate);
        Assert.Equal("pending", registered.Deployer.ApprovedBy);
        Assert.False(registered.Validation.PassedSmokeTest);

        await using var c = await _env.OpenAsync(TestRegistry.Options(o => (o.BuiltInStrategies.RequireApproval, o.RequiredApprovals) = (true, 2)));
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "blue-green", "alice", "ship"));
        await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "bob", "ok"));
        await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Approve, "carol", "ok"));
        var promotedAt = _env.Time.GetUtcNow();
        var s = await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Promote, "dave", "ship it"));
        Assert.True(s.Promoted);

        var completed = Assert.Single(_env.Audit.OfType("deployment.completed"));
        var d = completed.Details;
        Assert.Equal(TestRegistry.Candidate, d["version"]!.GetValue<string>());
        Assert.Equal(registered.DeploymentId, d["completes"]!["deployment_id"]!.GetValue<string>());
        Assert.Equal(["bob", "carol"], d["approved_by"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal("dave", d["promoted_by"]!.GetValue<string>());
        Assert.True(d["passed_smoke_test"]!.GetValue<bool>());
        Assert.Equal(1, d["replicas"]!.GetValue<int>());

        // The completed record is a deployment record of the reference schema, with the same identity.
        var record = (DeploymentRecord)AuditRecord.Parse(AuditRecordKind.Deployment, System.Text.Encoding.UTF8.GetBytes(d["record"]!.ToJsonString()));
        Assert.Equal(registered.DeploymentId, record.DeploymentId);
        Assert.Equal(registered.Model.Sha256, record.Model.Sha256);
        Assert.Equal("bob, carol", record.Deployer.ApprovedBy);
        Assert.True(record.Validation.PassedSmokeTest);
        Assert.Equal(1, record.Environment.Replicas);
        Assert.Equal(promotedAt, record.Timestamp);

        // Records stay immutable: the registration's file is unchanged and still verifies.
        Assert.Equal("pending", _env.Registry.ReadRecord(TestRegistry.Candidate).Deployer.ApprovedBy);
        Assert.True(_env.Registry.Verify(TestRegistry.Candidate).IsValid);
    }

    [Fact]
    public async Task RolledBack_NoCompletedDeploymentRecord()
    {
        await using var c = await _env.OpenAsync();
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        await c.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Rollback, "bob", "bad"));
        Assert.Empty(_env.Audit.OfType("deployment.completed"));
    }
}
