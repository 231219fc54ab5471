using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Security;

/// <summary>
/// The model and rollout reads open to predictor keys and anonymous clients do not name the API keys of the operators
/// who acted. Found from outside: <c>GET /v1/rollouts</c> answered anonymous clients with "started_by": "local-admin"
/// and "rolled back by local-admin: …", telling an attacker whose key to go after. Operators and auditors see the names.
/// </summary>
public sealed class ActorNamesTests
{
    private const string Hidden = "(hidden: an operator or auditor key sees the name)";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RolloutAndModelReads_HideTheOperatorsKeyName_FromAnonymousAndPredictorReaders_NotFromAuditors()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct);
        using var operatorClient = service.CreateClient(service.OperatorKey);
        using (var started = await operatorClient.PostAsync("/v1/rollouts", ServiceFixture.Json("{\"candidate\":\"1.1.0\",\"strategy\":\"canary\",\"reason\":\"more accurate\"}"), Ct))
        {
            Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync(Ct));
        }

        string incident;
        using (var rolledBack = await operatorClient.PostAsync("/v1/rollouts/current/rollback", ServiceFixture.Json("{\"reason\":\"checking the names\"}"), Ct))
        {
            var body = await rolledBack.Content.ReadAsStringAsync(Ct);
            Assert.True(rolledBack.IsSuccessStatusCode, body);
            incident = JsonDocument.Parse(body).RootElement.GetProperty("incident_id").GetString()!;
        }

        string[] reads = ["/v1/rollouts", "/v1/rollouts/current", "/v1/models", "/v1/models/1.1.0", $"/v1/incidents/{incident}"];
        using var auditor = service.CreateClient(service.AuditorKey);
        var named = await auditor.GetStringAsync("/v1/rollouts", Ct);
        Assert.Contains("\"started_by\":\"test-operator\"", named, StringComparison.Ordinal); // the name is there to hide

        foreach (var (reader, who) in new[] { (service.CreateClient(), "anonymous"), (service.CreateClient(service.PredictorKey), "predictor") })
        {
            using (reader)
            {
                foreach (var read in reads)
                {
                    using var response = await reader.GetAsync(read, Ct);
                    var body = await response.Content.ReadAsStringAsync(Ct);
                    Assert.True(response.StatusCode == HttpStatusCode.OK, $"{who} {read}: {(int)response.StatusCode} {body}");
                    Assert.DoesNotContain("test-operator", body, StringComparison.Ordinal);
                }

                using var history = JsonDocument.Parse(await reader.GetStringAsync("/v1/rollouts", Ct));
                var rollout = history.RootElement.GetProperty("rollouts")[0];
                Assert.Equal(Hidden, rollout.GetProperty("started_by").GetString());
                Assert.Equal(Hidden, rollout.GetProperty("rollback").GetProperty("actor").GetString());
                Assert.Contains($"rolled back by {Hidden}: checking the names", rollout.GetProperty("rollback").GetProperty("reason").GetString(), StringComparison.Ordinal);
                Assert.Equal("1.1.0", rollout.GetProperty("candidate").GetString()); // everything else as it was
            }
        }
    }
}
