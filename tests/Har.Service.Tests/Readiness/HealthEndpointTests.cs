using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Readiness;

/// <summary>
/// Issue 14 (API): <c>/health</c> and <c>/ready</c> answer JSON with each check's name, status, description and
/// duration; the 'operations' check is the audit log's own state (AuditLogHealthCheck: state, entries, checkpoint).
/// </summary>
public sealed class HealthEndpointTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("/health")]
    [InlineData("/ready")]
    public async Task HealthAndReady_AreJson_WithEveryCheck(string path)
    {
        using var anonymous = fixture.Service.CreateClient();
        using var response = await anonymous.GetAsync(path, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);

        using var json = JsonDocument.Parse(text);
        var root = json.RootElement;
        Assert.Equal("Healthy", root.GetProperty("status").GetString());
        Assert.True(root.GetProperty("total_duration_ms").GetDouble() >= 0);
        var checks = root.GetProperty("checks");
        Assert.Equal(["operations", "serving"], checks.EnumerateObject().Select(c => c.Name).Order(StringComparer.Ordinal));
        foreach (var check in checks.EnumerateObject())
        {
            Assert.Equal(check.Name, check.Value.GetProperty("name").GetString());
            Assert.Equal("Healthy", check.Value.GetProperty("status").GetString());
            Assert.False(string.IsNullOrWhiteSpace(check.Value.GetProperty("description").GetString()));
            Assert.True(check.Value.GetProperty("duration_ms").GetDouble() >= 0);
        }

        // The operations check reports the audit log itself: its state and size, no probe file.
        var operations = checks.GetProperty("operations");
        Assert.Equal("Writable", operations.GetProperty("data").GetProperty("state").GetString());
        Assert.True(operations.GetProperty("data").GetProperty("entries").GetInt64() > 0);
        Assert.Contains("audit log writable", operations.GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("serving ", checks.GetProperty("serving").GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(Path.Combine(fixture.Service.DataDirectory, "audit"), ".ready-probe-*"));
    }
}
