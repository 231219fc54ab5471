using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Har.Inference;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Issue 14 (approvals and compliance) on the real service: two distinct approvers other than the starter, the same
/// approver counted once; a backup before the rollout; the deployment record completed at promotion and shown by
/// <c>GET /v1/models/{version}</c>; the compliance gate on the candidate's recorded metrics refusing a start.
/// </summary>
public sealed class ApprovalComplianceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TwoApprovals_StarterAndRepeatRefused_BackupBeforeRollout_CompletedRecordAfterPromotion()
    {
        var bobKey = "approver-bob-key-" + Guid.NewGuid().ToString("N");
        var carolKey = "approver-carol-key-" + Guid.NewGuid().ToString("N");
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:RequireApproval"] = "true",
            ["Har:Service:RequiredApprovals"] = "2",
            ["Har:Service:Backup:BeforeRollout"] = "true",
            ["Har:Service:ApiKeys:3:Name"] = "bob",
            ["Har:Service:ApiKeys:3:Key"] = bobKey,
            ["Har:Service:ApiKeys:3:Roles:0"] = "operator",
            ["Har:Service:ApiKeys:4:Name"] = "carol",
            ["Har:Service:ApiKeys:4:Key"] = carolKey,
            ["Har:Service:ApiKeys:4:Roles:0"] = "operator",
        }, cancellationToken: Ct);
        using var starter = service.CreateClient(service.OperatorKey);
        using var bob = service.CreateClient(bobKey);
        using var carol = service.CreateClient(carolKey);
        var candidate = Candidate(service.ModelsDirectory);

        using (var start = await starter.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\",\"strategy\":\"blue-green\",\"reason\":\"approvals test\"}}"), Ct))
        {
            Assert.True(start.StatusCode == HttpStatusCode.Accepted, await start.Content.ReadAsStringAsync(Ct));
            var backupId = Assert.Single(start.Headers.GetValues("Har-Backup-Id"));
            var listed = JsonNode.Parse(await starter.GetStringAsync("/v1/backups", Ct))!["backups"]!.AsArray();
            Assert.Equal(backupId, Assert.Single(listed)!["backup_id"]!.GetValue<string>());
        }

        Assert.True(await ServiceQueries.EventuallyAsync(async () => await PhaseAsync(starter) == "AwaitingApproval", TimeSpan.FromSeconds(60), Ct), "the rollout never reached its approval step");

        var self = await ApproveAsync(starter, HttpStatusCode.Conflict);
        Assert.Contains("started this rollout and cannot approve it", self, StringComparison.Ordinal);
        Assert.Contains("(the setting Har:Service:StarterMayApprove allows it)", self, StringComparison.Ordinal); // not the library's option
        Assert.Contains("1 of 2", await ApproveAsync(bob, HttpStatusCode.OK), StringComparison.Ordinal);
        Assert.Contains("already approved", await ApproveAsync(bob, HttpStatusCode.Conflict), StringComparison.Ordinal);
        Assert.Equal("AwaitingApproval", await PhaseAsync(starter));
        await ApproveAsync(carol, HttpStatusCode.OK);
        Assert.Equal("Progressing", await PhaseAsync(starter));

        using (var promote = await starter.PostAsync("/v1/rollouts/current/promote", ServiceFixture.Json("{\"reason\":\"approved by two\"}"), Ct))
        {
            Assert.True(promote.StatusCode == HttpStatusCode.OK, await promote.Content.ReadAsStringAsync(Ct));
        }

        // The registration's record stays as written; the completed one is a new audit entry, shown with the version.
        var model = JsonNode.Parse(await starter.GetStringAsync($"/v1/models/{candidate}", Ct))!;
        Assert.True(model["current"]!.GetValue<bool>());
        var deployment = model["deployment"]!["details"]!;
        Assert.Equal(["bob", "carol"], deployment["approved_by"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal("test-operator", deployment["started_by"]!.GetValue<string>());
        Assert.Equal("test-operator", deployment["promoted_by"]!.GetValue<string>());
        Assert.True(deployment["passed_smoke_test"]!.GetValue<bool>());
        Assert.Equal(1, deployment["replicas"]!.GetValue<int>());
        Assert.Equal("bob, carol", deployment["record"]!["deployer"]!["approved_by"]!.GetValue<string>());
        Assert.True(deployment["record"]!["validation"]!["passed_smoke_test"]!.GetValue<bool>());
        Assert.Equal(model["model"]!["deployment_id"]!.GetValue<string>(), deployment["completes"]!["deployment_id"]!.GetValue<string>());
        // The reference to the registration's record: the SHA-256 of the deployment_record.json it left in the registry.
        var recordFile = Path.Combine(service.DataDirectory, "registry", "v" + candidate, "deployment_record.json");
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(recordFile, Ct))), deployment["completes"]!["record_sha256"]!.GetValue<string>());
        Assert.Contains("\"approved_by\": \"pending\"", await File.ReadAllTextAsync(recordFile, Ct), StringComparison.Ordinal);
        using var auditor = service.CreateClient(service.AuditorKey);
        Assert.Equal(model["deployment"]!["audit_index"]!.GetValue<long>(), (await ServiceQueries.AuditEntriesAsync(auditor, "deployment.completed", Ct)).Single().GetProperty("index").GetInt64());
    }

    [Fact]
    public async Task ComplianceGate_CandidateBelowMinimumAccuracy_StartRefusedWithTheNumbers()
    {
        // The models the service seeds (the bundled ones, or the fixtures when they are absent): the newest is the candidate.
        var files = ServiceProcess.HasBundledModels
            ? Directory.GetFiles(ServiceProcess.BundledModelsDirectory, "*.onnx")
            : [Path.Combine(ServiceProcess.FixturesDirectory, "tiny-probs-1.0.0.onnx"), Path.Combine(ServiceProcess.FixturesDirectory, "tiny-logits-1.1.0.onnx")];
        var card = files.Select(ModelCard.Load).OrderByDescending(c => Version.Parse(c.ModelVersion.Split('-', '+')[0])).First();
        var (candidate, accuracy) = (card.ModelVersion, card.Metrics.Accuracy);
        Assert.True(accuracy < 1, $"the candidate records accuracy {accuracy}; the gate needs a higher minimum to refuse it");
        var minimum = Math.Min(1, Math.Round(accuracy + 0.01, 2));

        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { ["Har:Service:MinCandidateAccuracy"] = minimum.ToString(CultureInfo.InvariantCulture) }, cancellationToken: Ct);
        using var op = service.CreateClient(service.OperatorKey);
        using var start = await op.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\",\"reason\":\"gate test\"}}"), Ct);
        var body = await start.Content.ReadAsStringAsync(Ct);
        Assert.True(start.StatusCode == HttpStatusCode.Conflict, body);
        Assert.Contains("compliance gate", body, StringComparison.Ordinal);
        Assert.Contains("(Har:Service:MinCandidate", body, StringComparison.Ordinal);
        Assert.Contains(accuracy.ToString("0.####", CultureInfo.InvariantCulture), body, StringComparison.Ordinal);
        Assert.Contains(minimum.ToString("0.####", CultureInfo.InvariantCulture), body, StringComparison.Ordinal);
        using var current = await op.GetAsync("/v1/rollouts/current", Ct);
        Assert.Equal(HttpStatusCode.NotFound, current.StatusCode);
    }

    private static string Candidate(string modelsDirectory) => Directory.GetFiles(modelsDirectory, "*.onnx")
        .Select(f => ModelCard.Load(f).ModelVersion)
        .OrderByDescending(v => Version.Parse(v.Split('-', '+')[0]))
        .First();

    private static async Task<string> PhaseAsync(HttpClient client) =>
        JsonNode.Parse(await client.GetStringAsync("/v1/rollouts/current", Ct))!["phase"]!.GetValue<string>();

    private static async Task<string> ApproveAsync(HttpClient client, HttpStatusCode expected)
    {
        using var response = await client.PostAsync("/v1/rollouts/current/approve", ServiceFixture.Json("{\"reason\":\"reviewed\"}"), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == expected, $"approve: {(int)response.StatusCode} {body}");
        return body;
    }
}
