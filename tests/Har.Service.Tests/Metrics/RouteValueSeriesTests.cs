using System.Globalization;

namespace Har.Service.Tests.Metrics;

/// <summary>
/// prometheus-net labels its HTTP series with the route values named <c>controller</c> and <c>action</c> (MVC's), and
/// <c>POST /v1/rollouts/current/{action}</c> has one: every action a client invented, anonymous and answered 401, added
/// 21 series (50 requests added 1,071 lines to <c>/metrics</c>), without bound. The HTTP series are labelled by status
/// code, method and route pattern only, so no value from a request's path reaches <c>/metrics</c>.
/// </summary>
public sealed class RouteValueSeriesTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ServiceProcess Service => fixture.Service;

    [Fact]
    public async Task InventedRouteValues_AppearNowhereInMetrics_SeriesStayPerRoutePattern()
    {
        using var anonymous = Service.CreateClient();
        using var operatorClient = Service.CreateClient(Service.OperatorKey);
        var before = (await ServiceQueries.MetricAsync(anonymous, "http_requests_received_total", Ct)).Keys.ToHashSet(StringComparer.Ordinal);
        var invented = Enumerable.Range(0, 50).Select(i => string.Create(CultureInfo.InvariantCulture, $"zq{i}x{Guid.NewGuid():N}")).ToArray();
        foreach (var value in invented)
        {
            (await anonymous.PostAsync($"/v1/rollouts/current/{value}", null, Ct)).Dispose(); // 401
            (await operatorClient.PostAsync($"/v1/rollouts/current/{value}", null, Ct)).Dispose(); // 400
            (await anonymous.GetAsync($"/v1/models/{value}", Ct)).Dispose(); // 404
            (await anonymous.GetAsync($"/v1/incidents/incident-{value}", Ct)).Dispose();
            (await anonymous.GetAsync($"/v1/drift?device={value}", Ct)).Dispose();
            (await anonymous.PostAsync($"/v1/streams/{value}/samples", ServiceFixture.Bytes([1, 2, 3], "application/octet-stream"), Ct)).Dispose(); // 400
            (await operatorClient.GetAsync($"/v1/backups/{value}", Ct)).Dispose(); // 404
            (await anonymous.GetAsync($"/{value}", Ct)).Dispose(); // no route
        }

        var metrics = await anonymous.GetStringAsync("/metrics", Ct);
        Assert.DoesNotContain("zq", metrics, StringComparison.Ordinal);

        // One series per status code and method of the route, not one per value: the statuses the routes answer have
        // their series from the start (HostingExtensions.CreateHttpSeries), and 400 requests added none.
        var series = metrics.Split('\n').Where(l => l.StartsWith("http_requests_received_total{", StringComparison.Ordinal)).ToList();
        var after = (await ServiceQueries.MetricAsync(anonymous, "http_requests_received_total", Ct)).Keys;
        Assert.DoesNotContain(after, k => !before.Contains(k) && !k.Contains("endpoint=\"/metrics\"", StringComparison.Ordinal) && !k.Contains("endpoint=\"\"", StringComparison.Ordinal));
        Assert.Contains(after, k => k.Contains("endpoint=\"/v1/rollouts/current/{action}\"", StringComparison.Ordinal) && k.Contains("code=\"401\"", StringComparison.Ordinal));
        Assert.All(series, l => Assert.DoesNotContain("action=", l, StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheFirstRequestOfASeries_IsCounted_FromASeriesCreatedAtZero()
    {
        // prometheus-net created a series at its first request, already at 1, so rate() and increase() never counted
        // that request: a lone 400 on a stream append showed as "4xx 0" on the dashboard. The series exist from the start.
        await using var fresh = await ServiceProcess.StartAsync(cancellationToken: Ct);
        using var client = fresh.CreateClient();
        const string Append = "code=\"400\",method=\"POST\",endpoint=\"/v1/streams/{streamId}/samples\"";
        var before = await ServiceQueries.MetricAsync(client, "http_requests_received_total", Ct);
        Assert.True(before.TryGetValue("{" + Append + "}", out var zero), string.Join('\n', before.Keys.Where(k => k.Contains("samples", StringComparison.Ordinal))));
        Assert.Equal(0, zero);

        // Every documented operation has its 500 series, every authorized one its 401, every limited one its 429.
        Assert.Contains(before, kv => kv.Key == "{code=\"500\",method=\"POST\",endpoint=\"/v1/predict\"}" && kv.Value == 0);
        Assert.Contains(before, kv => kv.Key == "{code=\"401\",method=\"POST\",endpoint=\"/v1/rollouts/rollback\"}" && kv.Value == 0);
        Assert.Contains(before, kv => kv.Key == "{code=\"429\",method=\"POST\",endpoint=\"/v1/predict\"}" && kv.Value == 0);

        (await client.PostAsync("/v1/streams/first/samples", ServiceFixture.Bytes([1, 2, 3], "application/octet-stream"), Ct)).Dispose();
        var after = await ServiceQueries.MetricAsync(client, "http_requests_received_total", Ct);
        Assert.Equal(1, after["{" + Append + "}"]);
        Assert.Single(after.Keys, k => k.Contains("code=\"400\"", StringComparison.Ordinal) && k.Contains("/v1/streams/{streamId}/samples", StringComparison.Ordinal));
    }
}
