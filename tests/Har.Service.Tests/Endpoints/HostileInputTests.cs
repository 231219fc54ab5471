using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// 10,000 malformed requests (seeded) against the real service, 16 at a time: random bytes, wrong content
/// types, wrong shapes, NaN/Inf, truncated JSON, huge bodies, unknown versions, path tricks, unknown
/// rollout actions, bad query parameters, wrong methods. None may get a 5xx, every error must be RFC 7807
/// problem details, and the process must stay alive and ready (and still predict).
/// </summary>
public sealed class HostileInputTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private const int Requests = 10_000;
    private const int Parallelism = 16;
    private const int Seed = 20261122;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] ContentTypes =
    [
        "application/json", "application/octet-stream", "text/plain", "application/xml", "multipart/form-data; boundary=x",
        "application/json; charset=utf-16", "application/x-www-form-urlencoded", "application/problem+json", "image/png",
        "application/octet-stream; foo=\"", "application/json;;;", "*/*",
    ];

    private static readonly string[] PathTricks =
    [
        "/v1/models/..%2F..%2Fetc", "/v1/models/..%2F..%2F..%2Fetc%2Fpasswd", "/v1/models/%2e%2e", "/v1/models/.", "/v1/models/..",
        "/v1/models/%00", "/v1/models/1.0.0%00.onnx", "/v1/models/..%5C..%5Cwindows", "/v1/models/current", "/v1/models/%252e%252e%252f",
        "/v1/models/CON", "/v1/models/" + new string('9', 300), "/v1/models/1.0.0/../1.1.0", "/v1//models", "/v1/models//",
        "/v1/streams/..%2F..%2Fetc/samples", "/v1/streams/%00/samples", "/v1/streams/" + new string('s', 300) + "/samples",
        "/v1/audit/proof/-1", "/v1/audit/proof/99999999999999999999", "/v1/audit/events/-5", "/v1/audit/events/9223372036854775807",
        "/v1/audit/proof/1e3", "/v1/rollouts/current/..%2F..%2Fapprove", "/%2e%2e/%2e%2e/etc/passwd", "/v1/predict/../metrics",
        "/v1/drift/..", "/metrics/..%2F..", "/v1/models/1.0.0%2F..%2F..%2Fregistry", "/v1/models/~", "/v1/models/*",
    ];

    private static readonly string[] RolloutActions =
    [
        "explode", "Approve", "APPROVE", "start", "Start", "approve ", "promote%00", "delete", "0", "-1", "%2e%2e", "rollback.json",
        "approve", "promote", "pause", "resume", "abort", "rollback",
    ];

    [Fact]
    public async Task TenThousandMalformedRequests_NoServerErrors_ProblemDetails_StillReady()
    {
        var service = fixture.Service;
        var random = new Random(Seed);
        var specs = Enumerable.Range(0, Requests).Select(i => Generate(random, i)).ToArray();

        using var anonymous = service.CreateClient();
        using var operatorClient = service.CreateClient(service.OperatorKey);
        using var auditor = service.CreateClient(service.AuditorKey);
        using var hugeAnonymous = service.CreateClient();
        using var hugeOperator = service.CreateClient(service.OperatorKey);
        var statusCounts = new ConcurrentDictionary<int, int>();
        var responses = new ConcurrentDictionary<string, int>();
        var failures = new ConcurrentQueue<string>();
        var parserRejections = 0;
        var closedWhileSending = 0;

        await Parallel.ForEachAsync(specs, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = TestContext.Current.CancellationToken }, async (spec, ct) =>
        {
            // Huge bodies go on their own connections: Kestrel closes a connection after refusing one, and a
            // pooled connection closed under another request would look like a failure of that request.
            var client = spec.Huge ? (spec.Key == KeyKind.Operator ? hugeOperator : hugeAnonymous)
                : spec.Key switch { KeyKind.Operator => operatorClient, KeyKind.Auditor => auditor, _ => anonymous };
            using var request = spec.Build();
            try
            {
                using var response = await client.SendAsync(request, ct);
                var status = (int)response.StatusCode;
                var body = await response.Content.ReadAsStringAsync(ct);
                statusCounts.AddOrUpdate(status, 1, (_, n) => n + 1);
                responses.AddOrUpdate($"{status} {spec.Kind}", 1, (_, n) => n + 1);
                if (status >= 500)
                {
                    failures.Enqueue($"#{spec.Id} {spec.Description}: {status} {Truncate(body, 400)}");
                }
                else if (status == 400 && spec.Description.Contains("%00", StringComparison.Ordinal) && body.Length == 0)
                {
                    // A NUL in the decoded path: Kestrel's HTTP parser rejects the request target before any
                    // application code runs (no body, connection closed), so there is no problem document to write.
                    Interlocked.Increment(ref parserRejections);
                }
                else if (status >= 400 && response.Content.Headers.ContentType?.MediaType != "application/problem+json")
                {
                    failures.Enqueue($"#{spec.Id} {spec.Description}: {status} with content type '{response.Content.Headers.ContentType}' instead of application/problem+json");
                }
            }
            catch (HttpRequestException) when (spec.Huge)
            {
                // Kestrel may answer 413 and close the connection while the client is still sending the body.
                Interlocked.Increment(ref closedWhileSending);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                failures.Enqueue($"#{spec.Id} {spec.Description}: no response ({ex.GetType().Name}: {ex.Message})");
            }
        });

        var summary = string.Join(", ", statusCounts.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}×{kv.Value}"))
            + $"; of the 400s, rejected by Kestrel's parser (no body): {parserRejections}; closed while sending a huge body: {closedWhileSending}";
        var byKind = string.Join("\n", responses.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"  {kv.Key}: {kv.Value}"));
        TestContext.Current.SendDiagnosticMessage($"hostile input: {summary}\n{byKind}");
        Assert.True(failures.IsEmpty, $"{failures.Count} bad responses (statuses: {summary}):\n{byKind}\n{string.Join("\n", failures.Take(40))}\n--- service output (tail) ---\n{Tail(service.Output, 6000)}");
        Assert.True(Requests == statusCounts.Values.Sum() + closedWhileSending, $"not every request was answered or accounted for: {summary}");
        Assert.DoesNotContain(statusCounts.Keys, s => s >= 500);
        Assert.True(closedWhileSending < Requests / 100, $"{closedWhileSending} huge-body requests got no response at all");

        // Alive, ready and still serving correct requests.
        Assert.False(service.HasExited, "the service process exited");
        using (var health = await anonymous.GetAsync("/health", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }

        using (var ready = await anonymous.GetAsync("/ready", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        var window = string.Join(",", Enumerable.Range(0, fixture.WindowValues).Select(i => (0.1 * Math.Sin(i * 0.05)).ToString("R", CultureInfo.InvariantCulture)));
        using var predict = await anonymous.PostAsync("/v1/predict", ServiceFixture.Json($"{{\"windows\":[[{window}]]}}"), Ct);
        Assert.Equal(HttpStatusCode.OK, predict.StatusCode);
        Assert.Contains("\"label\"", await predict.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    private enum KeyKind
    {
        None,
        Operator,
        Auditor,
    }

    private sealed record Spec(int Id, string Description, KeyKind Key, bool Huge, Func<HttpRequestMessage> Build)
    {
        /// <summary>The family of the request (the description up to its first number or colon), for the summary.</summary>
        public string Kind => string.Join(' ', Description.Split(' ').Take(2)).TrimEnd(':');
    }

    private Spec Generate(Random r, int id)
    {
        var w = fixture.WindowValues;
        var kind = r.Next(18);
        switch (kind)
        {
            case 0:
            {
                // Random bytes under a random content type to a random POST endpoint.
                var bytes = RandomBytes(r, r.Next(0, 6000));
                var ct = Pick(r, ContentTypes);
                var path = Pick(r, ["/v1/predict", "/v1/streams/s1/samples", "/v1/models", "/v1/rollouts", "/v1/rollouts/current/approve", "/v1/audit/events"]);
                var key = Pick(r, [KeyKind.None, KeyKind.Operator, KeyKind.Auditor]);
                return new(id, $"random bytes ({bytes.Length}) as {ct} to {path}", key, false, () => Post(path, ServiceFixture.Bytes(bytes, ct)));
            }

            case 1:
            {
                // Wrong shapes.
                var json = Pick(r,
                [
                    "{}", "[]", "null", "0", "\"windows\"", "{\"windows\":null}", "{\"windows\":[]}", "{\"windows\":\"x\"}",
                    "{\"windows\":[null]}", "{\"windows\":[[]]}", "{\"windows\":[[1,2,3]]}", "{\"windows\":[{\"a\":1}]}",
                    "{\"windows\":[[" + Floats(r, w - 1) + "]]}", "{\"windows\":[[" + Floats(r, w + 1) + "]]}",
                    "{\"windows\":[[" + Floats(r, w) + "]],\"extra\":1}", "{\"windows\":[[" + Floats(r, w) + "]],\"stream_id\":5}",
                    "{\"windows\":[[" + Floats(r, w) + "]],\"stream_id\":\"" + new string('x', 300) + "\"}",
                    "{\"windows\":[[[" + Floats(r, 6) + "]]]}", "{\"windows\":[[true,false]]}", "{\"windows\":[[\"1\",\"2\"]]}",
                    "{\"windows\":[[1e400]]}", "{\"windows\":[[" + string.Join(",", Enumerable.Repeat("1e39", w)) + "]]}",
                    "{\"windows\":" + new string('[', 2000) + new string(']', 2000) + "}",
                    "{\"samples\":[" + Floats(r, 6) + "]}", "{\"windows\":[[" + Floats(r, w) + "]]}{}",
                ]);
                var path = r.Next(4) == 0 ? "/v1/streams/shape/samples" : "/v1/predict";
                return new(id, $"wrong shape to {path}: {Truncate(json, 80)}", KeyKind.None, false, () => Post(path, ServiceFixture.Json(json)));
            }

            case 2:
            {
                // NaN / Infinity as JSON strings and bare literals, in windows and in stream samples.
                var bad = Pick(r, ["\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "NaN", "Infinity", "-Infinity", "\"nan\"", "\"1e999\"", "1e999", "-1e999"]);
                var values = Enumerable.Range(0, w).Select(_ => (r.NextDouble() - 0.5).ToString("R", CultureInfo.InvariantCulture)).ToArray();
                values[r.Next(w)] = bad;
                if (r.Next(2) == 0)
                {
                    var json = "{\"windows\":[[" + string.Join(",", values) + "]]}";
                    return new(id, $"non-finite {bad} in a window", KeyKind.None, false, () => Post("/v1/predict", ServiceFixture.Json(json)));
                }

                var samples = "{\"samples\":[" + string.Join(",", values) + "]}";
                return new(id, $"non-finite {bad} in stream samples", KeyKind.None, false, () => Post($"/v1/streams/nan-{r.Next(4)}/samples", ServiceFixture.Json(samples)));
            }

            case 3:
            {
                // Truncated JSON.
                var full = "{\"stream_id\":\"t\",\"windows\":[[" + Floats(r, w) + "],[" + Floats(r, w) + "]]}";
                var cut = full[..r.Next(0, full.Length - 1)];
                var path = Pick(r, ["/v1/predict", "/v1/streams/trunc/samples"]);
                return new(id, $"truncated JSON ({cut.Length} of {full.Length} chars) to {path}", KeyKind.None, false, () => Post(path, ServiceFixture.Json(cut)));
            }

            case 4:
            {
                // Huge bodies: only one request in ~100 (each is over the 1 MiB limit).
                if (r.Next(6) != 0)
                {
                    goto case 11;
                }

                var size = (int)ServiceFixture.MaxBodyBytes + r.Next(1, 1_000_000);
                var path = Pick(r, ["/v1/predict", "/v1/streams/huge/samples", "/v1/models", "/v1/audit/events"]);
                var ct = Pick(r, ["application/json", "application/octet-stream"]);
                var key = path is "/v1/models" or "/v1/audit/events" ? KeyKind.Operator : KeyKind.None;
                var chunked = r.Next(2) == 0;
                return new(id, $"huge body {size} bytes ({(chunked ? "chunked" : "content-length")}) to {path}", key, true, () =>
                {
                    HttpContent content = chunked ? new StreamContent(new MemoryStream(new byte[size])) : new ByteArrayContent(new byte[size]);
                    content.Headers.ContentType = new MediaTypeHeaderValue(ct);
                    var request = Post(path, content);
                    request.Headers.TransferEncodingChunked = chunked;
                    return request;
                });
            }

            case 5:
            {
                // Unknown versions.
                var version = Pick(r, ["9.9.9", "0.0.0", "1.0", "v1.0.0", "1.0.0-rc.1", "latest", "-1", "1.0.0.0.0", "\u00e9", "%F0%9F%92%A9", "1.0.0;rm -rf", "' OR 1=1 --"]);
                var mode = r.Next(3);
                return mode switch
                {
                    0 => new(id, $"GET unknown version {version}", KeyKind.None, false, () => new HttpRequestMessage(HttpMethod.Get, "/v1/models/" + version)),
                    1 => new(id, $"start rollout of unknown version {version}", KeyKind.Operator, false, () => Post("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{version}\"}}"))),
                    _ => new(id, $"start rollout with unknown strategy for {version}", KeyKind.Operator, false, () => Post("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{version}\",\"strategy\":\"yolo\"}}"))),
                };
            }

            case 6:
            {
                var path = Pick(r, PathTricks);
                var method = Pick(r, [HttpMethod.Get, HttpMethod.Post, HttpMethod.Get]);
                var key = Pick(r, [KeyKind.None, KeyKind.Operator, KeyKind.Auditor]);
                var bytes = RandomBytes(r, 64);
                return new(id, $"path trick {method} {path}", key, false, () =>
                {
                    var request = new HttpRequestMessage(method, new Uri(fixture.Service.BaseAddress, path));
                    if (method == HttpMethod.Post)
                    {
                        request.Content = ServiceFixture.Bytes(bytes, "application/octet-stream");
                    }

                    return request;
                });
            }

            case 7:
            {
                // Rollout actions (unknown ones, and known ones with no rollout to act on) with junk bodies.
                var action = Pick(r, RolloutActions);
                var body = Pick(r, ["", "{}", "{\"expected_phase\":\"Nope\"}", "{\"expected_revision\":\"x\"}", "{\"expected_revision\":-1,\"expected_phase\":\"Canary\"}", "{\"reason\":" + new string('[', 100) + "}", "not json"]);
                return new(id, $"rollout action '{action}' body {Truncate(body, 40)}", KeyKind.Operator, false, () =>
                    Post("/v1/rollouts/current/" + Uri.EscapeDataString(action), body.Length == 0 ? null : ServiceFixture.Json(body)));
            }

            case 8:
            {
                // Bad query parameters on audit queries.
                var query = Pick(r,
                [
                    "from=yesterday", "to=2026-13-45T99:99:99Z", "page_size=0", "page_size=-3", "page_size=100000", "page_size=abc",
                    "page=garbage", "page=" + new string('A', 5000), "page=%00%01", "from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
                    "event_type=" + new string('e', 3000), "entity_id=%FF%FE", "page_size=2147483648", "page=eyJ4IjoxfQ", "page=AAAAAAAAAAA=",
                ]);
                return new(id, $"audit query ?{Truncate(query, 60)}", KeyKind.Auditor, false, () => new HttpRequestMessage(HttpMethod.Get, "/v1/audit/events?" + query));
            }

            case 9:
            {
                // Stream ingest: random ids, partial frames, non-finite floats.
                var streamId = Pick(r, ["a", "b", "%20", "x%2Fy", "..", "%E2%80%AE", new string('z', 256), "s" + r.Next(1000)]);
                var count = Pick(r, [0, 1, 5, 7, 6 * r.Next(1, 400), 6 * r.Next(1, 50) + 1]);
                var floats = new float[count];
                for (var i = 0; i < count; i++)
                {
                    floats[i] = (float)(r.NextDouble() - 0.5);
                }

                if (count > 0 && r.Next(2) == 0)
                {
                    floats[r.Next(count)] = Pick(r, [float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, -float.MaxValue, float.Epsilon]);
                }

                var bytes = new byte[count * 4 + (r.Next(5) == 0 ? r.Next(1, 4) : 0)];
                Buffer.BlockCopy(floats, 0, bytes, 0, count * 4);
                return new(id, $"stream {streamId}: {bytes.Length} bytes", KeyKind.None, false, () => Post($"/v1/streams/{streamId}/samples", ServiceFixture.Bytes(bytes, "application/octet-stream")));
            }

            case 10:
            {
                // Raw float32 windows holding arbitrary bit patterns (NaN, Inf, subnormals, huge values).
                var windows = r.Next(1, 4);
                var bytes = RandomBytes(r, windows * w * 4);
                var streamHeader = r.Next(3) == 0 ? new string('h', r.Next(200, 400)) : null;
                return new(id, $"random float32 bit patterns in {windows} windows", KeyKind.None, false, () =>
                {
                    var request = Post("/v1/predict", ServiceFixture.Bytes(bytes, "application/octet-stream"));
                    if (streamHeader is not null)
                    {
                        request.Headers.Add("X-Stream-Id", streamHeader);
                    }

                    return request;
                });
            }

            case 11:
            {
                // Register junk as a model: random bytes, a truncated real model, an empty body.
                var source = ServiceFixture.ChampionPath(fixture.Service.ModelsDirectory);
                var mode = r.Next(3);
                byte[] bytes = mode switch
                {
                    0 => RandomBytes(r, r.Next(0, 4000)),
                    1 => File.ReadAllBytes(source).AsSpan(0, r.Next(1, (int)Math.Min(new FileInfo(source).Length, 1_000_000))).ToArray(),
                    _ => [],
                };
                var query = Pick(r, ["", "?approved_by=" + new string('a', 2000), "?run_id=%00", "?target=../../etc"]);
                return new(id, $"register junk model ({bytes.Length} bytes, mode {mode}){query[..Math.Min(query.Length, 30)]}", KeyKind.Operator, false, () => Post("/v1/models" + query, ServiceFixture.Bytes(bytes, "application/octet-stream")));
            }

            case 12:
            {
                // Malformed audit events.
                var json = Pick(r,
                [
                    "{}", "[]", "{\"event_type\":1}", "{\"event_type\":\"x\"}", "{\"event_type\":\"x\",\"entity_type\":\"y\",\"entity_id\":\"z\",\"severity\":\"apocalyptic\",\"action_details\":{}}",
                    "{\"event_type\":\"x\",\"entity_type\":\"y\",\"entity_id\":\"z\",\"severity\":\"info\",\"action_details\":" + new string('[', 5000) + "}",
                    "{\"event_type\":\"" + new string('x', 100_000) + "\"}", "{\"actor\":\"admin\",\"timestamp\":\"1970-01-01T00:00:00Z\"}", "\"\"", "{\"event_type\":\"x\"",
                    "{\"event_type\":\"x\",\"entity_type\":\"y\",\"entity_id\":\"z\",\"severity\":\"info\",\"action_details\":{\"n\":1e999}}",
                ]);
                return new(id, $"malformed audit event {Truncate(json, 60)}", KeyKind.Operator, false, () => Post("/v1/audit/events", ServiceFixture.Json(json)));
            }

            case 13:
            {
                // Wrong methods.
                var method = Pick(r, [HttpMethod.Put, HttpMethod.Delete, HttpMethod.Patch, new HttpMethod("PROPFIND"), HttpMethod.Trace]);
                var path = Pick(r, ["/v1/predict", "/v1/models", "/v1/models/1.0.0", "/v1/rollouts/current", "/v1/audit/events", "/health", "/metrics", "/v1/drift"]);
                var key = Pick(r, [KeyKind.None, KeyKind.Operator]);
                return new(id, $"{method} {path}", key, false, () => new HttpRequestMessage(method, path) { Content = method == HttpMethod.Trace ? null : ServiceFixture.Json("{}") });
            }

            case 14:
            {
                // Odd content-type parameters on otherwise valid-looking bodies.
                var ct = Pick(r, ["application/json; charset=utf-7", "application/json; charset=nonsense", "application/json; charset=utf-32", "application/octet-stream; charset=utf-8", "application/JSON", "application/vnd.api+json"]);
                var json = "{\"windows\":[[" + Floats(r, w) + "]]}";
                var bytes = Encoding.UTF8.GetBytes(json);
                return new(id, $"predict as {ct}", KeyKind.None, false, () => Post("/v1/predict", ServiceFixture.Bytes(bytes, ct)));
            }

            case 15:
            {
                // Operations with a wrong key, a huge key header, or an empty one.
                var header = Pick(r, ["", " ", new string('k', 8000), "ApiKey", "%C3%BC-percent-encoded-key-0123456789", fixture.Service.OperatorKey + " ", fixture.Service.OperatorKey[..^1]]);
                var path = Pick(r, ["/v1/models", "/v1/rollouts", "/v1/audit/events"]);
                return new(id, $"bad key ({header.Length} chars) on {path}", KeyKind.None, false, () =>
                {
                    var request = Post(path, ServiceFixture.Json("{}"));
                    request.Headers.TryAddWithoutValidation("X-Api-Key", header);
                    return request;
                });
            }

            case 16:
            {
                // Bad drift/model/rollout reads and a random route.
                var path = Pick(r, ["/v1/drift?x=1", "/v1/rollouts/current?expected=1", "/v1/models?page=-1", "/v1/" + Convert.ToHexString(RandomBytes(r, 8)), "/", "/v2/predict", "/v1/audit/checkpoint?size=-1"]);
                return new(id, $"GET {path}", Pick(r, [KeyKind.None, KeyKind.Auditor]), false, () => new HttpRequestMessage(HttpMethod.Get, path));
            }

            default:
            {
                // Empty bodies and missing content types on every POST endpoint.
                var path = Pick(r, ["/v1/predict", "/v1/streams/e/samples", "/v1/models", "/v1/rollouts", "/v1/rollouts/current/pause", "/v1/audit/events"]);
                var withType = r.Next(2) == 0;
                return new(id, $"empty body ({(withType ? "json" : "no content type")}) to {path}", KeyKind.Operator, false, () =>
                    Post(path, withType ? ServiceFixture.Json("") : new ByteArrayContent([])));
            }
        }
    }

    private static HttpRequestMessage Post(string path, HttpContent? content) => new(HttpMethod.Post, path) { Content = content };

    private static T Pick<T>(Random r, T[] items) => items[r.Next(items.Length)];

    private static byte[] RandomBytes(Random r, int count)
    {
        var bytes = new byte[count];
        r.NextBytes(bytes);
        return bytes;
    }

    private static string Floats(Random r, int count) =>
        string.Join(",", Enumerable.Range(0, count).Select(_ => ((float)(r.NextDouble() * 4 - 2)).ToString("R", CultureInfo.InvariantCulture)));

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    private static string Tail(string s, int max) => s.Length <= max ? s : s[^max..];
}
