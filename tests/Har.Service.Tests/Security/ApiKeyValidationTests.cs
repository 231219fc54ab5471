using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Security;

/// <summary>
/// Issue 17, point 8: keys from <c>ApiKeysFile</c> (as <c>deploy/</c> mounts them) are validated exactly like
/// keys from configuration. Each invalid key is given both ways to the real service, which must refuse to start
/// (exit code 2) with the same message, naming the problem and never the secret.
/// </summary>
public sealed class ApiKeyValidationTests
{
    private const string GoodKey = "good-operator-key-0123456789abcdef";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>name, key, roles (comma-separated), and the words the refusal must contain.</summary>
    public static TheoryData<string, string, string, string> InvalidKeys => new()
    {
        { "ops", "k", "operator", "has a key of 1 characters; at least 24 are required" },
        { "", "empty-name-key-0123456789abcdef01", "operator", "entry 1 has no name" },
        { "ops", "unknown-role-key-0123456789abcdef", "root", "has unknown role(s) 'root'" },
        { "ops", "no-role-key-0123456789abcdef012345", "", "has no role" },
        { "ops", GoodKey, "auditor", "repeats the key of an earlier entry" },
        { "good", "same-name-key-0123456789abcdef0123", "auditor", "repeats the name of an earlier entry" },
    };

    [Theory]
    [MemberData(nameof(InvalidKeys))]
    public async Task InvalidKey_FromFileAndFromConfiguration_RefusedAlikeAtStart(string name, string key, string roles, string expected)
    {
        var roleList = roles.Length == 0 ? Array.Empty<string>() : roles.Split(',');
        var dir = Directory.CreateTempSubdirectory("har-keys-test-").FullName;
        try
        {
            // A valid first entry, then the invalid one: both sources hold the same two keys.
            var file = Path.Combine(dir, "api-keys.json");
            File.WriteAllText(file, JsonSerializer.Serialize(new object[]
            {
                new { name = "good", key = GoodKey, roles = new[] { "operator" } },
                new { name, key, roles = roleList },
            }));
            var fromFile = await ServiceProcess.RunUntilExitAsync(new Dictionary<string, string> { ["Har:Service:ApiKeysFile"] = file }, Ct);

            var configured = new Dictionary<string, string>
            {
                ["Har:Service:ApiKeys:0:Name"] = "good",
                ["Har:Service:ApiKeys:0:Key"] = GoodKey,
                ["Har:Service:ApiKeys:0:Roles:0"] = "operator",
                ["Har:Service:ApiKeys:1:Name"] = name,
                ["Har:Service:ApiKeys:1:Key"] = key,
            };
            for (var i = 0; i < roleList.Length; i++)
            {
                configured[$"Har:Service:ApiKeys:1:Roles:{i}"] = roleList[i];
            }

            var fromConfiguration = await ServiceProcess.RunUntilExitAsync(configured, Ct);

            foreach (var (source, (exit, output)) in new[] { ("ApiKeysFile", fromFile), ("configuration", fromConfiguration) })
            {
                Assert.True(exit == 2, $"from {source}: exit code {exit}, expected 2 (refused at start):\n{output}");
                Assert.Contains(expected, Unescape(output), StringComparison.Ordinal);
                Assert.Contains("The service cannot start", output, StringComparison.Ordinal);
                Assert.DoesNotContain(GoodKey, output, StringComparison.Ordinal);
                if (key.Length >= 24)
                {
                    Assert.DoesNotContain(key, output, StringComparison.Ordinal);
                }

                Assert.DoesNotContain("   at ", output, StringComparison.Ordinal); // a message, not a stack trace
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("not json at all")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("[null]")]
    [InlineData("{\"name\": \"ops\"}")]
    public async Task MalformedKeyFile_RefusedAtStart(string content)
    {
        var dir = Directory.CreateTempSubdirectory("har-keys-test-").FullName;
        try
        {
            var file = Path.Combine(dir, "api-keys.json");
            File.WriteAllText(file, content);
            var (exit, output) = await ServiceProcess.RunUntilExitAsync(new Dictionary<string, string> { ["Har:Service:ApiKeysFile"] = file }, Ct);

            Assert.True(exit == 2, $"exit code {exit}, expected 2:\n{output}");
            Assert.Contains("API key", output, StringComparison.Ordinal);
            Assert.Contains(file, output, StringComparison.Ordinal); // which file (found from outside: it was not named)
            Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ValidKeyFile_RolesApplyAsConfigured()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct);
        using var auditor = service.CreateClient(service.AuditorKey);
        using var predictor = service.CreateClient(service.PredictorKey);
        using var operatorClient = service.CreateClient(service.OperatorKey);

        using var audit = await auditor.GetAsync("/v1/audit/events?page_size=1", Ct);
        Assert.Equal(HttpStatusCode.OK, audit.StatusCode);
        using var denied = await predictor.GetAsync("/v1/audit/events?page_size=1", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        using var operatorRead = await operatorClient.GetAsync("/v1/audit/events?page_size=1", Ct);
        Assert.Equal(HttpStatusCode.OK, operatorRead.StatusCode);
    }

    /// <summary>The JSON console logger escapes quotes; compare with the plain text.</summary>
    private static string Unescape(string output) => output.Replace("\\u0027", "'", StringComparison.Ordinal).Replace("\\u0022", "\"", StringComparison.Ordinal);
}
