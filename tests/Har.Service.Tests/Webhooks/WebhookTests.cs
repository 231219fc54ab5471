using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Har.Service.Tests.Webhooks;

/// <summary>
/// Issue 14 on the real service: HTTP webhooks configured in appsettings (Har:Service:Webhooks) against a real
/// Kestrel receiver — a pre-rollout veto holds the rollout, an allow lets it run, notifications arrive once per
/// subscribed phase with a valid HMAC-SHA256 signature, and every call is in the audit log.
/// </summary>
public sealed class WebhookTests
{
    private const string Secret = "webhook-secret-for-tests";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PreRolloutVetoHolds_ThenAllowRuns_NotificationsSignedOncePerPhase_EveryCallAudited()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var preCalls = 0;
        receiver.Answer = hook => hook == "pre" ? (Interlocked.Increment(ref preCalls) == 1 ? 403 : 200) : 200;
        receiver.Delay = hook => hook == "slow" ? TimeSpan.FromSeconds(30) : TimeSpan.Zero;
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:RolloutAnalysisInterval"] = "00:00:02",
            ["Har:Service:Webhooks:0:Name"] = "compliance",
            ["Har:Service:Webhooks:0:Type"] = "pre-rollout",
            ["Har:Service:Webhooks:0:Url"] = new Uri(receiver.BaseAddress, "/pre").ToString(),
            ["Har:Service:Webhooks:0:Secret"] = Secret,
            ["Har:Service:Webhooks:0:Retries"] = "0",
            ["Har:Service:Webhooks:1:Name"] = "chat",
            ["Har:Service:Webhooks:1:Type"] = "event",
            ["Har:Service:Webhooks:1:Url"] = new Uri(receiver.BaseAddress, "/event").ToString(),
            ["Har:Service:Webhooks:1:Secret"] = Secret,
            ["Har:Service:Webhooks:1:Events:0"] = "start",
            ["Har:Service:Webhooks:1:Events:1"] = "success",
            ["Har:Service:Webhooks:1:Events:2"] = "rollback",
            ["Har:Service:Webhooks:1:Metadata:channel"] = "#har-rollouts",
            ["Har:Service:Webhooks:2:Name"] = "slow",
            ["Har:Service:Webhooks:2:Type"] = "post-rollout",
            ["Har:Service:Webhooks:2:Url"] = new Uri(receiver.BaseAddress, "/slow").ToString(),
            ["Har:Service:Webhooks:2:Timeout"] = "00:00:00.5",
            ["Har:Service:Webhooks:2:Retries"] = "1",
            ["Har:Service:Webhooks:2:RetryBackoff"] = "00:00:00.05",
        }, cancellationToken: Ct);
        using var op = service.CreateClient(service.OperatorKey);
        using var auditor = service.CreateClient(service.AuditorKey);
        var candidate = Directory.GetFiles(service.ModelsDirectory, "*.onnx")
            .Select(f => Har.Inference.ModelCard.Load(f).ModelVersion)
            .OrderByDescending(v => Version.Parse(v.Split('-', '+')[0]))
            .First();

        using (var start = await op.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\",\"reason\":\"webhooks\"}}"), Ct))
        {
            var body = await start.Content.ReadAsStringAsync(Ct);
            Assert.True(start.StatusCode == HttpStatusCode.Accepted, body);
            using var json = JsonDocument.Parse(body);
            Assert.Equal("Pending", json.RootElement.GetProperty("phase").GetString());
            Assert.Contains("HTTP 403", json.RootElement.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Equal(0, json.RootElement.GetProperty("candidate_percent").GetDouble());
        }

        // Asked again after the analysis interval (2 s) by the service's own loop; generous bound for a loaded machine.
        var phase = "";
        for (var i = 0; i < 240 && phase != "Progressing"; i++)
        {
            await Task.Delay(250, Ct);
            using var json = JsonDocument.Parse(await op.GetStringAsync("/v1/rollouts/current", Ct));
            phase = json.RootElement.GetProperty("phase").GetString()!;
        }

        Assert.Equal("Progressing", phase);
        using (var rollback = await op.PostAsync("/v1/rollouts/rollback", ServiceFixture.Json("{\"reason\":\"webhook test\"}"), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, rollback.StatusCode);
        }

        // The rollback notification is sent by the controller before the command returns.
        var calls = receiver.Calls.Where(c => c.Hook != "slow").ToList();
        Assert.Equal(2, receiver.Calls.Count(c => c.Hook == "slow")); // a timed-out attempt, and one retry
        var pre = calls.Where(c => c.Hook == "pre").ToList();
        Assert.Equal([403, 200], pre.Select(c => c.Status));
        var events = calls.Where(c => c.Hook == "event").Select(c => (Call: c, Json: JsonDocument.Parse(c.Body).RootElement)).ToList();
        Assert.Equal(["start", "rollback"], events.Select(e => e.Json.GetProperty("event").GetString()));
        Assert.Equal(events.Count, events.Select(e => e.Call.IdempotencyKey).Distinct().Count());
        Assert.Equal("#har-rollouts", events[0].Json.GetProperty("metadata").GetProperty("channel").GetString());
        Assert.Equal("RolledBack", events[1].Json.GetProperty("phase").GetString());
        foreach (var call in calls)
        {
            var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret), call.Body));
            Assert.Equal(expected, call.Signature);
            Assert.StartsWith("application/json", call.ContentType, StringComparison.Ordinal);
        }

        // Every call and its answer is audited.
        var hooks = await ServiceQueries.AuditEntriesAsync(auditor, "rollout.hook", Ct);
        var details = hooks.Select(h => h.GetProperty("record").GetProperty("action_details")).ToList();
        var compliance = details.Where(d => d.GetProperty("hook").GetString() == "compliance").ToList();
        Assert.Equal([false, true], compliance.Select(d => d.GetProperty("allowed").GetBoolean()));
        Assert.Contains("HTTP 403", compliance[0].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains(details, d => d.GetProperty("hook").GetString() == "chat" && d.GetProperty("message").GetString()!.Contains("not sent: 'progressing'", StringComparison.Ordinal));
        var slow = Assert.Single(details, d => d.GetProperty("hook").GetString() == "slow");
        Assert.False(slow.GetProperty("allowed").GetBoolean());
        Assert.Contains("no answer within 0.5 s", slow.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("(attempt 2 of 2)", slow.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvalidWebhookConfiguration_ServiceRefusesToStartWithAClearMessage()
    {
        var (code, output) = await ServiceProcess.RunUntilExitAsync(new Dictionary<string, string>
        {
            ["Har:Service:Webhooks:0:Name"] = "x",
            ["Har:Service:Webhooks:0:Type"] = "pre-deploy",
            ["Har:Service:Webhooks:0:Url"] = "http://127.0.0.1:9/",
        }, Ct);
        Assert.Equal(2, code);
        Assert.Contains("pre-deploy", output, StringComparison.Ordinal);
        Assert.Contains("expected one of confirm-rollout, pre-rollout, rollout, confirm-promotion, post-rollout, event", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvalidWebhookConfiguration_RefusedBeforeTheOperatorKeyFileIsWritten()
    {
        // Found from outside: the operator key file was generated, then the webhook refused: a refused start wrote a key.
        var data = Directory.CreateTempSubdirectory("har-webhook-refused-").FullName;
        try
        {
            var (code, output) = await ServiceProcess.RunUntilExitAsync(new Dictionary<string, string>
            {
                ["Har:Service:DataDirectory"] = data,
                ["Har:Service:Webhooks:0:Name"] = "x",
                ["Har:Service:Webhooks:0:Type"] = "pre-deploy",
                ["Har:Service:Webhooks:0:Url"] = "http://127.0.0.1:9/",
            }, Ct);

            Assert.Equal(2, code);
            Assert.Contains("pre-deploy", output, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(data, "api-keys.json")), output);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
