using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Har.Service.Tests.Security;

/// <summary>
/// Issue 17, point 2: anyone without a key could fill the audit log. The real service (keys from an
/// <c>ApiKeysFile</c>, as deployed) is flooded with 10,000 anonymous requests that are all refused
/// (401 without or with a wrong key, 404 unknown version or route, 405 wrong method, 429 over the rate
/// limit): the log may grow by at most 10 entries (periodic summaries), every refusal is counted in
/// <c>har_http_refused_total</c>, and the summaries account for every one of them.
/// </summary>
public sealed class AuditFloodTests
{
    private const int Requests = 10_000;
    private const int Parallelism = 16;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TenThousandAnonymousRefusals_AddAtMostTenAuditEntries_AllCountedInMetrics()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            [ServiceProcess.KeysInFile] = "",
            ["Har:Service:RateLimitPerSecond"] = "300",
            ["Har:Service:RateLimitBurst"] = "600",
            ["Har:Service:RefusalSummaryInterval"] = "00:00:20",
        }, cancellationToken: Ct);
        using var auditor = service.CreateClient(service.AuditorKey);
        using var anonymous = service.CreateClient();
        var before = (await ServiceQueries.AuditEntriesAsync(auditor, null, Ct)).Count;
        var refusedBefore = (await ServiceQueries.MetricAsync(anonymous, "har_http_refused_total", Ct)).Values.Sum();

        var longPath = "/v1/rollouts/" + new string('x', 4000);
        var statuses = new ConcurrentDictionary<int, int>();
        await Parallel.ForEachAsync(Enumerable.Range(0, Requests), new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = Ct }, async (i, ct) =>
        {
            using var request = (i % 9) switch
            {
                0 => new HttpRequestMessage(HttpMethod.Post, "/v1/rollouts/current/abort"),
                1 => new HttpRequestMessage(HttpMethod.Post, "/v1/models") { Content = new ByteArrayContent(new byte[512]) },
                2 => new HttpRequestMessage(HttpMethod.Get, "/v1/models/9.9.9"),
                3 => new HttpRequestMessage(HttpMethod.Post, "/v1/audit/events") { Content = new StringContent("{\"event_type\":\"forged\"}", Encoding.UTF8, "application/json") },
                4 => new HttpRequestMessage(HttpMethod.Get, "/v1/audit/events"),
                5 => new HttpRequestMessage(HttpMethod.Put, "/v1/predict") { Content = new StringContent("{}", Encoding.UTF8, "application/json") },
                6 => new HttpRequestMessage(HttpMethod.Post, longPath),
                7 => new HttpRequestMessage(HttpMethod.Delete, "/v1/models/1.0.0"),
                _ => WithKey(new HttpRequestMessage(HttpMethod.Post, "/v1/rollouts/current/promote"), "wrong-key-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(24, '0')),
            };
            using var response = await anonymous.SendAsync(request, ct);
            statuses.AddOrUpdate((int)response.StatusCode, 1, (_, n) => n + 1);
        });

        var summary = string.Join(", ", statuses.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}×{kv.Value}"));
        TestContext.Current.SendDiagnosticMessage($"anonymous flood: {summary}");
        Assert.Equal(Requests, statuses.Values.Sum());
        Assert.All(statuses.Keys, s => Assert.Contains(s, new[] { 401, 404, 405, 429 }));
        foreach (var expected in new[] { 401, 404, 405, 429 })
        {
            Assert.True(statuses.ContainsKey(expected), $"the flood produced no {expected}: {summary}");
        }

        // Every refusal is counted (the counter is incremented as the response completes: wait for the last ones).
        var counted = 0d;
        Assert.True(
            await ServiceQueries.EventuallyAsync(async () => (counted = (await ServiceQueries.MetricAsync(auditor, "har_http_refused_total", Ct)).Values.Sum() - refusedBefore) >= Requests, TimeSpan.FromSeconds(30), Ct),
            $"har_http_refused_total grew by {counted}; expected {Requests}");
        Assert.Equal(Requests, counted);

        // The summaries (one per interval) account for every refusal, under the client's address.
        long summarized = 0;
        Assert.True(
            await ServiceQueries.EventuallyAsync(
                async () =>
                {
                    summarized = 0;
                    foreach (var e in await ServiceQueries.AuditEntriesAsync(auditor, "http.refusals", Ct))
                    {
                        var details = e.GetProperty("record").GetProperty("action_details");
                        summarized += details.GetProperty("total").GetInt64();
                        Assert.Contains(details.GetProperty("top_clients").EnumerateArray(), c => c.GetProperty("client").GetString() == "address:127.0.0.1");
                    }

                    return summarized >= Requests;
                },
                TimeSpan.FromSeconds(90),
                Ct),
            $"the refusal summaries account for {summarized} of {Requests} refusals");
        Assert.Equal(Requests, summarized);

        var entries = await ServiceQueries.AuditEntriesAsync(auditor, null, Ct);
        var added = entries.Skip(before).ToList();
        var kinds = string.Join(", ", added.GroupBy(e => e.GetProperty("event_type").GetString()).Select(g => $"{g.Key}×{g.Count()}"));
        TestContext.Current.SendDiagnosticMessage($"audit entries added by the flood: {added.Count} ({kinds})");
        Assert.True(added.Count <= 10, $"{added.Count} audit entries were added by {Requests} refused requests ({kinds}); at most 10 are allowed");
        Assert.DoesNotContain(added, e => e.GetProperty("actor").GetString() == "anonymous");
        Assert.All(added, e => Assert.True(e.GetRawText().Length < 8192, $"an audit entry of {e.GetRawText().Length} characters"));
        Assert.False(service.HasExited);
    }

    [Fact]
    public async Task KeyedOperations_AreAudited_WithBoundedPath_RefusalsOfKeyedClientsAreNot()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct);
        using var operatorClient = service.CreateClient(service.OperatorKey);
        using var predictor = service.CreateClient(service.PredictorKey);
        using var auditor = service.CreateClient(service.AuditorKey);

        // Accepted for processing (authenticated, authorized): audited, even when the operation itself fails.
        var action = new string('a', 5000);
        using (var response = await operatorClient.PostAsync("/v1/rollouts/current/" + action, null, Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (var response = await operatorClient.PostAsync("/v1/rollouts/current/pause", null, Ct))
        {
            Assert.True((int)response.StatusCode is 409 or 400, $"pause without a rollout: {(int)response.StatusCode}");
        }

        // Refused by authorization (403), by routing (404, 405): counted, not audited one by one.
        for (var i = 0; i < 50; i++)
        {
            using var forbidden = await predictor.PostAsync("/v1/rollouts/current/abort", null, Ct);
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
            using var missing = await operatorClient.PostAsync("/v1/rollouts/current/abort/extra", null, Ct);
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        var operations = await ServiceQueries.AuditEntriesAsync(auditor, "http.operation", Ct);
        var ids = operations.Select(e => e.GetProperty("entity_id").GetString()!).ToList();
        Assert.Contains("POST /v1/rollouts/current/pause", ids);
        var longOne = Assert.Single(operations, e => e.GetProperty("entity_id").GetString()!.StartsWith("POST /v1/rollouts/current/aaa", StringComparison.Ordinal));
        var details = longOne.GetProperty("record").GetProperty("action_details");
        Assert.Equal("test-operator", longOne.GetProperty("actor").GetString());
        Assert.Equal(400, details.GetProperty("status").GetInt32());
        Assert.True(details.GetProperty("path").GetString()!.Length <= 256, "the audited path is not bounded");
        Assert.True(longOne.GetProperty("entity_id").GetString()!.Length <= 16 + 1 + 256, "the audited entity id is not bounded");
        Assert.DoesNotContain(operations, e => e.GetProperty("record").GetProperty("action_details").GetProperty("status").GetInt32() is 401 or 403 or 404 or 405 or 429);

        var refused = await ServiceQueries.MetricAsync(auditor, "har_http_refused_total", Ct);
        Assert.True(refused.GetValueOrDefault("{status=\"403\"}") >= 50, $"403s counted: {JsonSerializer.Serialize(refused)}");
        Assert.True(refused.GetValueOrDefault("{status=\"404\"}") >= 50, $"404s counted: {JsonSerializer.Serialize(refused)}");
    }

    private static HttpRequestMessage WithKey(HttpRequestMessage request, string key)
    {
        request.Headers.Add("X-Api-Key", key);
        return request;
    }
}
