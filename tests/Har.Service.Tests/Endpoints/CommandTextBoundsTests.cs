using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Found from outside: <c>POST /v1/rollouts</c> with a 2 MB reason answered 400 (the audit log's record limit) but had
/// started the rollout; every later command of it was refused the same way, nothing ended it, and the service stopped
/// (with exit code 0) on every start after. Texts are bounded before anything is applied.
/// </summary>
public sealed class CommandTextBoundsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OverlongReasonOrIncidentSummary_Is400_NothingStarts_AndTheRolloutCanStillBeEnded()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct);
        using var client = service.CreateClient(service.OperatorKey);
        var reason = new string('r', 2_000_000);
        using (var start = await client.PostAsync("/v1/rollouts", ServiceFixture.Json(JsonSerializer.Serialize(new { candidate = "1.1.0", strategy = "shadow", reason })), Ct))
        {
            var body = await start.Content.ReadAsStringAsync(Ct);
            Assert.True(start.StatusCode == HttpStatusCode.BadRequest, $"{(int)start.StatusCode} {body}");
            Assert.Contains("reason has 2,000,000 characters; expected at most 8,192", body, StringComparison.Ordinal);
            Assert.DoesNotContain("(Parameter '", body, StringComparison.Ordinal); // .NET's suffix, not the client's words
        }

        using (var none = await client.GetAsync("/v1/rollouts/current", Ct))
        {
            Assert.NotEqual(HttpStatusCode.OK, none.StatusCode); // no rollout was started
        }

        using (var start = await client.PostAsync("/v1/rollouts", ServiceFixture.Json("{\"candidate\":\"1.1.0\",\"strategy\":\"shadow\",\"reason\":\"bounded\"}"), Ct))
        {
            Assert.True(start.StatusCode == HttpStatusCode.Accepted, $"{(int)start.StatusCode} {await start.Content.ReadAsStringAsync(Ct)}");
        }

        using (var rollback = await client.PostAsync("/v1/rollouts/rollback", ServiceFixture.Json(JsonSerializer.Serialize(new { summary = new string('s', 3_000_000), reason = "r" })), Ct))
        {
            var body = await rollback.Content.ReadAsStringAsync(Ct);
            Assert.True(rollback.StatusCode == HttpStatusCode.BadRequest, $"{(int)rollback.StatusCode} {body}");
            Assert.Contains("incident summary has 3,000,000 characters", body, StringComparison.Ordinal);
        }

        using (var abort = await client.PostAsync("/v1/rollouts/current/abort", null, Ct))
        {
            Assert.True(abort.StatusCode == HttpStatusCode.OK, $"{(int)abort.StatusCode} {await abort.Content.ReadAsStringAsync(Ct)}");
        }

        using var status = JsonDocument.Parse(await client.GetStringAsync("/v1/rollouts/current", Ct));
        Assert.Equal("Aborted", status.RootElement.GetProperty("phase").GetString());
    }
}
