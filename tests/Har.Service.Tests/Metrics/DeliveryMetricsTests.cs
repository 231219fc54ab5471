using System.Net;

namespace Har.Service.Tests.Metrics;

/// <summary>
/// Issue 14 (delivery metrics): deployment frequency, lead time, change failure rate and time to restore move on
/// <c>/metrics</c> as rollouts promote, roll back and abort on the real service; they are derived from the audit log,
/// so a restart on the same data shows the same history.
/// </summary>
public sealed class DeliveryMetricsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task DeliveryMetrics_MoveWithPromotionRollbackAndAbort_AndSurviveARestart()
    {
        var shared = Directory.CreateTempSubdirectory("har-delivery-").FullName;
        var settings = new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "", ["Har:Service:DataDirectory"] = Path.Combine(shared, "data") };
        try
        {
            Dictionary<string, double> before;
            await using (var service = await ServiceProcess.StartAsync(settings, cancellationToken: Ct))
            {
                using var operatorClient = service.CreateClient(service.OperatorKey);
                using var scraper = service.CreateClient();
                var candidate = Directory.GetFiles(service.ModelsDirectory, "*.onnx")
                    .Select(f => Har.Inference.ModelCard.Load(f).ModelVersion)
                    .OrderByDescending(v => Version.Parse(v.Split('-', '+')[0]))
                    .First();

                // Nothing delivered yet, but every series is there (0, once the log has been read), so rates and ratios have data.
                var start = await EventuallyAsync(scraper, m => m.ContainsKey("har_delivery_rollouts_total{outcome=\"succeeded\"}"));
                Assert.Equal(0, start["har_delivery_deployments_total"]);
                Assert.Equal(0, start["har_delivery_changes_total"]);
                Assert.Equal(0, start["har_delivery_change_failures_total"]);
                Assert.Equal(0, start["har_delivery_rollouts_total{outcome=\"succeeded\"}"]);
                Assert.Equal(0, start["har_delivery_lead_time_seconds_count"]);

                // A promotion: one deployment, one change, a lead time (registration at start → promotion).
                await PostAsync(operatorClient, "/v1/rollouts", $"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\",\"reason\":\"delivery metrics\"}}", HttpStatusCode.Accepted);
                await PostAsync(operatorClient, "/v1/rollouts/current/promote", "{\"reason\":\"delivery metrics\"}", HttpStatusCode.OK);
                var promoted = await EventuallyAsync(scraper, m => m["har_delivery_deployments_total"] == 1);
                Assert.Equal(1, promoted["har_delivery_changes_total"]);
                Assert.Equal(0, promoted["har_delivery_change_failures_total"]);
                Assert.Equal(1, promoted["har_delivery_rollouts_total{outcome=\"succeeded\"}"]);
                Assert.Equal(1, promoted["har_delivery_lead_time_seconds_count"]);
                Assert.True(promoted["har_delivery_lead_time_seconds_sum"] > 0, "the lead time is the time from registration to promotion");

                // The promoted change is rolled back: a change failure (the same change, not a new one) and a time to restore.
                await PostAsync(operatorClient, "/v1/rollouts/current/rollback", "{\"reason\":\"delivery metrics: bad in production\"}", HttpStatusCode.OK);
                var rolledBack = await EventuallyAsync(scraper, m => m["har_delivery_change_failures_total"] == 1);
                Assert.Equal(1, rolledBack["har_delivery_changes_total"]);
                Assert.Equal(1, rolledBack["har_delivery_deployments_total"]);
                Assert.Equal(1, rolledBack["har_delivery_rollouts_total{outcome=\"rolled_back\"}"]);
                Assert.Equal(1, rolledBack["har_delivery_time_to_restore_seconds_count"]);
                Assert.True(rolledBack["har_delivery_time_to_restore_seconds_sum"] >= 0);

                // An aborted rollout is a withdrawn change: counted by outcome, not as a change or a failure.
                await PostAsync(operatorClient, "/v1/rollouts", $"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\",\"reason\":\"delivery metrics 2\"}}", HttpStatusCode.Accepted);
                await PostAsync(operatorClient, "/v1/rollouts/current/abort", "{\"reason\":\"delivery metrics 2\"}", HttpStatusCode.OK);
                before = await EventuallyAsync(scraper, m => m["har_delivery_rollouts_total{outcome=\"aborted\"}"] == 1);
                Assert.Equal(1, before["har_delivery_changes_total"]);
                Assert.Equal(1, before["har_delivery_change_failures_total"]);
            }

            // A restart reads the same history from the audit log.
            await using (var restarted = await ServiceProcess.StartAsync(settings, cancellationToken: Ct))
            {
                using var scraper = restarted.CreateClient();
                var after = await EventuallyAsync(scraper, m => m.GetValueOrDefault("har_delivery_rollouts_total{outcome=\"aborted\"}") == 1);
                Assert.Equal(before, after);
            }
        }
        finally
        {
            Directory.Delete(shared, recursive: true);
        }
    }

    private static async Task PostAsync(HttpClient client, string path, string json, HttpStatusCode expected)
    {
        using var response = await client.PostAsync(path, ServiceFixture.Json(json), Ct);
        Assert.True(response.StatusCode == expected, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
    }

    /// <summary>Every <c>har_delivery_*</c> sample: name with labels → value.</summary>
    private static async Task<Dictionary<string, double>> DeliveryAsync(HttpClient client)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var name in new[]
        {
            "har_delivery_deployments_total", "har_delivery_changes_total", "har_delivery_change_failures_total", "har_delivery_rollouts_total",
            "har_delivery_lead_time_seconds_count", "har_delivery_lead_time_seconds_sum", "har_delivery_time_to_restore_seconds_count", "har_delivery_time_to_restore_seconds_sum",
        })
        {
            foreach (var (labels, value) in await ServiceQueries.MetricAsync(client, name, Ct))
            {
                samples[name + labels] = value;
            }
        }

        return samples;
    }

    /// <summary>Scrapes until <paramref name="condition"/> holds (the metrics follow the log every 2 s; bounded at 60 s).</summary>
    private static async Task<Dictionary<string, double>> EventuallyAsync(HttpClient client, Func<Dictionary<string, double>, bool> condition)
    {
        Dictionary<string, double> last = [];
        var held = await ServiceQueries.EventuallyAsync(
            async () =>
            {
                last = await DeliveryAsync(client);
                return condition(last);
            },
            TimeSpan.FromSeconds(60),
            Ct);
        Assert.True(held, "the delivery metrics did not reach the expected values: " + string.Join(", ", last.Select(kv => $"{kv.Key}={kv.Value}")));
        return last;
    }
}
