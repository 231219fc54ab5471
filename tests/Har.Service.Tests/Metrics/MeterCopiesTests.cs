using System.Globalization;

namespace Har.Service.Tests.Metrics;

/// <summary>
/// The Har packages export their prometheus-net collectors and, for OpenTelemetry, the same instruments on their
/// <c>System.Diagnostics.Metrics</c> meters. prometheus-net's meter adapter republishes every meter on <c>/metrics</c> by
/// default, so each Har metric appeared a second time, prefixed with its meter's name and typed as a gauge
/// (<c>har_inference_har_inference_requests_total</c>): 52 of 267 families after traffic, seen against a real
/// Prometheus. The service keeps the Har meters out of the adapter; other meters (ASP.NET Core's) stay.
/// </summary>
public sealed class MeterCopiesTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AfterPredictionsAndStreams_EachHarMetricAppearsOnce_UnderItsOwnName()
    {
        using var client = fixture.Service.CreateClient();
        var window = string.Join(',', Enumerable.Range(0, fixture.WindowValues).Select(i => (0.01 * (i % 17)).ToString(CultureInfo.InvariantCulture)));
        using (var predict = await client.PostAsync("/v1/predict", ServiceFixture.Json($"{{\"windows\":[[{window}]]}}"), Ct))
        {
            Assert.True(predict.IsSuccessStatusCode, await predict.Content.ReadAsStringAsync(Ct));
        }

        using (var stream = await client.PostAsync("/v1/streams/meter-copies/samples", ServiceFixture.Json($"{{\"samples\":[{window}]}}"), Ct))
        {
            Assert.True(stream.IsSuccessStatusCode, await stream.Content.ReadAsStringAsync(Ct));
        }

        // The adapter still runs (ASP.NET Core's meters are published); it adds an instrument's family once it has
        // recorded a measurement, which may be the scrape after the requests.
        List<string> families = [];
        for (var attempt = 0; attempt < 60; attempt++)
        {
            families = (await client.GetStringAsync("/metrics", Ct)).Split('\n')
                .Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal))
                .Select(l => l.Split(' ')[2])
                .ToList();
            if (families.Any(f => f.StartsWith("microsoft_aspnetcore_", StringComparison.Ordinal)))
            {
                break;
            }

            await Task.Delay(500, Ct);
        }

        Assert.Contains(families, f => f.StartsWith("microsoft_aspnetcore_", StringComparison.Ordinal));
        Assert.Contains("har_inference_requests_total", families);
        Assert.Contains("har_model_confidence", families);
        Assert.Contains("har_rollout_rollbacks_total", families);
        Assert.Contains("har_audit_appends_total", families);
        string[] copies = ["har_inference_har_", "har_drift_har_", "har_deployment_har_", "har_audit_har_", "private_internaldiagnostics_"];
        Assert.DoesNotContain(families, f => copies.Any(c => f.StartsWith(c, StringComparison.Ordinal)));
    }
}
