using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Issue 14 (API): the service serves its OpenAPI document at <c>/openapi/v1.json</c>, anonymously, and the document
/// lists every route the service maps. The route table is the service's own (its endpoint data sources, printed by
/// <c>--list-routes</c> from the same build), not a list written here, so a route added without a description fails.
/// </summary>
public sealed partial class OpenApiDocumentTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Document_ListsEveryMappedRoute_AndNothingElse()
    {
        var routes = await MappedRoutesAsync();
        Assert.Contains(routes, r => r.Route == "/v1/predict");
        Assert.Contains(routes, r => r.Route == "/openapi/v1.json");

        using var anonymous = fixture.Service.CreateClient();
        using var response = await anonymous.GetAsync("/openapi/v1.json", Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(text);
        Assert.StartsWith("3.", document.RootElement.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var paths = document.RootElement.GetProperty("paths");

        var described = new HashSet<(string Method, string Path)>();
        foreach (var path in paths.EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                described.Add((operation.Name.ToUpperInvariant(), path.Name));
            }
        }

        var missing = new List<string>();
        var mapped = new HashSet<(string Method, string Path)>();
        foreach (var (method, route) in routes)
        {
            // A route that takes any method (the metrics scrape) must at least be described for GET.
            var key = (method == "*" ? "GET" : method, OpenApiPath(route));
            mapped.Add(key);
            if (!described.Contains(key))
            {
                missing.Add($"{method} {route}");
            }
        }

        Assert.True(missing.Count == 0, $"routes the service maps but the document does not list: {string.Join(", ", missing)}");
        var phantom = described.Where(d => !mapped.Contains(d)).Select(d => $"{d.Method} {d.Path}").ToArray();
        Assert.True(phantom.Length == 0, $"operations in the document that the service does not map: {string.Join(", ", phantom)}");
    }

    [Fact]
    public async Task Document_SaysWhichOperationsNeedAKey_ApiKeyOrBearer()
    {
        using var anonymous = fixture.Service.CreateClient();
        using var document = JsonDocument.Parse(await anonymous.GetStringAsync("/openapi/v1.json", Ct));
        var schemes = document.RootElement.GetProperty("components").GetProperty("securitySchemes");
        Assert.Equal("X-Api-Key", schemes.GetProperty("ApiKey").GetProperty("name").GetString());
        Assert.Equal("header", schemes.GetProperty("ApiKey").GetProperty("in").GetString());
        Assert.Equal("bearer", schemes.GetProperty("Bearer").GetProperty("scheme").GetString());

        var paths = document.RootElement.GetProperty("paths");
        foreach (var (path, method) in new[] { ("/v1/models", "post"), ("/v1/audit/events", "get"), ("/v1/rollouts/current/{action}", "post") })
        {
            var operation = paths.GetProperty(path).GetProperty(method);
            var security = operation.GetProperty("security").EnumerateArray().SelectMany(r => r.EnumerateObject().Select(p => p.Name)).ToArray();
            Assert.Equal(["ApiKey", "Bearer"], security);
            Assert.Contains("role", operation.GetProperty("description").GetString(), StringComparison.Ordinal);
        }

        // Anonymous routes carry no security requirement.
        Assert.False(paths.GetProperty("/ready").GetProperty("get").TryGetProperty("security", out _));
        Assert.False(paths.GetProperty("/health").GetProperty("get").TryGetProperty("security", out _));

        // Every operation the service refuses to an anonymous caller (401) says in the document that it needs a key,
        // and which one (POST /v1/feedback, authorized by an inline policy, once carried none and read as open).
        var undeclared = new List<string>();
        foreach (var path in paths.EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                var concrete = System.Text.RegularExpressions.Regex.Replace(path.Name, "{[^}]+}", "x");
                using var request = new HttpRequestMessage(new HttpMethod(operation.Name.ToUpperInvariant()), concrete);
                if (operation.Name is "post" or "put")
                {
                    request.Content = ServiceFixture.Json("{}");
                }

                using var response = await anonymous.SendAsync(request, Ct);
                var declared = operation.Value.TryGetProperty("security", out _)
                    && operation.Value.TryGetProperty("description", out var description)
                    && description.GetString()!.Contains("Needs: an API key", StringComparison.Ordinal);
                if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized && !declared)
                {
                    undeclared.Add($"{operation.Name.ToUpperInvariant()} {path.Name}");
                }
            }
        }

        Assert.True(undeclared.Count == 0, $"refused to anonymous callers but described as open: {string.Join(", ", undeclared)}");
    }

    /// <summary>
    /// A new user following the document could not learn the bodies of <c>/v1/predict</c> or the stream samples (only the
    /// 415 said them), and read 200 for routes that answer 201 or 202. Now the routes that read a body describe it, the
    /// success status is the one the service answers (checked here against the live answers), every operation names its
    /// error documents, and the prediction routes say that a key is optional while <c>PredictRequiresKey</c> is false.
    /// </summary>
    [Fact]
    public async Task Document_DescribesBodies_SuccessCodesAsAnswered_AndErrors()
    {
        using var anonymous = fixture.Service.CreateClient();
        using var operatorClient = fixture.Service.CreateClient(fixture.Service.OperatorKey);
        using var document = JsonDocument.Parse(await anonymous.GetStringAsync("/openapi/v1.json", Ct));
        var paths = document.RootElement.GetProperty("paths");
        JsonElement Operation(string path, string method) => paths.GetProperty(path).GetProperty(method);

        foreach (var path in new[] { "/v1/predict", "/v1/streams/{streamId}/samples" })
        {
            var body = Operation(path, "post").GetProperty("requestBody");
            Assert.True(body.GetProperty("required").GetBoolean());
            Assert.Equal(["application/json", "application/octet-stream"], body.GetProperty("content").EnumerateObject().Select(c => c.Name).Order(StringComparer.Ordinal));
            Assert.Contains("float32", body.GetProperty("description").GetString(), StringComparison.Ordinal);

            // A key is optional: the empty requirement ({}) beside ApiKey and Bearer.
            Assert.Contains(Operation(path, "post").GetProperty("security").EnumerateArray(), r => !r.EnumerateObject().Any());
        }

        foreach (var (path, method) in new[] { ("/v1/rollouts", "post"), ("/v1/feedback", "post"), ("/v1/audit/events", "post"), ("/v1/incidents/{id}", "put"), ("/v1/models", "post") })
        {
            Assert.True(Operation(path, method).TryGetProperty("requestBody", out _), $"{method} {path} describes no body");
        }

        // The documented success codes are those the service answers.
        var window = string.Join(',', Enumerable.Repeat("0.1", fixture.WindowValues));
        var live = new List<(string Path, string Method, HttpResponseMessage Response)>
        {
            ("/v1/predict", "post", await anonymous.PostAsync("/v1/predict", ServiceFixture.Json($"{{\"windows\":[[{window}]]}}"), Ct)),
            ("/v1/audit/events", "post", await operatorClient.PostAsync("/v1/audit/events", ServiceFixture.Json("{\"event_type\":\"ops.maintenance\",\"entity_type\":\"node\",\"entity_id\":\"n1\",\"severity\":\"info\",\"action_details\":{}}"), Ct)),
            ("/v1/backups", "post", await operatorClient.PostAsync("/v1/backups", null, Ct)),
            ("/v1/rollouts", "post", await operatorClient.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{Candidate()}\",\"strategy\":\"shadow\",\"reason\":\"openapi\"}}"), Ct)),
        };
        foreach (var (path, method, response) in live)
        {
            using (response)
            {
                var answered = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
                Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {answered} {await response.Content.ReadAsStringAsync(Ct)}");
                var documented = Operation(path, method).GetProperty("responses").EnumerateObject().Select(r => r.Name).Where(n => n.StartsWith('2')).ToArray();
                Assert.True(documented.SequenceEqual([answered]), $"{method} {path} answered {answered}; the document says {string.Join(", ", documented)}");
            }
        }

        // Every minimal-API operation names the error documents it may answer.
        foreach (var path in paths.EnumerateObject().Where(p => p.Name.StartsWith("/v1/", StringComparison.Ordinal)))
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                Assert.True(
                    operation.Value.GetProperty("responses").TryGetProperty("default", out var error) && error.GetProperty("content").TryGetProperty("application/problem+json", out _),
                    $"{operation.Name} {path.Name} has no problem-details response");
            }
        }

        string Candidate() => Directory.GetFiles(fixture.Service.ModelsDirectory, "*.onnx")
            .Select(f => Har.Inference.ModelCard.Load(f).ModelVersion)
            .OrderByDescending(v => Version.Parse(v.Split('-', '+')[0]))
            .First();
    }

    /// <summary>
    /// <c>--list-routes</c> promises to open no storage, yet without configured keys it generated an operator key and an
    /// audit signing key and wrote both into the data folder of wherever it ran (the build output, a CI checkout).
    /// </summary>
    [Fact]
    public async Task ListRoutes_WithoutKeys_WritesNothing()
    {
        var data = Path.Combine(Path.GetTempPath(), "har-list-routes-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (exit, output) = await ServiceProcess.RunUntilExitAsync(new Dictionary<string, string> { ["Har:Service:DataDirectory"] = data }, Ct, "--list-routes");
            Assert.True(exit == 0, $"--list-routes exited with {exit}:\n{output}");
            Assert.Contains("\"route\":\"/v1/predict\"", output, StringComparison.Ordinal);
            Assert.False(Directory.Exists(data), "--list-routes wrote: " + (Directory.Exists(data) ? string.Join(", ", Directory.GetFiles(data, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(data, f))) : ""));
            Assert.DoesNotContain("generated an operator", output, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    /// <summary>The service's own route table: <c>--list-routes</c> prints its endpoint data sources as JSON and exits.</summary>
    internal static async Task<List<(string Method, string Route)>> MappedRoutesAsync()
    {
        var (exit, output) = await ServiceProcess.RunUntilExitAsync(
            new Dictionary<string, string>
            {
                ["Har:Service:ApiKeys:0:Name"] = "routes-operator",
                ["Har:Service:ApiKeys:0:Key"] = "operator-key-" + Guid.NewGuid().ToString("N"),
                ["Har:Service:ApiKeys:0:Roles:0"] = "operator",
            },
            Ct,
            "--list-routes");
        Assert.True(exit == 0, $"--list-routes exited with {exit}:\n{output}");
        var line = output.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("[{", StringComparison.Ordinal));
        using var json = JsonDocument.Parse(line);
        return [.. json.RootElement.EnumerateArray().Select(r => (r.GetProperty("method").GetString()!, r.GetProperty("route").GetString()!))];
    }

    /// <summary>A route pattern as OpenAPI writes it: no parameter constraints (<c>{index:long}</c> → <c>{index}</c>), no trailing slash.</summary>
    internal static string OpenApiPath(string route)
    {
        var path = Constraint().Replace(route, "{${name}}");
        return path.Length > 1 ? path.TrimEnd('/') : path;
    }

    [GeneratedRegex(@"\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}", RegexOptions.CultureInvariant)]
    private static partial Regex Constraint();
}
