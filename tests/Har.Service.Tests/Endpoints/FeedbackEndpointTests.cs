using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// <c>POST /v1/feedback</c> on the real service (Kestrel on 127.0.0.1): late labels join the windows a stream's
/// samples produced, move <c>har_model_accuracy</c> and <c>har_model_labelled_windows</c>; bad labels are 400
/// with what was expected and apply nothing (one bad label refuses the whole request); callers without a
/// labeller or operator key are refused — a predictor key too, since labels outrank the rollout's agreement and
/// class-mix guards and every prediction names the version that made it.
/// </summary>
public sealed class FeedbackEndpointTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Labels_JoinStreamWindows_MoveAccuracyMetrics_AndBadRequestsApplyNothing()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct);
        var card = ServiceFixture.ChampionCard(service.ModelsDirectory);
        using var predictor = service.CreateClient(service.PredictorKey);
        using var labeller = service.CreateClient(service.LabellerKey);

        // Ten windows' worth of frames for one device: windows start at 0, stride, 2·stride, ….
        var frames = card.WindowLength + (9 * card.Stride);
        var samples = new StringBuilder("{\"samples\":[");
        var random = new Random(7);
        for (var i = 0; i < frames * card.ChannelCount; i++)
        {
            samples.Append(i == 0 ? "" : ",").Append(((i % 6 == 2 ? 9.8 : 0) + random.NextDouble() - 0.5).ToString("0.###", CultureInfo.InvariantCulture));
        }

        using var ingest = await predictor.PostAsync("/v1/streams/dev-7/samples", ServiceFixture.Json(samples.Append("]}").ToString()), Ct);
        var ingested = await ingest.Content.ReadAsStringAsync(Ct);
        Assert.True(ingest.StatusCode == HttpStatusCode.OK, $"ingest: {(int)ingest.StatusCode} {ingested}");
        using var predictions = JsonDocument.Parse(ingested);
        var served = predictions.RootElement.GetProperty("predictions").EnumerateArray()
            .Select(p => (Start: p.GetProperty("start_frame").GetInt64(), Label: p.GetProperty("label").GetString()!, Version: p.GetProperty("model_version").GetString()!))
            .ToList();
        Assert.Equal(10, served.Count);
        var version = served[0].Version;
        var activity = card.Labels[0];

        // Frames [0, start of window 6): windows 0 … 5 lie wholly inside only if start + length ≤ end.
        var end = 6L * card.Stride;
        var inside = served.Where(w => w.Start + card.WindowLength <= end).ToList();
        Assert.NotEmpty(inside);
        var good = $"{{\"stream_id\":\"dev-7\",\"activity\":\"{activity.ToLowerInvariant()}\",\"start_frame\":0,\"end_frame\":{end}}}";

        // Refused, and nothing applied: a bad label next to a good one, unknown names, empty ranges, too many labels, both range kinds.
        foreach (var (body, expected) in new[]
        {
            ($"{{\"labels\":[{good},{{\"stream_id\":\"dev-7\",\"activity\":\"JUMPING\",\"start_frame\":0,\"end_frame\":10}}]}}", "labels[1]: activity 'JUMPING' is unknown; expected one of " + string.Join(", ", card.Labels)),
            ("{\"labels\":[{\"stream_id\":\"dev-7\",\"activity\":\"" + activity + "\",\"start_frame\":500,\"end_frame\":500}]}", "labels[0]: frame range [500, 500) is empty, inverted or negative"),
            ("{\"labels\":[{\"stream_id\":\"dev-7\",\"activity\":\"" + activity + "\",\"from\":\"2026-01-15T10:31:00Z\",\"to\":\"2026-01-15T10:30:00Z\"}]}", "labels[0]: time range"),
            ("{\"labels\":[{\"stream_id\":\"dev-7\",\"activity\":\"" + activity + "\",\"start_frame\":0,\"end_frame\":10,\"from\":\"2026-01-15T10:30:00Z\",\"to\":\"2026-01-15T10:31:00Z\"}]}", "not both or neither"),
            ("{\"labels\":[" + string.Join(",", Enumerable.Repeat(good, 1001)) + "]}", "\"labels\" holds 1001 labels; expected 1 to 1000 per request"),
            ("{\"labels\":[]}", "expected 1 to 1000"),
            ("[1,2]", "must be an object with a \"labels\" array"),
        })
        {
            using var response = await labeller.PostAsync("/v1/feedback", ServiceFixture.Json(body), Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {text}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            using var problem = JsonDocument.Parse(text);
            Assert.Contains(expected, problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Null(await MetricAsync(predictor, "har_model_labelled_windows", version));

        // No key: 401; an auditor or predictor key: 403, naming the roles that may label.
        using (var anonymous = service.CreateClient())
        using (var refused = await anonymous.PostAsync("/v1/feedback", ServiceFixture.Json($"{{\"labels\":[{good}]}}"), Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        using var auditor = service.CreateClient(service.AuditorKey);
        foreach (var client in new[] { auditor, predictor })
        {
            using var forbidden = await client.PostAsync("/v1/feedback", ServiceFixture.Json($"{{\"labels\":[{good}]}}"), Ct);
            var text = await forbidden.Content.ReadAsStringAsync(Ct);
            Assert.True(forbidden.StatusCode == HttpStatusCode.Forbidden, $"{(int)forbidden.StatusCode} {text}");
            using var problem = JsonDocument.Parse(text);
            Assert.Contains("an API key with the labeller or operator role", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Null(await MetricAsync(predictor, "har_model_labelled_windows", version));

        // The good label alone: every window wholly inside is labelled, once.
        using (var ok = await labeller.PostAsync("/v1/feedback", ServiceFixture.Json($"{{\"labels\":[{good}]}}"), Ct))
        {
            var text = await ok.Content.ReadAsStringAsync(Ct);
            Assert.True(ok.StatusCode == HttpStatusCode.OK, $"{(int)ok.StatusCode} {text}");
            using var json = JsonDocument.Parse(text);
            Assert.Equal(inside.Count, json.RootElement.GetProperty("labelled_windows").GetInt32());
        }

        using (var again = await labeller.PostAsync("/v1/feedback", ServiceFixture.Json($"{{\"labels\":[{good}]}}"), Ct))
        {
            using var json = JsonDocument.Parse(await again.Content.ReadAsStringAsync(Ct));
            Assert.Equal(0, json.RootElement.GetProperty("labelled_windows").GetInt32());
        }

        var correct = inside.Count(w => w.Label == activity);
        Assert.Equal(inside.Count, await MetricAsync(predictor, "har_model_labelled_windows", version));
        Assert.Equal((double)correct / inside.Count, (await MetricAsync(predictor, "har_model_accuracy", version))!.Value, 9);
    }

    [Fact]
    public async Task StreamRoute_LabelsTheStreamInThePath_RefusesLabelsOfAnotherStream()
    {
        // POST /v1/streams/{id}/feedback: what a fleet's proxy sends to the replica that holds the stream's windows.
        await using var service = await ServiceProcess.StartAsync(cancellationToken: Ct);
        var card = ServiceFixture.ChampionCard(service.ModelsDirectory);
        using var predictor = service.CreateClient(service.PredictorKey);
        using var labeller = service.CreateClient(service.LabellerKey);
        var samples = string.Join(",", Enumerable.Range(0, (card.WindowLength + (3 * card.Stride)) * card.ChannelCount).Select(i => (i % 6 == 0 ? 1 : 0).ToString(CultureInfo.InvariantCulture)));
        using (var ingest = await predictor.PostAsync("/v1/streams/dev-9/samples", ServiceFixture.Json($"{{\"samples\":[{samples}]}}"), Ct))
        {
            Assert.True(ingest.StatusCode == HttpStatusCode.OK, await ingest.Content.ReadAsStringAsync(Ct));
        }

        var activity = card.Labels[1];
        var range = $"\"activity\":\"{activity}\",\"start_frame\":0,\"end_frame\":{card.WindowLength + (3 * card.Stride)}";
        using (var other = await labeller.PostAsync("/v1/streams/dev-9/feedback", ServiceFixture.Json($"{{\"labels\":[{{\"stream_id\":\"dev-8\",{range}}}]}}"), Ct))
        {
            var text = await other.Content.ReadAsStringAsync(Ct);
            Assert.True(other.StatusCode == HttpStatusCode.BadRequest, $"{(int)other.StatusCode} {text}");
            Assert.Contains("labels[0]: stream_id must be the path's stream 'dev-9' or left out", text, StringComparison.Ordinal);
        }

        using (var forbidden = await predictor.PostAsync("/v1/streams/dev-9/feedback", ServiceFixture.Json($"{{\"labels\":[{{{range}}}]}}"), Ct))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }

        using (var ok = await labeller.PostAsync("/v1/streams/dev-9/feedback", ServiceFixture.Json($"{{\"labels\":[{{{range}}},{{\"stream_id\":\"dev-9\",{range}}}]}}"), Ct))
        {
            var text = await ok.Content.ReadAsStringAsync(Ct);
            Assert.True(ok.StatusCode == HttpStatusCode.OK, $"{(int)ok.StatusCode} {text}");
            using var json = JsonDocument.Parse(text);
            Assert.Equal([4, 0], json.RootElement.GetProperty("windows_per_label").EnumerateArray().Select(e => e.GetInt32()));
        }
    }

    private static async Task<double?> MetricAsync(HttpClient client, string name, string model)
    {
        var text = await client.GetStringAsync("/metrics", Ct);
        var prefix = $"{name}{{model=\"{model}\"}} ";
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return line is null ? null : double.Parse(line[prefix.Length..], CultureInfo.InvariantCulture);
    }
}
