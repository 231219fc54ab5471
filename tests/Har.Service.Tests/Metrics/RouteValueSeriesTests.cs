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

        // One series per status code and method of the route, not one per value.
        var series = metrics.Split('\n').Where(l => l.StartsWith("http_requests_received_total{", StringComparison.Ordinal)).ToList();
        var commandSeries = series.Where(l => l.Contains("endpoint=\"/v1/rollouts/current/{action}\"", StringComparison.Ordinal)).ToList();
        Assert.True(commandSeries.Count is >= 2 and <= 4, string.Join('\n', commandSeries)); // 401 and 400 (and what another test of the fixture left)
        Assert.All(series, l => Assert.DoesNotContain("action=", l, StringComparison.Ordinal));
    }
}
