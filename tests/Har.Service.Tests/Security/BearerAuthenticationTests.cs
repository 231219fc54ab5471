using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Security;

/// <summary>
/// Issue 14 (API): <c>Authorization: Bearer &lt;key&gt;</c> is accepted beside <c>X-Api-Key</c>, with the same keys and
/// the same roles; a wrong scheme, a malformed header or two credentials at once is a 401 whose problem detail says
/// what was wrong and what is expected.
/// </summary>
public sealed class BearerAuthenticationTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ServiceProcess Service => fixture.Service;

    [Theory]
    [InlineData("Bearer")]
    [InlineData("bearer")]
    public async Task BearerKey_HasTheSameRolesAsXApiKey(string scheme)
    {
        using var anonymous = Service.CreateClient();

        // Operator: may append; the entry's actor is the key's name, as with X-Api-Key.
        using (var append = await SendAsync(anonymous, HttpMethod.Post, "/v1/audit/events", $"{scheme} {Service.OperatorKey}", AuditEvent()))
        {
            var body = await append.Content.ReadAsStringAsync(Ct);
            Assert.True(append.StatusCode == HttpStatusCode.Created, $"{(int)append.StatusCode} {body}");
            var index = JsonDocument.Parse(body).RootElement.GetProperty("index").GetInt64();
            using var auditor = Service.CreateClient(Service.AuditorKey);
            using var entry = JsonDocument.Parse(await auditor.GetStringAsync($"/v1/audit/events/{index}", Ct));
            Assert.Equal("test-operator", entry.RootElement.GetProperty("actor").GetString());
        }

        // Auditor: may read, may not append (403, not 401: the key is known, the role is not enough).
        using (var read = await SendAsync(anonymous, HttpMethod.Get, "/v1/audit/events?page_size=1", $"{scheme} {Service.AuditorKey}"))
        {
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        }

        using (var refused = await SendAsync(anonymous, HttpMethod.Post, "/v1/audit/events", $"{scheme} {Service.AuditorKey}", AuditEvent()))
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }

        // Predictor: may not read the audit log.
        using (var refused = await SendAsync(anonymous, HttpMethod.Get, "/v1/audit/events", $"{scheme} {Service.PredictorKey}"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }
    }

    [Theory]
    [InlineData("Basic dXNlcjpwYXNz", "expected Bearer")]
    [InlineData("Token abc", "expected Bearer")]
    [InlineData("Bearer", "malformed")]
    [InlineData("Bearer ", "malformed")]
    [InlineData("Bearer two keys", "malformed")]
    [InlineData("Bearer not-a-key-of-this-service-0123456789", "matches none of the service's keys")]
    public async Task WrongSchemeOrMalformedOrUnknown_Is401_WithAClearProblem(string authorization, string expected)
    {
        using var anonymous = Service.CreateClient();
        using var response = await SendAsync(anonymous, HttpMethod.Get, "/v1/audit/events", authorization);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{authorization}: {(int)response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var detail = JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString();
        Assert.Contains(expected, detail, StringComparison.Ordinal);
        Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("not-a-key-of-this-service", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BothHeaders_Is401_EvenWhenBothHoldTheSameKey()
    {
        using var client = Service.CreateClient(Service.AuditorKey);
        using var response = await SendAsync(client, HttpMethod.Get, "/v1/audit/events", $"Bearer {Service.AuditorKey}");
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("both an X-Api-Key and an Authorization header", JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoCredentials_Is401_NamingBothWays()
    {
        using var anonymous = Service.CreateClient();
        using var response = await anonymous.GetAsync("/v1/audit/events", Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var detail = JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString();
        Assert.Contains("X-Api-Key: <key>", detail, StringComparison.Ordinal);
        Assert.Contains("Authorization: Bearer <key>", detail, StringComparison.Ordinal);
    }

    private static StringContent AuditEvent() => ServiceFixture.Json(
        """{"event_type": "bearer.test", "entity_type": "test", "entity_id": "bearer", "severity": "info", "action_details": {}}""");

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string path, string authorization, HttpContent? content = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        Assert.True(request.Headers.TryAddWithoutValidation("Authorization", authorization));
        return await client.SendAsync(request, Ct);
    }
}
