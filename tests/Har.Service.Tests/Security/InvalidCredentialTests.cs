using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Har.Service.Tests.Security;

/// <summary>
/// With <c>Har:Service:PredictRequiresKey=false</c> (the fixture's setting) a request that carried an unknown key,
/// <c>Authorization: Basic …</c> or two <c>X-Api-Key</c> headers was served as anonymous (200) on the routes open to
/// anonymous callers, so a mistyped key went unnoticed. A presented but invalid credential is a 401 on every route now,
/// saying what was wrong; no credential at all stays anonymous where that is allowed.
/// </summary>
public sealed class InvalidCredentialTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ServiceProcess Service => fixture.Service;

    /// <summary>Routes anonymous callers may use in the fixture's configuration.</summary>
    public static TheoryData<string, string> AnonymousRoutes => new()
    {
        { "GET", "/v1/models" },
        { "GET", "/v1/rollouts" },
        { "GET", "/v1/drift" },
        { "POST", "/v1/predict" },
        { "POST", "/v1/streams/credential-test/samples" },
        { "GET", "/health" },
        { "GET", "/ready" },
        { "GET", "/metrics" },
        { "GET", "/openapi/v1.json" },
    };

    [Theory]
    [MemberData(nameof(AnonymousRoutes))]
    public async Task AnonymousRoute_WithoutCredentials_IsServed_AndWithAValidKeyToo(string method, string path)
    {
        using var anonymous = Service.CreateClient();
        using (var response = await anonymous.SendAsync(Request(method, path), Ct))
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"anonymous {method} {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }

        using var predictor = Service.CreateClient(Service.PredictorKey);
        using (var response = await predictor.SendAsync(Request(method, path), Ct))
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"predictor {method} {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }
    }

    [Theory]
    [MemberData(nameof(AnonymousRoutes))]
    public async Task AnonymousRoute_WithAnInvalidCredential_Is401_SayingWhatWasWrong(string method, string path)
    {
        using var client = Service.CreateClient();
        foreach (var (header, value, expected) in new[]
        {
            ("X-Api-Key", "not-a-key-of-this-service-0123456789", "matches none of the service's keys"),
            ("X-Api-Key", Service.PredictorKey[..^1], "matches none of the service's keys"),
            ("X-Api-Key", " ", "header is empty"),
            ("Authorization", "Basic dXNlcjpwYXNz", "The Authorization scheme is 'Basic'; expected Bearer"),
            ("Authorization", "Bearer not-a-key-of-this-service-0123456789", "matches none of the service's keys"),
            ("Authorization", "Bearer two keys", "malformed"),
        })
        {
            using var request = Request(method, path);
            Assert.True(request.Headers.TryAddWithoutValidation(header, value));
            using var response = await client.SendAsync(request, Ct);
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} with {header}: {value}: {(int)response.StatusCode} {body[..Math.Min(body.Length, 300)]}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(expected, JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Contains("invalid_token", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("not-a-key-of-this-service", body, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("/v1/models")]
    [InlineData("/health")]
    [InlineData("/metrics")]
    public async Task TwoApiKeyHeaderLines_Are401_EvenWithAValidKey(string path)
    {
        // Two header lines, as curl -H … -H … sends them (HttpClient would join them into one).
        var key = Service.PredictorKey;
        var head = $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: {key}\r\nX-Api-Key: {key}\r\nConnection: close\r\n\r\n";
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(Service.BaseAddress.Host, Service.BaseAddress.Port, Ct);
        await using var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), Ct);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var response = await reader.ReadToEndAsync(Ct);
        Assert.StartsWith("HTTP/1.1 401 ", response, StringComparison.Ordinal);
        Assert.Contains("The request has 2 X-Api-Key headers", response, StringComparison.Ordinal);
    }

    private HttpRequestMessage Request(string method, string path) => new(new HttpMethod(method), path)
    {
        Content = method == "GET" ? null
            : path == "/v1/predict" ? ServiceFixture.Json($"{{\"windows\":[[{string.Join(",", Enumerable.Repeat("0", fixture.WindowValues))}]]}}")
            : ServiceFixture.Json("{\"samples\":[0,0,9.8,0,0,0]}"),
    };
}
