using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Issue 17, point 9: invalid UTF-8 everywhere. 10,000 requests (seeded) to the real service carry invalid
/// bytes, overlong forms, encoded surrogates, escaped lone surrogates and out-of-range code points in the
/// path, the query, headers, JSON strings and member names, and binary bodies, anonymous and keyed. None may
/// get a 5xx; the text cases the service parses (stream ids, member names, path and query) must get 400 with
/// problem details; no response may show a stack trace or a path of the machine; valid non-ASCII text still works.
/// </summary>
public sealed class Utf8HostileInputTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private const int Requests = 10_000;
    private const int Parallelism = 16;
    private const int Seed = 17_09;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Byte sequences that are not valid UTF-8: invalid bytes, overlong forms, surrogates, beyond U+10FFFF, truncated.</summary>
    private static readonly byte[][] BadUtf8 =
    [
        [0xFF], [0xFE, 0xFF], [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xF0, 0x80, 0x80, 0xAF], [0xED, 0xA0, 0x80],
        [0xED, 0xBF, 0xBF], [0xED, 0xA0, 0xBD, 0xED, 0xB2, 0xA9], [0xF4, 0x90, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x80],
        [0xBF, 0x80], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x92], [0xC0, 0x80], [0xE0, 0x80, 0x80],
    ];

    /// <summary>JSON escapes of lone or misordered surrogates (valid JSON syntax, invalid Unicode).</summary>
    private static readonly string[] BadEscapes = ["\\ud800", "\\udc00", "\\ud800\\ud800", "\\udfffx", "x\\ud83d", "\\udc00\\ud800"];

    private static readonly Encoding Latin1 = Encoding.Latin1;

    /// <summary>Invisible formatting characters in a stream id (a bidirectional override, zero-width characters, a line separator) are refused on both endpoints, naming the character; visible non-ASCII ids are served.</summary>
    [Theory]
    [InlineData("dev\u202Eice", "U+202E")]
    [InlineData("dev\u200Bice", "U+200B")]
    [InlineData("\uFEFFdevice", "U+FEFF")]
    [InlineData("dev\u2028ice", "U+2028")]
    public async Task StreamIdWithAnInvisibleFormattingCharacter_Is400NamingIt(string escaped, string named)
    {
        using var client = fixture.Service.CreateClient();
        var card = ServiceFixture.ChampionCard(fixture.Service.ModelsDirectory);
        using (var predict = await client.PostAsync("/v1/predict", ServiceFixture.Json($"{{\"stream_id\":\"{escaped}\",\"windows\":[[{Zeros(card.WindowLength * card.ChannelCount)}]]}}"), Ct))
        {
            var body = await predict.Content.ReadAsStringAsync(Ct);
            Assert.True(predict.StatusCode == HttpStatusCode.BadRequest, $"{(int)predict.StatusCode} {body}");
            Assert.Contains($"invisible formatting character ({named}", body, StringComparison.Ordinal);
        }

        var id = Uri.EscapeDataString(System.Text.RegularExpressions.Regex.Unescape(escaped));
        using (var append = await client.PostAsync($"/v1/streams/{id}/samples", ServiceFixture.Json("{\"samples\":[0,0,9.8,0,0,0]}"), Ct))
        {
            var body = await append.Content.ReadAsStringAsync(Ct);
            Assert.True(append.StatusCode == HttpStatusCode.BadRequest, $"{(int)append.StatusCode} {body}");
            Assert.Contains($"invisible formatting character ({named}", body, StringComparison.Ordinal);
        }

        using var visible = await client.PostAsync($"/v1/streams/{Uri.EscapeDataString("Gerät-ü-7")}/samples", ServiceFixture.Json("{\"samples\":[0,0,9.8,0,0,0]}"), Ct);
        Assert.Equal(HttpStatusCode.OK, visible.StatusCode);
    }

    [Fact]
    public async Task TenThousandInvalidUtf8Requests_NoServerErrors_400ForParsedText_NoInternalsLeak()
    {
        var service = fixture.Service;
        var random = new Random(Seed);
        var specs = Enumerable.Range(0, Requests).Select(i => Generate(random, i)).ToArray();

        // Headers are sent as Latin-1 so that arbitrary bytes (0x80-0xFF) reach the server as they are.
        using var handler = new SocketsHttpHandler { RequestHeaderEncodingSelector = (_, _) => Latin1 };
        using var client = new HttpClient(handler, disposeHandler: false) { BaseAddress = service.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        var statuses = new ConcurrentDictionary<int, int>();
        var byKind = new ConcurrentDictionary<string, int>();
        var failures = new ConcurrentQueue<string>();
        var kestrelRejections = 0;
        var internals = new[] { service.Root, service.DataDirectory, service.ModelsDirectory, Path.GetTempPath().TrimEnd('/'), Har.Testing.TestPaths.RepoRoot };

        await Parallel.ForEachAsync(specs, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = Ct }, async (spec, ct) =>
        {
            using var request = spec.Build();
            if (spec.Key is { } key)
            {
                request.Headers.TryAddWithoutValidation("X-Api-Key", key == "operator" ? service.OperatorKey : service.AuditorKey);
            }

            HttpResponseMessage response;
            try
            {
                response = await client.SendAsync(request, ct);
            }
            catch (HttpRequestException ex)
            {
                failures.Enqueue($"#{spec.Id} {spec.Description}: no response ({ex.Message})");
                return;
            }

            using (response)
            {
                var status = (int)response.StatusCode;
                var body = await response.Content.ReadAsStringAsync(ct);
                statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
                byKind.AddOrUpdate($"{spec.Kind} -> {status}", 1, (_, n) => n + 1);
                if (status >= 500)
                {
                    failures.Enqueue($"#{spec.Id} {spec.Description}: {status} {Truncate(body, 300)}");
                }
                else if (spec.Expected is { } expected && status != expected)
                {
                    failures.Enqueue($"#{spec.Id} {spec.Description}: {status}, expected {expected}: {Truncate(body, 300)}");
                }
                else if (status >= 400 && body.Length == 0)
                {
                    // Kestrel's own parser refuses bytes it does not accept in a header (no application code runs).
                    Interlocked.Increment(ref kestrelRejections);
                }
                else if (status >= 400 && response.Content.Headers.ContentType?.MediaType != "application/problem+json")
                {
                    failures.Enqueue($"#{spec.Id} {spec.Description}: {status} as '{response.Content.Headers.ContentType}', not problem details");
                }

                if (body.Contains("   at ", StringComparison.Ordinal) || body.Contains(".cs:line", StringComparison.Ordinal) || internals.Any(p => body.Contains(p, StringComparison.Ordinal)))
                {
                    failures.Enqueue($"#{spec.Id} {spec.Description}: the response shows internals: {Truncate(body, 400)}");
                }
            }
        });

        var summary = string.Join(", ", statuses.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}×{kv.Value}")) + $"; empty-bodied refusals by Kestrel: {kestrelRejections}";
        var kinds = string.Join("\n", byKind.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"  {kv.Key}: {kv.Value}"));
        TestContext.Current.SendDiagnosticMessage($"invalid UTF-8 suite: {summary}\n{kinds}");
        Assert.True(failures.IsEmpty, $"{failures.Count} bad responses ({summary}):\n{kinds}\n{string.Join("\n", failures.Take(30))}\n--- service output (tail) ---\n{Tail(service.Output, 4000)}");
        Assert.Equal(Requests, statuses.Values.Sum());
        Assert.DoesNotContain(statuses.Keys, s => s >= 500);
        Assert.False(service.HasExited, "the service process exited");

        // Valid non-ASCII text is still accepted: a stream id with accents, an emoji and a right-to-left name.
        foreach (var id in new[] { "capteur-été", "watch-\U0001F600", "שעון-1" })
        {
            using var ok = await client.PostAsync($"/v1/streams/{Uri.EscapeDataString(id)}/samples", ServiceFixture.Json("{\"samples\":[0.1,0.2,9.8,0,0,0]}"), Ct);
            var text = await ok.Content.ReadAsStringAsync(Ct);
            Assert.True(ok.StatusCode == HttpStatusCode.OK, $"stream id '{id}': {(int)ok.StatusCode} {text}");
            Assert.Contains("\"frames\":1", text, StringComparison.Ordinal);
        }
    }

    private sealed record Spec(int Id, string Kind, string Description, string? Key, int? Expected, Func<HttpRequestMessage> Build);

    private Spec Generate(Random r, int id)
    {
        var bad = BadUtf8[r.Next(BadUtf8.Length)];
        var escaped = string.Concat(bad.Select(b => "%" + b.ToString("X2", CultureInfo.InvariantCulture)));
        var hex = Convert.ToHexString(bad);
        var w = fixture.WindowValues;
        switch (r.Next(12))
        {
            case 0:
            {
                // stream_id of a predict body: invalid bytes or an escaped lone surrogate.
                var useEscape = r.Next(3) == 0;
                var value = useEscape ? Encoding.ASCII.GetBytes(BadEscapes[r.Next(BadEscapes.Length)]) : [(byte)'d', .. bad, (byte)'1'];
                var body = Concat("{\"stream_id\":\""u8.ToArray(), value, Encoding.ASCII.GetBytes($"\",\"windows\":[[{Zeros(w)}]]}}"));
                return new(id, "json stream_id", $"stream_id {(useEscape ? Encoding.ASCII.GetString(value) : hex)}", null, 400, () => Post("/v1/predict", Json(body)));
            }

            case 1:
            {
                // A member name of a predict or samples body.
                var path = r.Next(2) == 0 ? "/v1/predict" : $"/v1/streams/m{r.Next(50)}/samples";
                var useEscape = r.Next(3) == 0;
                var name = useEscape ? Encoding.ASCII.GetBytes(BadEscapes[r.Next(BadEscapes.Length)]) : [(byte)'w', .. bad];
                var body = Concat("{\""u8.ToArray(), name, "\":[1]}"u8.ToArray());
                return new(id, "json member name", $"member {(useEscape ? Encoding.ASCII.GetString(name) : hex)} to {path}", null, 400, () => Post(path, Json(body)));
            }

            case 2:
            {
                // Invalid bytes in the path: stream ids, versions, rollout actions, audit indexes, unknown routes.
                var (path, key) = r.Next(5) switch
                {
                    0 => ($"/v1/streams/s{escaped}/samples", (string?)null),
                    1 => ($"/v1/models/1.0.{escaped}", null),
                    2 => ($"/v1/rollouts/current/{escaped}pause", "operator"),
                    3 => ($"/v1/audit/events/{escaped}", "auditor"),
                    _ => ($"/v1/{escaped}/predict", null),
                };
                var method = path.StartsWith("/v1/streams", StringComparison.Ordinal) || path.StartsWith("/v1/rollouts", StringComparison.Ordinal) ? HttpMethod.Post : HttpMethod.Get;
                return new(id, "path", $"{method} {path}", key, 400, () => new HttpRequestMessage(method, path)
                {
                    Content = method == HttpMethod.Post ? ServiceFixture.Json("{\"samples\":[0,0,0,0,0,0]}") : null,
                });
            }

            case 3:
            {
                // Invalid bytes in the query: the predict stream id, audit filters, an ignored parameter.
                var (path, key, content) = r.Next(3) switch
                {
                    0 => ($"/v1/predict?stream_id=q{escaped}", (string?)null, (HttpContent?)ServiceFixture.Bytes(new byte[w * sizeof(float)], "application/octet-stream")),
                    1 => ($"/v1/audit/events?entity_id={escaped}&actor=a{escaped}", "auditor", null),
                    _ => ($"/v1/models?note={escaped}", null, null),
                };
                var method = content is null ? HttpMethod.Get : HttpMethod.Post;
                return new(id, "query", $"{method} {path}", key, 400, () => new HttpRequestMessage(method, path) { Content = content });
            }

            case 4:
            {
                // Raw invalid bytes in headers: the stream id, the key, the content type's charset, Origin, any header.
                var value = Latin1.GetString(bad);
                var which = r.Next(5);
                var header = which switch { 0 => "X-Stream-Id", 1 => "X-Api-Key", 2 => "Content-Type", 3 => "Origin", _ => "X-Note" };
                return new(id, "header", $"{header}: {hex}", null, null, () =>
                {
                    var content = new ByteArrayContent(new byte[w * sizeof(float)]);
                    if (which == 2)
                    {
                        content.Headers.TryAddWithoutValidation("Content-Type", "application/json; charset=" + value);
                    }
                    else
                    {
                        content.Headers.TryAddWithoutValidation("Content-Type", "application/octet-stream");
                    }

                    var request = Post("/v1/predict", content);
                    if (which != 2)
                    {
                        request.Headers.TryAddWithoutValidation(header, "h" + value);
                    }

                    return request;
                });
            }

            case 5:
            {
                // Operator JSON bodies: rollout start and commands, with invalid text in values and member names.
                var text = r.Next(3) == 0 ? Encoding.ASCII.GetBytes(BadEscapes[r.Next(BadEscapes.Length)]) : bad;
                var (path, body) = r.Next(4) switch
                {
                    0 => ("/v1/rollouts", Concat("{\"candidate\":\"1.1."u8.ToArray(), text, "\"}"u8.ToArray())),
                    1 => ("/v1/rollouts", Concat("{\"candidate\":\"1.1.0\",\"reason\":\""u8.ToArray(), text, "\"}"u8.ToArray())),
                    2 => ("/v1/rollouts/current/pause", Concat("{\"reason\":\""u8.ToArray(), text, "\"}"u8.ToArray())),
                    _ => ("/v1/rollouts/current/abort", Concat("{\""u8.ToArray(), text, "\":\"x\"}"u8.ToArray())),
                };
                return new(id, "operator json", $"POST {path} with {Convert.ToHexString(text)}", "operator", null, () => Post(path, Json(body)));
            }

            case 6:
            {
                // Audit events with invalid text in each field and in member names.
                var text = r.Next(3) == 0 ? Encoding.ASCII.GetBytes(BadEscapes[r.Next(BadEscapes.Length)]) : bad;
                var field = r.Next(6);
                byte[] S(int f, string v) => f == field ? Concat("\""u8.ToArray(), text, "\""u8.ToArray()) : Encoding.ASCII.GetBytes($"\"{v}\"");
                var body = field == 5
                    ? Concat("{\"event_type\":\"t\",\"entity_type\":\"e\",\"entity_id\":\"i\",\"severity\":\"info\",\"action_details\":{\""u8.ToArray(), text, "\":1}}"u8.ToArray())
                    : Concat("{\"event_type\":"u8.ToArray(), S(0, "t"), ",\"entity_type\":"u8.ToArray(), S(1, "e"), ",\"entity_id\":"u8.ToArray(), S(2, "i"),
                        ",\"severity\":"u8.ToArray(), S(3, "info"), ",\"action_details\":{\"note\":"u8.ToArray(), S(4, "n"), "}}"u8.ToArray());
                return new(id, "audit event", $"audit event field {field} with {Convert.ToHexString(text)}", "operator", 400, () => Post("/v1/audit/events", Json(body)));
            }

            case 7:
            {
                // Binary bodies full of invalid UTF-8 under a JSON content type (the parsers must not decode them as text).
                var body = new byte[r.Next(1, 2048)];
                for (var i = 0; i < body.Length; i++)
                {
                    body[i] = bad[i % bad.Length];
                }

                var path = new[] { "/v1/predict", "/v1/streams/bin/samples", "/v1/rollouts", "/v1/audit/events" }[r.Next(4)];
                var key = path is "/v1/rollouts" or "/v1/audit/events" ? "operator" : null;
                return new(id, "binary as json", $"{body.Length} invalid bytes as JSON to {path}", key, 400, () => Post(path, Json(body)));
            }

            case 8:
            {
                // Binary bodies as octet-stream: float32 frames whose bytes are invalid UTF-8, and a model upload of them.
                var frames = r.Next(1, 40);
                var body = new byte[frames * fixture.Champion.ChannelCount * sizeof(float)];
                for (var i = 0; i < body.Length; i++)
                {
                    body[i] = bad[i % bad.Length];
                }

                return r.Next(3) == 0
                    ? new(id, "binary model", $"model upload of {body.Length} invalid bytes", "operator", null, () => Post("/v1/models", ServiceFixture.Bytes(body, "application/octet-stream")))
                    : new(id, "binary frames", $"{frames} frames of bytes {hex} to a stream", null, null, () => Post($"/v1/streams/b{r.Next(20)}/samples", ServiceFixture.Bytes(body, "application/octet-stream")));
            }

            case 9:
            {
                // Invalid bytes inside numbers and between tokens of a samples body.
                var body = Concat("{\"samples\":[1.0,"u8.ToArray(), bad, ",2.0]}"u8.ToArray());
                return new(id, "json array", $"samples with bytes {hex} between numbers", null, 400, () => Post($"/v1/streams/n{r.Next(20)}/samples", Json(body)));
            }

            case 10:
            {
                // Control characters and lone surrogates in a stream id sent as escaped JSON (valid UTF-8 bytes).
                var value = new[] { "\\u0000", "\\u001b[31m", "a\\nb", "\\ud800", "\\u007f" }[r.Next(5)];
                var body = Encoding.ASCII.GetBytes($"{{\"stream_id\":\"{value}\",\"windows\":[[{Zeros(w)}]]}}");
                return new(id, "json stream_id control", $"stream_id {value}", null, 400, () => Post("/v1/predict", Json(body)));
            }

            default:
            {
                // Invalid bytes in the path of the prediction endpoints, anonymous, with a valid body.
                var path = $"/v1/streams/{escaped}/samples";
                return new(id, "stream path", $"POST {path}", null, 400, () => Post(path, ServiceFixture.Json("{\"samples\":[0,0,9.8,0,0,0]}")));
            }
        }
    }

    private static HttpRequestMessage Post(string path, HttpContent? content) => new(HttpMethod.Post, path) { Content = content };

    private static ByteArrayContent Json(byte[] body) => ServiceFixture.Bytes(body, "application/json");

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    private static string Zeros(int count) => string.Join(",", Enumerable.Repeat("0", count));

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    private static string Tail(string s, int max) => s.Length <= max ? s : s[^max..];
}
