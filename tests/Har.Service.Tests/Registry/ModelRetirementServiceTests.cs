using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Registry;

/// <summary>
/// Retiring a version through the real service (a process on 127.0.0.1, its own data folder): the operator's decision
/// answered with the version's listing, refused for the version that serves, enforced on a rollout start, read from the
/// audit log again after a SIGKILL and a restart, and taken back.
/// </summary>
public sealed class ModelRetirementServiceTests : IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly string _scratch = Directory.CreateTempSubdirectory("har-retire-e2e-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_scratch, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task Retire_RefusesTheServingVersion_BlocksARollout_SurvivesAKill_AndIsTakenBack()
    {
        var data = Path.Combine(_scratch, "data");
        var audit = Path.Combine(data, "audit");
        var models = ReplicaProcess.ModelsDirectory(_scratch);
        long auditIndex;
        await using (var service = ReplicaProcess.Start(data, audit, models))
        {
            Assert.True(await service.WaitReadyAsync(TimeSpan.FromSeconds(120)), service.Output);
            using var client = service.CreateClient();
            using var anonymous = service.CreateClient(asOperator: false);

            using (var unauthorized = await anonymous.PostAsync(new Uri("/v1/models/1.1.0/retire", UriKind.Relative), Json("{\"reason\": \"x\"}"), Ct))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);
            }

            using (var current = await client.PostAsync(new Uri("/v1/models/1.0.0/retire", UriKind.Relative), Json("{\"reason\": \"old\"}"), Ct))
            {
                var problem = await current.Content.ReadAsStringAsync(Ct);
                Assert.Equal(HttpStatusCode.Conflict, current.StatusCode);
                Assert.Contains("it is the current version", problem, StringComparison.Ordinal);
            }

            using (var blank = await client.PostAsync(new Uri("/v1/models/1.1.0/retire", UriKind.Relative), Json("{\"reason\": \" \"}"), Ct))
            {
                Assert.Equal(HttpStatusCode.BadRequest, blank.StatusCode);
                Assert.Contains("'reason' is blank", await blank.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
            }

            using (var unknown = await client.PostAsync(new Uri("/v1/models/9.9.9/retire", UriKind.Relative), Json("{\"reason\": \"x\"}"), Ct))
            {
                Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            }

            using (var retired = await client.PostAsync(new Uri("/v1/models/v1.1.0/retire", UriKind.Relative), Json("{\"reason\": \"labels permuted in the export\"}"), Ct))
            {
                var body = await retired.Content.ReadAsStringAsync(Ct);
                Assert.Equal(HttpStatusCode.OK, retired.StatusCode);
                using var doc = JsonDocument.Parse(body);
                Assert.Equal("1.1.0", doc.RootElement.GetProperty("version").GetString());
                var r = doc.RootElement.GetProperty("retired");
                Assert.Equal(("labels permuted in the export", "test-operator"), (r.GetProperty("reason").GetString(), r.GetProperty("by").GetString()));
                auditIndex = r.GetProperty("audit_index").GetInt64();
            }

            // The list marks it, and filters by it.
            using (var onlyRetired = JsonDocument.Parse(await client.GetStringAsync("/v1/models?retired=true", Ct)))
            {
                Assert.Equal(["1.1.0"], onlyRetired.RootElement.GetProperty("versions").EnumerateArray().Select(v => v.GetProperty("version").GetString()));
            }

            using (var notRetired = JsonDocument.Parse(await client.GetStringAsync("/v1/models?retired=false", Ct)))
            {
                var versions = notRetired.RootElement.GetProperty("versions").EnumerateArray().ToList();
                Assert.Contains(versions, v => v.GetProperty("version").GetString() == "1.0.0");
                Assert.DoesNotContain(versions, v => v.GetProperty("version").GetString() == "1.1.0");
                Assert.All(versions, v => Assert.Equal(JsonValueKind.Null, v.GetProperty("retired").ValueKind));
            }

            using (var start = await client.PostAsync(new Uri("/v1/rollouts", UriKind.Relative), Json("{\"candidate\": \"1.1.0\", \"strategy\": \"canary\", \"reason\": \"try\"}"), Ct))
            {
                var problem = await start.Content.ReadAsStringAsync(Ct);
                Assert.Equal(HttpStatusCode.Conflict, start.StatusCode);
                Assert.Contains("Version 1.1.0 was retired by test-operator", problem, StringComparison.Ordinal);
                Assert.Contains("labels permuted in the export", problem, StringComparison.Ordinal);
            }
        }

        // Disposed with a SIGKILL (ReplicaProcess kills the process tree); after it, the restarted service reads the retirement from its audit log.
        await using (var restarted = ReplicaProcess.Start(data, audit, models))
        {
            Assert.True(await restarted.WaitReadyAsync(TimeSpan.FromSeconds(120)), restarted.Output);
            using var client = restarted.CreateClient();
            using (var detail = JsonDocument.Parse(await client.GetStringAsync("/v1/models/1.1.0", Ct)))
            {
                Assert.Equal(auditIndex, detail.RootElement.GetProperty("model").GetProperty("retired").GetProperty("audit_index").GetInt64());
            }

            using (var reinstated = await client.PostAsync(new Uri("/v1/models/1.1.0/reinstate", UriKind.Relative), Json("{\"reason\": \"export fixed and checked\"}"), Ct))
            {
                var body = await reinstated.Content.ReadAsStringAsync(Ct);
                Assert.Equal(HttpStatusCode.OK, reinstated.StatusCode);
                using var doc = JsonDocument.Parse(body);
                Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("retired").ValueKind);
            }

            using var start = await client.PostAsync(new Uri("/v1/rollouts", UriKind.Relative), Json("{\"candidate\": \"1.1.0\", \"strategy\": \"canary\", \"reason\": \"again\"}"), Ct);
            Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        }
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
