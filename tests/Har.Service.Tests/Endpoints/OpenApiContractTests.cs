using System.Net;
using System.Text.Json.Nodes;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Found from outside: the OpenAPI document listed every route but was no contract a client generator (NSwag,
/// openapi-generator, Kiota) could use: no operationId, no success content or schema on 26 of 28 operations, request
/// bodies typed only <c>{"type": "object"}</c>, undeclared query parameters, errors only as an untyped
/// <c>default</c>, no headers, an example body the service refused (<c>"expected_phase": "Canary"</c>), and a
/// <c>servers</c> URL that echoed the request's Host header. These tests hold the document to what a generator needs;
/// <see cref="OpenApiConformanceTests"/> holds the service's answers to the document.
/// </summary>
public sealed class OpenApiContractTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EveryRoute_HasAUniqueOperationId_ASuccessSchema_ARequestSchema_AndProblemDetailsErrors()
    {
        var routes = await OpenApiDocumentTests.MappedRoutesAsync();
        using var client = fixture.Service.CreateClient();
        var contract = await OpenApiContract.LoadAsync(client, Ct);
        var problems = new List<string>();
        var operationIds = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (mappedMethod, route) in routes)
        {
            var method = mappedMethod == "*" ? "GET" : mappedMethod;
            var path = OpenApiDocumentTests.OpenApiPath(route);
            var name = $"{method} {path}";
            JsonObject operation;
            try
            {
                operation = contract.Operation(method, path);
            }
            catch (Xunit.Sdk.XunitException ex)
            {
                problems.Add($"{name}: {ex.Message}");
                continue;
            }

            // A stable, unique operationId: what a generated client names the method after.
            if (operation["operationId"]?.GetValue<string>() is not { Length: > 0 } id)
            {
                problems.Add($"{name}: no operationId");
            }
            else if (!operationIds.TryAdd(id, name))
            {
                problems.Add($"{name}: operationId '{id}' is also {operationIds[id]}'s");
            }

            var responses = operation["responses"]!.AsObject();
            var successes = responses.Where(r => r.Key.StartsWith('2')).ToList();
            if (successes.Count == 0)
            {
                problems.Add($"{name}: no success response");
            }

            foreach (var (status, response) in successes)
            {
                var content = response!["content"]?.AsObject();
                if (content is null || content.Count == 0)
                {
                    problems.Add($"{name}: {status} declares no content");
                    continue;
                }

                foreach (var (mediaType, media) in content)
                {
                    if (media?["schema"] is not { } schema)
                    {
                        problems.Add($"{name}: {status} {mediaType} has no schema");
                    }
                    else if (mediaType.EndsWith("json", StringComparison.Ordinal) && path != "/openapi/v1.json" && !Describes(contract, schema))
                    {
                        problems.Add($"{name}: {status} {mediaType} has a schema without members ({schema.ToJsonString()})");
                    }
                }
            }

            if (method is "POST" or "PUT")
            {
                if (operation["requestBody"]?["content"]?.AsObject() is not { Count: > 0 } body)
                {
                    problems.Add($"{name}: no request body");
                }
                else
                {
                    foreach (var (mediaType, media) in body)
                    {
                        var schema = media?["schema"];
                        var ok = mediaType == "application/json"
                            ? schema is not null && Describes(contract, schema)
                            : schema is not null && contract.Resolve(schema)["format"]?.GetValue<string>() == "binary";
                        if (!ok)
                        {
                            problems.Add($"{name}: request body {mediaType} has no real schema ({schema?.ToJsonString()})");
                        }
                    }
                }
            }

            // Every refusal is RFC 9457 problem details: each 4xx/5xx the operation declares, and default, say so with the schema.
            var errors = responses.Where(r => r.Key[0] is '4' or '5' || r.Key == "default").ToList();
            if (!errors.Any(e => e.Key[0] == '4'))
            {
                problems.Add($"{name}: declares no 4xx");
            }

            foreach (var (status, response) in errors)
            {
                if (path == "/ready" && status == "503")
                {
                    continue; // not ready: the health report, as for 200
                }

                if (response!["content"]?["application/problem+json"]?["schema"]?["$ref"]?.GetValue<string>() != "#/components/schemas/ProblemDetails")
                {
                    problems.Add($"{name}: {status} is not application/problem+json with the ProblemDetails schema");
                }
            }

            if (!responses.ContainsKey("401"))
            {
                problems.Add($"{name}: no 401 (a key that is sent is checked on every route)");
            }
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems));

        // The problem details component: what RFC 9457 and the service guarantee.
        var problem = contract.Document["components"]!["schemas"]!["ProblemDetails"]!;
        Assert.Equal(["status", "title"], problem["required"]!.AsArray().Select(r => r!.GetValue<string>()).Order(StringComparer.Ordinal));
        foreach (var member in new[] { "type", "title", "status", "detail", "instance", "traceId" })
        {
            Assert.NotNull(problem["properties"]![member]);
        }
    }

    [Fact]
    public async Task EveryRef_Resolves_AndTheHeadersSentAreDeclared()
    {
        using var client = fixture.Service.CreateClient();
        var contract = await OpenApiContract.LoadAsync(client, Ct);
        var refs = new List<string>();
        Collect(contract.Document, refs);
        Assert.NotEmpty(refs);
        foreach (var reference in refs.Distinct())
        {
            contract.Resolve(new JsonObject { ["$ref"] = reference }); // throws when it does not resolve
        }

        var missing = new List<string>();
        foreach (var (method, path, operation) in contract.Operations)
        {
            foreach (var (status, response) in operation["responses"]!.AsObject())
            {
                var headers = response!["headers"]?.AsObject();
                var isProblem = response["content"]?["application/problem+json"] is not null;
                string[] expected = status switch
                {
                    "201" or "202" => ["Location"],
                    "401" => ["WWW-Authenticate"],
                    "429" => ["Retry-After"],
                    "503" when isProblem => ["Retry-After"],
                    "405" => ["Allow"],
                    _ => [],
                };
                missing.AddRange(expected.Where(h => headers?.ContainsKey(h) != true).Select(h => $"{method} {path} {status}: {h}"));
            }
        }

        Assert.True(missing.Count == 0, "headers sent but not declared: " + string.Join(", ", missing));
        Assert.NotNull(contract.Operation("POST", "/v1/backups")["responses"]!["201"]!["headers"]!["Har-Backup-Summary"]);
        foreach (var path in new[] { "/metrics", "/openapi/v1.json" })
        {
            var responses = contract.Operation("GET", path)["responses"]!.AsObject();
            Assert.True(responses.ContainsKey("401") && responses.ContainsKey("405"), $"GET {path} declares {string.Join(", ", responses.Select(r => r.Key))}");
        }
    }

    /// <summary>POST /v1/models refused unknown query parameters, yet declared none; the lists' filters were untyped strings.</summary>
    [Fact]
    public async Task TheQueryParametersEachRouteReads_AreDeclaredWithTypes()
    {
        using var client = fixture.Service.CreateClient();
        var contract = await OpenApiContract.LoadAsync(client, Ct);
        JsonObject Parameter(string method, string path, string name) =>
            contract.Operation(method, path)["parameters"]?.AsArray().Select(p => p!.AsObject()).FirstOrDefault(p => p["name"]!.GetValue<string>() == name && p["in"]!.GetValue<string>() == "query")
            ?? throw new Xunit.Sdk.XunitException($"{method} {path} declares no query parameter {name}");

        foreach (var (name, maxLength) in new[] { ("approved_by", 256), ("run_id", 128), ("target", 64) })
        {
            var schema = Parameter("POST", "/v1/models", name)["schema"]!;
            Assert.Equal(("string", maxLength, 1), (schema["type"]!.GetValue<string>(), schema["maxLength"]!.GetValue<int>(), schema["minLength"]!.GetValue<int>()));
        }

        foreach (var path in new[] { "/v1/models", "/v1/rollouts", "/v1/audit/events", "/v1/drift/alarms" })
        {
            var size = Parameter("GET", path, "page_size")["schema"]!;
            Assert.Equal(("integer", 1, 1000, 50), (size["type"]!.GetValue<string>(), size["minimum"]!.GetValue<int>(), size["maximum"]!.GetValue<int>(), size["default"]!.GetValue<int>()));
            Assert.Equal("string", Parameter("GET", path, "page")["schema"]!["type"]!.GetValue<string>());
        }

        string[] Values(string method, string path, string name) => [.. Parameter(method, path, name)["schema"]!["enum"]!.AsArray().Select(v => v!.GetValue<string>())];
        Assert.Equal(["deployment", "rollback", "event"], Values("GET", "/v1/audit/events", "kind"));
        Assert.Equal(["debug", "info", "notice", "warning", "error", "critical"], Values("GET", "/v1/audit/events", "min_severity"));
        Assert.Equal(["succeeded", "rolled_back", "aborted", "failed", "in_progress"], Values("GET", "/v1/rollouts", "outcome"));
        Assert.Contains("Units", Values("GET", "/v1/drift/alarms", "cause"));
        Assert.DoesNotContain("None", Values("GET", "/v1/drift/alarms", "cause"));
        var action = contract.Operation("POST", "/v1/rollouts/current/{action}")["parameters"]!.AsArray().Single(p => p!["in"]!.GetValue<string>() == "path")!;
        Assert.Equal(["approve", "promote", "pause", "resume", "abort", "rollback"], action["schema"]!["enum"]!.AsArray().Select(v => v!.GetValue<string>()));

        // Typed request members, with the limits the service enforces.
        var start = contract.Resolve(contract.Operation("POST", "/v1/rollouts")["requestBody"]!["content"]!["application/json"]!["schema"]!);
        Assert.Equal(["candidate"], start["required"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.False(start["additionalProperties"]!.GetValue<bool>());
        Assert.Equal(8192, start["properties"]!["reason"]!["maxLength"]!.GetValue<int>());
        Assert.Contains("blue-green", start["properties"]!["strategy"]!["enum"]!.AsArray().Select(v => v?.GetValue<string>()));
        var audit = contract.Resolve(contract.Operation("POST", "/v1/audit/events")["requestBody"]!["content"]!["application/json"]!["schema"]!);
        Assert.Equal(["action_details", "entity_id", "entity_type", "event_type", "severity"], audit["required"]!.AsArray().Select(r => r!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Equal(64, audit["properties"]!["event_type"]!["maxLength"]!.GetValue<int>());
        Assert.Equal("^[a-z][a-z0-9_.-]*$", audit["properties"]!["event_type"]!["pattern"]!.GetValue<string>());
        var backup = contract.Resolve(contract.Operation("POST", "/v1/backups")["requestBody"]!["content"]!["application/json"]!["schema"]!);
        Assert.Equal(8192, backup["properties"]!["reason"]!["maxLength"]!.GetValue<int>());
    }

    /// <summary>
    /// The example body of <c>POST /v1/rollouts/current/{action}</c>, and the hints of its refusals, said
    /// <c>"expected_phase": "Canary"</c>: not a phase, so the service refused its own example with 400.
    /// </summary>
    [Fact]
    public async Task TheRolloutCommandExample_NamesARealPhase_InTheDocumentAndTheHints()
    {
        using var client = fixture.Service.CreateClient(fixture.Service.OperatorKey);
        var contract = await OpenApiContract.LoadAsync(client, Ct);
        var body = contract.Operation("POST", "/v1/rollouts/current/{action}")["requestBody"]!;
        var description = body["description"]!.GetValue<string>();
        Assert.Contains("\"expected_phase\": \"Progressing\"", description, StringComparison.Ordinal);
        Assert.DoesNotContain("Canary", contract.Document.ToJsonString(), StringComparison.Ordinal);
        var command = contract.Resolve(body["content"]!["application/json"]!["schema"]!["anyOf"]![0]!);
        Assert.Contains("Progressing", command["properties"]!["expected_phase"]!["enum"]!.AsArray().Select(v => v?.GetValue<string>()));

        foreach (var (content, status) in new[] { (ServiceFixture.Bytes("x"u8.ToArray(), "text/plain"), HttpStatusCode.UnsupportedMediaType), (ServiceFixture.Json("{\"reason\":"), HttpStatusCode.BadRequest) })
        {
            using var response = await client.PostAsync("/v1/rollouts/current/pause", content, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == status, $"{(int)response.StatusCode} {text}");
            Assert.Contains("Progressing", text, StringComparison.Ordinal);
            Assert.DoesNotContain("Canary", text, StringComparison.Ordinal);
        }
    }

    /// <summary>The document's servers[0].url was built from the request's Host header: a cache in front would hand any client's host to everyone.</summary>
    [Fact]
    public async Task TheDocument_DoesNotEchoTheRequestHost()
    {
        using var client = fixture.Service.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/openapi/v1.json");
        request.Headers.Host = "evil.example";
        using var response = await client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("evil.example", text, StringComparison.Ordinal);
        var servers = JsonNode.Parse(text)!["servers"];
        Assert.True(servers is null || servers.AsArray().All(s => s!["url"]!.GetValue<string>().StartsWith('/')), $"servers: {servers?.ToJsonString()}");
    }

    /// <summary>
    /// The prediction routes and the model, rollout and incident reads are served to any key (and, unless
    /// PredictRequiresKey, to anonymous callers), but their "Needs:" prose named three roles: a labeller key is served.
    /// </summary>
    [Fact]
    public async Task ThePredictReads_SayAnyRoleIsServed_AndALabellerKeyIs()
    {
        using var anonymous = fixture.Service.CreateClient();
        var contract = await OpenApiContract.LoadAsync(anonymous, Ct);
        var predictReads = new[] { ("GET", "/v1/models"), ("GET", "/v1/models/{version}"), ("GET", "/v1/rollouts"), ("GET", "/v1/rollouts/current"), ("GET", "/v1/incidents/{id}"), ("GET", "/v1/drift"), ("GET", "/v1/drift/alarms"), ("POST", "/v1/predict"), ("POST", "/v1/streams/{streamId}/samples") };
        foreach (var (method, path) in predictReads)
        {
            var description = contract.Operation(method, path)["description"]!.GetValue<string>();
            Assert.Contains("any role (operator, auditor, predictor or labeller)", description, StringComparison.Ordinal);
            Assert.DoesNotContain("predictor, auditor or operator role", description, StringComparison.Ordinal);
        }

        using var labeller = fixture.Service.CreateClient(fixture.Service.LabellerKey);
        foreach (var path in new[] { "/v1/models", "/v1/rollouts", "/v1/drift", "/v1/drift/alarms" })
        {
            using var response = await labeller.GetAsync(path, Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path} with a labeller key: {(int)response.StatusCode}");
        }
    }

    /// <summary>Whether a JSON schema names members (an object with properties, an array of them, or a choice of such).</summary>
    private static bool Describes(OpenApiContract contract, JsonNode schema)
    {
        var resolved = contract.Resolve(schema);
        return resolved["properties"] is JsonObject { Count: > 0 }
            || (resolved["items"] is { } items && Describes(contract, items))
            || (resolved["oneOf"] ?? resolved["anyOf"]) is JsonArray { Count: > 0 } choices && choices.All(c => Describes(contract, c!));
    }

    private static void Collect(JsonNode? node, List<string> refs)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, child) in o)
                {
                    if (key == "$ref")
                    {
                        refs.Add(child!.GetValue<string>());
                    }
                    else
                    {
                        Collect(child, refs);
                    }
                }

                break;
            case JsonArray a:
                foreach (var child in a)
                {
                    Collect(child, refs);
                }

                break;
        }
    }
}
