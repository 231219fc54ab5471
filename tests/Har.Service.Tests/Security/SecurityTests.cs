using System.Net;
using System.Text;
using System.Text.Json;

namespace Har.Service.Tests.Security;

/// <summary>Keys and roles, body limits, rate limits and CORS of the real service process.</summary>
public sealed class SecurityTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private ServiceProcess Service => fixture.Service;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> Operations => new()
    {
        { "POST", "/v1/models" },
        { "POST", "/v1/rollouts" },
        { "POST", "/v1/rollouts/current/approve" },
        { "POST", "/v1/rollouts/current/promote" },
        { "POST", "/v1/rollouts/current/pause" },
        { "POST", "/v1/rollouts/current/resume" },
        { "POST", "/v1/rollouts/current/abort" },
        { "POST", "/v1/rollouts/current/rollback" },
        { "POST", "/v1/audit/events" },
        { "GET", "/v1/audit/events" },
        { "GET", "/v1/audit/events/0" },
        { "GET", "/v1/audit/checkpoint" },
        { "GET", "/v1/audit/proof/0" },
    };

    public static TheoryData<string, string> OperatorOnly => new()
    {
        { "POST", "/v1/models" },
        { "POST", "/v1/rollouts" },
        { "POST", "/v1/rollouts/current/promote" },
        { "POST", "/v1/rollouts/current/rollback" },
        { "POST", "/v1/audit/events" },
    };

    [Theory]
    [MemberData(nameof(Operations))]
    public async Task Operation_WithoutKey_Is401ProblemDetailsWithChallenge(string method, string path)
    {
        using var client = Service.CreateClient();
        using var response = await client.SendAsync(Request(method, path), Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("ApiKey", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        await AssertProblemAsync(response, 401);
    }

    [Theory]
    [MemberData(nameof(Operations))]
    public async Task Operation_WithUnknownKey_Is401(string method, string path)
    {
        using var client = Service.CreateClient("not-a-key-of-this-service-0123456789");
        using var response = await client.SendAsync(Request(method, path), Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        await AssertProblemAsync(response, 401);
    }

    [Theory]
    [MemberData(nameof(OperatorOnly))]
    public async Task OperatorOperation_WithAuditorKey_Is403(string method, string path)
    {
        using var client = Service.CreateClient(Service.AuditorKey);
        using var response = await client.SendAsync(Request(method, path), Ct);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        await AssertProblemAsync(response, 403);
    }

    [Fact]
    public async Task AuthorizationHeader_WithOperatorKey_IsAccepted()
    {
        using var client = Service.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/audit/checkpoint");
        request.Headers.TryAddWithoutValidation("Authorization", "ApiKey " + Service.AuditorKey);
        using var response = await client.SendAsync(request, Ct);

        // Authenticated: either a checkpoint or "none yet", never 401/403.
        Assert.Contains(response.StatusCode, new[] { HttpStatusCode.OK, HttpStatusCode.NotFound });
    }

    [Fact]
    public async Task OverLimitBody_Is413ProblemDetails()
    {
        using var client = Service.CreateClient();
        var body = new byte[ServiceFixture.MaxBodyBytes + 4096];
        using var response = await client.PostAsync("/v1/predict", ServiceFixture.Bytes(body, "application/octet-stream"), Ct);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        await AssertProblemAsync(response, 413);
    }

    [Fact]
    public async Task OverLimitChunkedBody_Is413ProblemDetails()
    {
        // No Content-Length: Kestrel can only find out while reading.
        using var client = Service.CreateClient();
        var body = new StreamContent(new MemoryStream(new byte[ServiceFixture.MaxBodyBytes * 2]));
        body.Headers.ContentType = new("application/octet-stream");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/streams/chunked/samples") { Content = body };
        request.Headers.TransferEncodingChunked = true;
        using var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        await AssertProblemAsync(response, 413);
    }

    [Fact]
    public async Task TooManyWindows_Is413()
    {
        using var client = Service.CreateClient();
        var bytes = new byte[(ServiceFixture.MaxWindowsPerRequest + 1) * fixture.WindowValues * sizeof(float)];
        using var response = await client.PostAsync("/v1/predict", ServiceFixture.Bytes(bytes, "application/octet-stream"), Ct);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        await AssertProblemAsync(response, 413);
        Assert.Contains($"at most {ServiceFixture.MaxWindowsPerRequest}", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_FromAllowedOrigin_GetsCorsHeaders()
    {
        using var client = Service.CreateClient();
        using var response = await client.SendAsync(Preflight(ServiceFixture.AllowedOrigin), Ct);

        Assert.True(response.Headers.TryGetValues("Access-Control-Allow-Origin", out var origins), "no Access-Control-Allow-Origin for the allowed origin");
        Assert.Equal(ServiceFixture.AllowedOrigin, Assert.Single(origins));
        Assert.False(response.Headers.Contains("Access-Control-Allow-Credentials"));
        Assert.Contains("POST", string.Join(",", response.Headers.GetValues("Access-Control-Allow-Methods")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://evil.example")]
    [InlineData("https://console.har.example.evil.example")]
    [InlineData("http://console.har.example")]
    [InlineData("null")]
    public async Task Preflight_FromDisallowedOrigin_GetsNoCorsHeaders(string origin)
    {
        using var client = Service.CreateClient();
        using var response = await client.SendAsync(Preflight(origin), Ct);

        Assert.DoesNotContain(response.Headers, h => h.Key.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [InlineData(ServiceFixture.AllowedOrigin, true)]
    [InlineData("https://evil.example", false)]
    public async Task SimpleRequest_CorsHeadersOnlyForAllowedOrigin(string origin, bool allowed)
    {
        using var client = Service.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Add("Origin", origin);
        using var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(allowed, response.Headers.Contains("Access-Control-Allow-Origin"));
        if (allowed)
        {
            Assert.Equal(origin, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        }
    }

    [Fact]
    public async Task Burst_OverTheLimit_Is429WithRetryAfter_AndHealthStaysOpen()
    {
        await using var limited = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:RateLimitPerSecond"] = "1",
            ["Har:Service:RateLimitBurst"] = "5",
        }, cancellationToken: Ct);
        using var client = limited.CreateClient();

        // 40 requests at once against a bucket of 5 that refills one token a second: most are refused.
        var responses = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => client.GetAsync("/v1/models", Ct)));
        try
        {
            var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToArray();
            Assert.NotEmpty(refused);
            Assert.All(responses, r => Assert.Contains(r.StatusCode, new[] { HttpStatusCode.OK, HttpStatusCode.TooManyRequests }));
            foreach (var r in refused)
            {
                var retryAfter = r.Headers.RetryAfter?.Delta;
                Assert.NotNull(retryAfter);
                Assert.True(retryAfter >= TimeSpan.FromSeconds(1), $"Retry-After {retryAfter} is not a positive number of seconds");
                await AssertProblemAsync(r, 429);
            }

            // Liveness, readiness and metrics are never throttled.
            using var health = await client.GetAsync("/health", Ct);
            using var ready = await client.GetAsync("/ready", Ct);
            using var metrics = await client.GetAsync("/metrics", Ct);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        }
        finally
        {
            foreach (var r in responses)
            {
                r.Dispose();
            }
        }
    }

    [Fact]
    public async Task WindowBudgetSpent_Is429ProblemWithItsType_AndRetryAfter()
    {
        // Found from outside: this 429 (and the request limiter's) carried no problem type, where every other problem did.
        await using var limited = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:AnonymousWindowsPerSecond"] = "1",
            ["Har:Service:RateLimitPerSecond"] = "1000000",
            ["Har:Service:RateLimitBurst"] = "10000000",
        }, cancellationToken: Ct);
        var card = ServiceFixture.ChampionCard(limited.ModelsDirectory);
        using var client = limited.CreateClient();
        var values = new float[card.ChannelCount * 64 * card.Stride];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)(0.5 * Math.Sin(i * 0.013));
        }

        var body = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, body, 0, body.Length);
        for (var i = 0; i < 10; i++)
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
            using var response = await client.PostAsync("/v1/streams/budget-probe/samples", content, Ct);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.NotNull(response.Headers.RetryAfter?.Delta);
                await AssertProblemAsync(response, 429);
                return;
            }

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Fail("ten appends of 64 windows each within a budget of 1 window a second were all accepted");
    }

    [Fact]
    public async Task Burst_IsPerClient_OtherKeysAreNotThrottled()
    {
        await using var limited = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:RateLimitPerSecond"] = "1",
            ["Har:Service:RateLimitBurst"] = "3",
        }, cancellationToken: Ct);
        using var anonymous = limited.CreateClient();
        var burst = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => anonymous.GetAsync("/v1/models", Ct)));
        Assert.Contains(burst, r => r.StatusCode == HttpStatusCode.TooManyRequests);
        foreach (var r in burst)
        {
            r.Dispose();
        }

        // The auditor has its own bucket (partitioned by key name), still full.
        using var auditor = limited.CreateClient(limited.AuditorKey);
        using var response = await auditor.GetAsync("/v1/audit/events?page_size=1", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    internal static async Task AssertProblemAsync(HttpResponseMessage response, int status)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(status, json.RootElement.GetProperty("status").GetInt32());
        Assert.True(json.RootElement.TryGetProperty("title", out _), "problem details without a title");
        Assert.True(
            json.RootElement.TryGetProperty("type", out var type) && Uri.TryCreate(type.GetString(), UriKind.Absolute, out _),
            $"problem details of status {status} without a type URI (RFC 9457 section 3.1.1)");
    }

    private static HttpRequestMessage Request(string method, string path)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST")
        {
            request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
        }

        return request;
    }

    private static HttpRequestMessage Preflight(string origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Options, "/v1/predict");
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "content-type,x-api-key");
        return request;
    }
}
