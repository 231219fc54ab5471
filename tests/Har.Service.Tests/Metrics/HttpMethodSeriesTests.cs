using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Har.Service.Tests.Metrics;

/// <summary>
/// prometheus-net labels every HTTP series with the request's method, so each invented method (<c>X1Z /health</c>, sent
/// unauthenticated) added about 20 <c>http_request_duration_seconds</c> series: 35,000 requests grew <c>/metrics</c>
/// from 365 KB to 83 MB. A method that is not an HTTP method is answered as routing decides (404, or 405 with
/// <c>Allow</c>) before the HTTP metrics, so it adds no series; the HTTP methods are measured as before.
/// </summary>
public sealed class HttpMethodSeriesTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static readonly string[] Families = ["http_request_duration_seconds_count", "http_requests_received_total"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ServiceProcess Service => fixture.Service;

    [Fact]
    public async Task InventedMethods_AddNoSeries_AndAreAnsweredAsRoutingDecides()
    {
        using var scraper = Service.CreateClient();
        var invented = Enumerable.Range(0, 40).Select(i => string.Create(CultureInfo.InvariantCulture, $"X{i}Z"))
            .Concat(["get", "Post", "PROPFIND", "BREW", new string('M', 200)])
            .ToArray();
        var answers = new List<(string Request, string Expected, string Response)>();
        foreach (var method in invented)
        {
            foreach (var (path, expected) in new[] { ("/health", "405"), ("/v1/models", "405"), ("/metrics", "405"), ("/v1/no-such-route", "404") })
            {
                answers.Add(($"{method[..Math.Min(method.Length, 16)]} {path}", expected, await SendRawAsync($"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
            }
        }

        // A standard method is still measured, under its name.
        var standard = await SendRawAsync("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 ", standard, StringComparison.Ordinal);

        // A scrape is a GET: POST and DELETE on /metrics were answered 200 with the exposition.
        foreach (var method in new[] { "POST", "DELETE" })
        {
            Assert.StartsWith("HTTP/1.1 405 ", await SendRawAsync($"{method} /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);
        }

        // Every line of the service's log carries its time (outside a container runtime nothing else stamps it).
        Assert.All(Service.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith('{')), l => Assert.StartsWith("{\"Timestamp\":\"20", l, StringComparison.Ordinal));

        foreach (var family in Families)
        {
            var series = await ServiceQueries.MetricAsync(scraper, family, Ct);
            Assert.Contains(series.Keys, labels => labels.Contains("method=\"GET\"", StringComparison.Ordinal));
            var methods = series.Keys.Select(Method).Distinct(StringComparer.Ordinal).ToList();
            Assert.All(methods, m => Assert.Contains(m, new[] { "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT" }));
        }

        foreach (var (request, expected, response) in answers)
        {
            Assert.True(response.StartsWith($"HTTP/1.1 {expected} ", StringComparison.Ordinal), $"{request}: {response[..Math.Min(response.Length, 300)]}");
            Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
            if (expected == "405")
            {
                Assert.Contains(request.EndsWith("/v1/models", StringComparison.Ordinal) ? "Allow: " : "Allow: GET", response, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Head_IsServedByEveryGetRoute_WithoutContent_AndAllowListsEveryMethodOfTheResource()
    {
        // Found from outside: HEAD was 405 on every GET route (RFC 9110 section 9.1: general-purpose servers support GET
        // and HEAD), and "get /v1/models" was 405 with "Allow: GET" where the resource also takes POST.
        foreach (var path in new[] { "/health", "/ready", "/metrics", "/v1/models", "/v1/rollouts", "/openapi/v1.json" })
        {
            var get = await SendRawAsync($"GET {path} HTTP/1.1\r\nHost: x\r\nX-Api-Key: {Service.OperatorKey}\r\nConnection: close\r\n\r\n");
            var head = await SendRawAsync($"HEAD {path} HTTP/1.1\r\nHost: x\r\nX-Api-Key: {Service.OperatorKey}\r\nConnection: close\r\n\r\n");
            Assert.True(get.StartsWith("HTTP/1.1 200 ", StringComparison.Ordinal), $"GET {path}: {get[..Math.Min(get.Length, 200)]}");
            Assert.True(head.StartsWith("HTTP/1.1 200 ", StringComparison.Ordinal), $"HEAD {path}: {head[..Math.Min(head.Length, 200)]}");
            Assert.EndsWith("\r\n\r\n", head, StringComparison.Ordinal); // headers only: nothing after the blank line
            Assert.Equal(Header(get, "Content-Type"), Header(head, "Content-Type"));
        }

        foreach (var (request, allow) in new[]
        {
            ("get /v1/models", "GET, HEAD, POST"),
            ("DELETE /v1/models", "GET, HEAD, POST"),
            ("PUT /health", "GET, HEAD"),
            ("HEAD /v1/predict", "POST"),
        })
        {
            var response = await SendRawAsync($"{request} HTTP/1.1\r\nHost: x\r\nX-Api-Key: {Service.OperatorKey}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            Assert.True(response.StartsWith("HTTP/1.1 405 ", StringComparison.Ordinal), $"{request}: {response[..Math.Min(response.Length, 200)]}");
            Assert.Equal(allow, Header(response, "Allow"));
        }
    }

    private static string? Header(string response, string name) =>
        response.Split("\r\n").TakeWhile(l => l.Length > 0).FirstOrDefault(l => l.StartsWith(name + ": ", StringComparison.OrdinalIgnoreCase))?[(name.Length + 2)..];

    private static string Method(string labels)
    {
        var start = labels.IndexOf("method=\"", StringComparison.Ordinal) + "method=\"".Length;
        return labels[start..labels.IndexOf('"', start)];
    }

    private async Task<string> SendRawAsync(string head)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(Service.BaseAddress.Host, Service.BaseAddress.Port, Ct);
        await using var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), Ct);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return await reader.ReadToEndAsync(Ct);
    }
}
