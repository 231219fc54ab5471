using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Har.Fleet.Tests;

/// <summary>One answer to a stream append: which replica nginx chose, the windows completed (start frame, version).</summary>
internal sealed record AppendAnswer(HttpStatusCode Status, string? Replica, int Frames, IReadOnlyList<(long StartFrame, string Version, string Label)> Windows, string Body);

/// <summary>One acknowledged audit append: the entry's index and leaf hash as the answering replica reported them.</summary>
internal sealed record AuditAck(string EntityId, long Index, string LeafHash, int Replica);

/// <summary>The HTTP calls of the fleet tests.</summary>
internal static class FleetHttp
{
    /// <summary>Appends raw frames to a stream (float32, little endian), through whichever address the client has.</summary>
    public static async Task<AppendAnswer> AppendAsync(HttpClient client, string streamId, ReadOnlyMemory<float> samples, CancellationToken ct)
    {
        var bytes = MemoryMarshal.AsBytes(samples.Span).ToArray();
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await client.PostAsync(new Uri($"/v1/streams/{Uri.EscapeDataString(streamId)}/samples", UriKind.Relative), content, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        var replica = response.Headers.TryGetValues("X-Har-Replica", out var values) ? values.First() : null;
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return new AppendAnswer(response.StatusCode, replica, 0, [], body);
        }

        using var doc = JsonDocument.Parse(body);
        var windows = new List<(long, string, string)>();
        foreach (var p in doc.RootElement.GetProperty("predictions").EnumerateArray())
        {
            windows.Add((p.GetProperty("start_frame").GetInt64(), p.GetProperty("model_version").GetString()!, p.GetProperty("label").GetString()!));
        }

        return new AppendAnswer(response.StatusCode, replica, doc.RootElement.GetProperty("frames").GetInt32(), windows, body);
    }

    /// <summary>POSTs one audit event; returns the status, and the acknowledgement when it is 201.</summary>
    public static async Task<(HttpStatusCode Status, AuditAck? Ack, HttpResponseMessage Response)> AppendEventAsync(HttpClient client, string entityType, string entityId, int replica, CancellationToken ct)
    {
        var json = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["event_type"] = "fleet.e2e",
            ["entity_type"] = entityType,
            ["entity_id"] = entityId,
            ["severity"] = "info",
            ["action_details"] = new Dictionary<string, int> { ["replica"] = replica },
        });
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        var response = await client.PostAsync(new Uri("/v1/audit/events", UriKind.Relative), content, ct);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            return (response.StatusCode, null, response);
        }

        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return (response.StatusCode, new AuditAck(entityId, doc.RootElement.GetProperty("index").GetInt64(), doc.RootElement.GetProperty("leaf_hash").GetString()!, replica), response);
    }

    /// <summary>Every entry of one entity type, through all pages: entity id → (index, leaf hash).</summary>
    public static async Task<Dictionary<string, (long Index, string LeafHash)>> QueryEntityTypeAsync(HttpClient client, string entityType, CancellationToken ct)
    {
        var entries = new Dictionary<string, (long, string)>(StringComparer.Ordinal);
        string? page = null;
        do
        {
            var uri = $"/v1/audit/events?entity_type={Uri.EscapeDataString(entityType)}&page_size=1000" + (page is null ? "" : "&page=" + Uri.EscapeDataString(page));
            using var response = await client.GetAsync(new Uri(uri, UriKind.Relative), ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {uri} on {client.BaseAddress} answered {(int)response.StatusCode}: {body}");
            using var doc = JsonDocument.Parse(body);
            foreach (var e in doc.RootElement.GetProperty("entries").EnumerateArray())
            {
                var id = e.GetProperty("entity_id").GetString()!;
                Assert.True(entries.TryAdd(id, (e.GetProperty("index").GetInt64(), e.GetProperty("leaf_hash").GetString()!)), $"entity {id} appears twice in the audit log");
            }

            page = doc.RootElement.TryGetProperty("next_page", out var next) && next.ValueKind == JsonValueKind.String ? next.GetString() : null;
        }
        while (page is not null);

        return entries;
    }

    /// <summary>POSTs and asserts the status; a 409 "changed it first" (the leader wrote between this replica's read and its write) is sent again, a bounded number of times. Returns the body.</summary>
    public static async Task<string> PostAsync(HttpClient client, string path, HttpContent? content, HttpStatusCode expected)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var response = await client.PostAsync(new Uri(path, UriKind.Relative), content, CancellationToken.None);
            var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
            if (response.StatusCode == HttpStatusCode.Conflict && attempt < 10 && body.Contains("another replica changed it first", StringComparison.Ordinal))
            {
                continue;
            }

            Assert.True(response.StatusCode == expected, $"POST {path} on {client.BaseAddress} (attempt {attempt}): {(int)response.StatusCode} {body}");
            return body;
        }
    }

    /// <summary>Predicts one whole window (float32 bytes) for a device over <c>/v1/predict</c>; returns the version that served it.</summary>
    public static async Task<string> PredictAsync(HttpClient client, string device, byte[] window, CancellationToken ct)
    {
        using var content = new ByteArrayContent(window);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/v1/predict", UriKind.Relative)) { Content = content };
        request.Headers.Add("X-Stream-Id", device);
        using var response = await client.SendAsync(request, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"/v1/predict on {client.BaseAddress}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("predictions")[0].GetProperty("model_version").GetString()!;
    }

    /// <summary>The step numbers of a rollout's <c>rollout.step</c> audit entries, in log order, through all pages.</summary>
    public static async Task<List<int>> StepsAsync(HttpClient client, string rolloutId, CancellationToken ct)
    {
        var steps = new List<int>();
        string? page = null;
        do
        {
            var uri = $"/v1/audit/events?entity_id={Uri.EscapeDataString(rolloutId)}&event_type=rollout.step&page_size=1000" + (page is null ? "" : "&page=" + Uri.EscapeDataString(page));
            using var response = await client.GetAsync(new Uri(uri, UriKind.Relative), ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {uri}: {(int)response.StatusCode} {body}");
            using var doc = JsonDocument.Parse(body);
            foreach (var e in doc.RootElement.GetProperty("entries").EnumerateArray())
            {
                steps.Add(e.GetProperty("record").GetProperty("action_details").GetProperty("step").GetInt32());
            }

            page = doc.RootElement.TryGetProperty("next_page", out var next) && next.ValueKind == JsonValueKind.String ? next.GetString() : null;
        }
        while (page is not null);

        return steps;
    }

    /// <summary>The phases in which a rollout is over.</summary>
    public static readonly string[] Terminal = ["Succeeded", "RolledBack", "Aborted", "Failed"];

    /// <summary>Aborts the fleet's current rollout if one is still going (tests share the fleet).</summary>
    public static async Task AbortActiveAsync(HttpClient client)
    {
        if (await RolloutStatusAsync(client) is { } status && !Terminal.Contains(status.GetProperty("phase").GetString()))
        {
            await PostAsync(client, "/v1/rollouts/current/abort", null, HttpStatusCode.OK);
        }
    }

    /// <summary>The replica (1-based) that leads the control plane, waiting at most <paramref name="bound"/> for one to.</summary>
    public static async Task<int> LeaderAsync(HttpClient[] clients, TimeSpan bound)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            for (var i = 0; i < clients.Length; i++)
            {
                if (await RolloutStatusAsync(clients[i]) is { } s && s.GetProperty("leader").GetBoolean())
                {
                    return i + 1;
                }
            }

            Assert.True(clock.Elapsed < bound, "no replica leads");
            await Task.Delay(100, CancellationToken.None);
        }
    }

    /// <summary>GET /v1/rollouts/current as JSON, or <see langword="null"/> when the replica does not answer 200.</summary>
    public static async Task<JsonElement?> RolloutStatusAsync(HttpClient client)
    {
        using var response = await client.GetAsync(new Uri("/v1/rollouts/current", UriKind.Relative), CancellationToken.None);
        return response.StatusCode == HttpStatusCode.OK ? JsonDocument.Parse(await response.Content.ReadAsStringAsync(CancellationToken.None)).RootElement.Clone() : null;
    }
}
