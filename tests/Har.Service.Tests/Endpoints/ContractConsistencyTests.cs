using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Found from outside, by a black-box check against the OpenAPI document: routes that answered the same mistake in
/// different ways, and docs that said more than the service did. Each test here failed before its fix.
/// </summary>
public sealed partial class ContractConsistencyTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// The feedback routes checked the media type by prefix (application/jsonx, "application/json;;;" and any charset were
    /// taken; application/problem+json was refused), and they and the audit append ignored the declared charset
    /// (charset=bogus was taken). Now they refuse what every JSON route refuses (POST /v1/backups here for comparison).
    /// </summary>
    [Fact]
    public async Task FeedbackAndAuditAppend_RefuseTheMediaTypesAndCharsets_TheOtherJsonRoutesRefuse()
    {
        using var labeller = fixture.Service.CreateClient(fixture.Service.LabellerKey);
        using var op = fixture.Service.CreateClient(fixture.Service.OperatorKey);
        var routes = new (HttpClient Client, string Path, string Body)[]
        {
            (labeller, "/v1/feedback", Labels("cm-1", withStream: true)),
            (labeller, "/v1/streams/cm-1/feedback", Labels("cm-1", withStream: false)),
            (op, "/v1/audit/events", AuditEvent("media-" + Guid.NewGuid().ToString("N"))),
            (op, "/v1/backups", "{\"reason\":\"media type\"}"),
        };
        foreach (var contentType in new[] { "application/jsonx", "application/json;;;", "application/json; charset=bogus", "application/json; charset=utf-7", "text/plain" })
        {
            foreach (var (client, path, body) in routes)
            {
                using var response = await client.PostAsync(path, ServiceFixture.Bytes(Encoding.UTF8.GetBytes(body), contentType), Ct);
                var text = await response.Content.ReadAsStringAsync(Ct);
                Assert.True(response.StatusCode == HttpStatusCode.UnsupportedMediaType, $"POST {path} as '{contentType}': {(int)response.StatusCode} {text}");
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            }
        }
    }

    /// <summary>
    /// A body in a declared charset other than UTF-8 was read as UTF-8 by the feedback routes and the audit append (a real
    /// UTF-16 event: 400 "not valid UTF-8"), where the other JSON routes decode it. Now they decode it too, accept
    /// application/problem+json as the others do, and refuse bytes that are not valid in the declared charset.
    /// </summary>
    [Fact]
    public async Task FeedbackAndAuditAppend_DecodeADeclaredCharset_AndTakeProblemJson_AsTheOtherJsonRoutes()
    {
        using var labeller = fixture.Service.CreateClient(fixture.Service.LabellerKey);
        using var op = fixture.Service.CreateClient(fixture.Service.OperatorKey);
        using var auditor = fixture.Service.CreateClient(fixture.Service.AuditorKey);
        var utf16 = Encoding.Unicode;
        var cases = new (string ContentType, Func<string, byte[]> Encode)[]
        {
            ("application/problem+json", Encoding.UTF8.GetBytes),
            ("application/json; charset=utf-16", s => [.. utf16.GetPreamble(), .. utf16.GetBytes(s)]),
            ("application/json; charset=UTF-16LE", utf16.GetBytes),
            ("application/json; charset=iso-8859-1", Encoding.Latin1.GetBytes),
        };
        foreach (var (contentType, encode) in cases)
        {
            foreach (var path in new[] { "/v1/feedback", "/v1/streams/cs-1/feedback" })
            {
                using var response = await labeller.PostAsync(path, ServiceFixture.Bytes(encode(Labels("cs-1", withStream: path == "/v1/feedback")), contentType), Ct);
                var text = await response.Content.ReadAsStringAsync(Ct);
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"POST {path} as '{contentType}': {(int)response.StatusCode} {text}");
            }

            // The audit event records the text as sent, decoded from its charset: the é of the entity id is an é.
            var entity = "café-" + Guid.NewGuid().ToString("N");
            using (var append = await op.PostAsync("/v1/audit/events", ServiceFixture.Bytes(encode(AuditEvent(entity)), contentType), Ct))
            {
                var text = await append.Content.ReadAsStringAsync(Ct);
                Assert.True(append.StatusCode == HttpStatusCode.Created, $"POST /v1/audit/events as '{contentType}': {(int)append.StatusCode} {text}");
            }

            using var found = JsonDocument.Parse(await auditor.GetStringAsync($"/v1/audit/events?entity_id={Uri.EscapeDataString(entity)}", Ct));
            Assert.Single(found.RootElement.GetProperty("entries").EnumerateArray());
        }

        // Bytes that are not text in the declared charset: refused, never recorded with replacement characters.
        foreach (var (contentType, bytes) in new[] { ("application/json; charset=us-ascii", Encoding.Latin1.GetBytes(AuditEvent("caf\u00e9-ascii"))), ("application/json; charset=utf-16", [.. utf16.GetBytes(AuditEvent("odd")), 0x7b]) })
        {
            using var append = await op.PostAsync("/v1/audit/events", ServiceFixture.Bytes(bytes, contentType), Ct);
            var text = await append.Content.ReadAsStringAsync(Ct);
            Assert.True(append.StatusCode == HttpStatusCode.BadRequest, $"'{contentType}': {(int)append.StatusCode} {text}");
            Assert.Contains("charset", text, StringComparison.Ordinal);
        }
    }

    /// <summary>PUT of an incident that GET says does not exist answered 409 ("not a rolled-back rollout"); now 404, as GET.</summary>
    [Fact]
    public async Task PutIncident_OfAnUnknownId_Is404_AsGet()
    {
        using var op = fixture.Service.CreateClient(fixture.Service.OperatorKey);
        var id = "incident-rollout-nope-" + Guid.NewGuid().ToString("N")[..8];
        using var get = await op.GetAsync($"/v1/incidents/{id}", Ct);
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        using var put = await op.PutAsync($"/v1/incidents/{id}", ServiceFixture.Json("{\"cause\":\"x\"}"), Ct);
        var text = await put.Content.ReadAsStringAsync(Ct);
        Assert.True(put.StatusCode == HttpStatusCode.NotFound, $"{(int)put.StatusCode} {text}");
        Assert.Contains("No incident", text, StringComparison.Ordinal);
    }

    /// <summary>kind was the only enum filter that ignored case (kind=DEPLOYMENT was taken, severity=DEBUG was not): all take the documented names exactly.</summary>
    [Fact]
    public async Task EveryEnumFilter_TakesTheDocumentedNamesExactly()
    {
        using var auditor = fixture.Service.CreateClient(fixture.Service.AuditorKey);
        foreach (var (query, ok) in new[]
        {
            ("/v1/audit/events?kind=deployment", true), ("/v1/audit/events?kind=DEPLOYMENT", false), ("/v1/audit/events?kind=Deployment", false), ("/v1/audit/events?kind=Event", false),
            ("/v1/audit/events?severity=info", true), ("/v1/audit/events?severity=INFO", false),
            ("/v1/rollouts?outcome=succeeded", true), ("/v1/rollouts?outcome=SUCCEEDED", false),
            ("/v1/drift/alarms?cause=Units", true), ("/v1/drift/alarms?cause=units", false),
        })
        {
            using var response = await auditor.GetAsync(query, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == (ok ? HttpStatusCode.OK : HttpStatusCode.BadRequest), $"{query}: {(int)response.StatusCode} {text}");
        }
    }

    /// <summary>A blank candidate got the library's "The value cannot be an empty string or composed entirely of whitespace.", naming no member.</summary>
    [Fact]
    public async Task StartRollout_WithABlankCandidate_NamesTheMember()
    {
        using var op = fixture.Service.CreateClient(fixture.Service.OperatorKey);
        foreach (var candidate in new[] { " ", "\\t", "   \\n " })
        {
            using var response = await op.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\"}}"), Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {text}");
            Assert.Contains("'candidate'", text, StringComparison.Ordinal);
        }
    }

    /// <summary>The backup's reason had no bound of its own (100,000 characters were taken); it has the rollout texts' 8,192, named in the refusal.</summary>
    [Fact]
    public async Task BackupReason_IsBoundedAt8192Characters_NamingIt()
    {
        using var op = fixture.Service.CreateClient(fixture.Service.OperatorKey);
        int Count(string list) => JsonDocument.Parse(list).RootElement.GetProperty("backups").GetArrayLength();
        var before = Count(await op.GetStringAsync("/v1/backups", Ct));
        using (var response = await op.PostAsync("/v1/backups", ServiceFixture.Json(JsonSerializer.Serialize(new { reason = new string('r', 8193) })), Ct))
        {
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {text}");
            Assert.Contains("reason has 8,193 characters; expected at most 8,192", text, StringComparison.Ordinal);
        }

        Assert.Equal(before, Count(await op.GetStringAsync("/v1/backups", Ct)));
        using (var response = await op.PostAsync("/v1/backups", ServiceFixture.Json(JsonSerializer.Serialize(new { reason = new string('r', 8192) })), Ct))
        {
            Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }
    }

    /// <summary>The prediction bodies' details said "is a array" and "is a object".</summary>
    [Fact]
    public async Task PredictionBodyErrors_SayAnArray_AndAnObject()
    {
        using var client = fixture.Service.CreateClient();
        foreach (var (path, body, expected) in new[]
        {
            ("/v1/predict", "[1]", "The body is an array;"),
            ("/v1/predict", "{\"windows\": {}}", "'windows' is an object;"),
            ("/v1/predict", "{\"windows\": [{}]}", "windows[0] is an object;"),
            ("/v1/predict", "{\"windows\": [[[1]]]}", "windows[0][0] is an array;"),
            ("/v1/streams/wording/samples", "{\"samples\": {}}", "'samples' is an object;"),
            ("/v1/streams/wording/samples", "{\"samples\": \"x\"}", "'samples' is a string;"),
        })
        {
            using var response = await client.PostAsync(path, ServiceFixture.Json(body), Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path} {body}: {(int)response.StatusCode} {text}");
            Assert.Contains(expected, text, StringComparison.Ordinal);
            Assert.DoesNotMatch(AnArticle(), text);
        }
    }

    /// <summary><c>{"a":}</c> was reported as "Unknown member 'a'": the body is not JSON, and says so.</summary>
    [Fact]
    public async Task ABodyThatIsNotJson_IsMalformedJson_EvenWithAnUnknownMemberFirst()
    {
        using var client = fixture.Service.CreateClient();
        foreach (var path in new[] { "/v1/predict", "/v1/streams/malformed/samples" })
        {
            foreach (var (body, title, detail) in new[] { ("{\"a\":}", "Malformed JSON", "Malformed JSON"), ("{\"a\":1,", "Malformed JSON", "Malformed JSON"), ("{\"a\":1}", "Bad Request", "Unknown member 'a'") })
            {
                using var response = await client.PostAsync(path, ServiceFixture.Json(body), Ct);
                var text = await response.Content.ReadAsStringAsync(Ct);
                Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path} {body}: {(int)response.StatusCode} {text}");
                using var problem = JsonDocument.Parse(text);
                Assert.True(problem.RootElement.GetProperty("title").GetString() == title && problem.RootElement.GetProperty("detail").GetString()!.Contains(detail, StringComparison.Ordinal), $"{path} {body}: {text}");
            }
        }
    }

    /// <summary>docs/service-api.md said GET /v1/models/{version} "shows the card"; the answer had no card.</summary>
    [Fact]
    public async Task ModelDetail_ShowsTheCard()
    {
        using var client = fixture.Service.CreateClient();
        var version = fixture.Champion.ModelVersion;
        using var detail = JsonDocument.Parse(await client.GetStringAsync($"/v1/models/{version}", Ct));
        var card = detail.RootElement.GetProperty("card");
        Assert.Equal(version, card.GetProperty("har.model_version").GetString());
        Assert.Equal(fixture.Champion.WindowLength.ToString(System.Globalization.CultureInfo.InvariantCulture), card.GetProperty("har.window_length").GetString());
        Assert.Equal(fixture.Champion.Channels, JsonSerializer.Deserialize<string[]>(card.GetProperty("har.channels").GetString()!));
        Assert.Equal(fixture.Champion.Labels, JsonSerializer.Deserialize<string[]>(card.GetProperty("har.labels").GetString()!));
    }

    /// <summary>The README's route table left out GET and PUT /v1/incidents/{id} and POST /v1/rollouts/rollback.</summary>
    [Fact]
    public async Task TheReadmeRouteTable_ListsEveryRoute()
    {
        var readme = await File.ReadAllTextAsync(Path.Combine(Har.Testing.TestPaths.RepoRoot, "samples", "Har.Service", "README.md"), Ct);
        var table = readme[readme.IndexOf("## Routes", StringComparison.Ordinal)..readme.IndexOf("## Configuration", StringComparison.Ordinal)];
        var listed = RouteInTable().Matches(table).Select(m => $"{m.Groups["method"].Value} {m.Groups["path"].Value}").ToHashSet(StringComparer.Ordinal);
        var missing = (await OpenApiDocumentTests.MappedRoutesAsync())
            .Select(r => $"{(r.Method == "*" ? "GET" : r.Method)} {OpenApiDocumentTests.OpenApiPath(r.Route)}")
            .Where(r => !listed.Contains(r))
            .ToList();
        Assert.True(missing.Count == 0, "routes the README's table does not list: " + string.Join(", ", missing));
    }

    private string Labels(string stream, bool withStream) =>
        $"{{\"labels\": [{{{(withStream ? $"\"stream_id\": \"{stream}\", " : "")}\"activity\": \"{fixture.Champion.Labels[0]}\", \"start_frame\": 0, \"end_frame\": 400}}]}}";

    private static string AuditEvent(string entity) =>
        $"{{\"event_type\": \"ops.charset\", \"entity_type\": \"node\", \"entity_id\": \"{entity}\", \"severity\": \"info\", \"action_details\": {{\"note\": \"d\u00e9j\u00e0 vu\"}}}}";

    [GeneratedRegex(@"\ba (array|object)\b")]
    private static partial Regex AnArticle();

    [GeneratedRegex(@"`(?<method>GET|POST|PUT|DELETE|PATCH) (?<path>/[^`\s]*)`")]
    private static partial Regex RouteInTable();
}
