using System.Globalization;
using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Audit;

/// <summary>
/// Feedback labels steer a rollout's accuracy gate, but were not audited at all, while every other mutating route
/// writes an <c>http.operation</c> entry. Then each feedback request was one entry, which made most of the log (found
/// by a 48-minute run from outside: 88 % of its entries, about 1.5 million a month with a labeller posting every 2 s).
/// Feedback is now audited as one <c>http.feedback</c> entry per labeller key and interval: how many requests by status,
/// labels, streams and labelled windows. Refused requests are counted, not audited, and predictions are not audited.
/// </summary>
public sealed class FeedbackAuditTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task FeedbackRequests_AreOneEntryPerKeyAndInterval_WithWhoAndHowMany()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:FeedbackAuditInterval"] = "00:00:02",
        }, cancellationToken: Ct);
        using var anonymous = service.CreateClient();
        using var labeller = service.CreateClient(service.LabellerKey);
        using var predictor = service.CreateClient(service.PredictorKey);
        using var auditor = service.CreateClient(service.AuditorKey);
        var card = ServiceFixture.ChampionCard(service.ModelsDirectory);

        // Three windows of one stream; a prediction is not an operation.
        var frames = card.WindowLength + (2 * card.Stride);
        var samples = string.Join(",", Enumerable.Range(0, frames * card.ChannelCount).Select(i => (i % 6 == 2 ? "9.8" : "0.1")));
        using (var ingest = await anonymous.PostAsync("/v1/streams/audited-1/samples", ServiceFixture.Json($"{{\"samples\":[{samples}]}}"), Ct))
        {
            Assert.True(ingest.StatusCode == HttpStatusCode.OK, await ingest.Content.ReadAsStringAsync(Ct));
        }

        var activity = card.Labels[0];
        var range = string.Create(CultureInfo.InvariantCulture, $"\"activity\":\"{activity}\",\"start_frame\":0,\"end_frame\":{frames}");

        // Three labels over two streams (the second never streamed here; the third repeats the first): 3 windows labelled.
        await PostAsync(labeller, "/v1/feedback", $"{{\"labels\":[{{\"stream_id\":\"audited-1\",{range}}},{{\"stream_id\":\"audited-2\",{range}}},{{\"stream_id\":\"audited-1\",{range}}}]}}", HttpStatusCode.OK);
        await PostAsync(labeller, "/v1/streams/audited-2/feedback", $"{{\"labels\":[{{{range}}}]}}", HttpStatusCode.OK);

        // Refused: no key, a predictor key (counted as refusals, never audited one by one); a bad label (400) is counted.
        await PostAsync(anonymous, "/v1/feedback", $"{{\"labels\":[{{\"stream_id\":\"audited-1\",{range}}}]}}", HttpStatusCode.Unauthorized);
        await PostAsync(predictor, "/v1/feedback", $"{{\"labels\":[{{\"stream_id\":\"audited-1\",{range}}}]}}", HttpStatusCode.Forbidden);
        await PostAsync(labeller, "/v1/feedback", "{\"labels\":[]}", HttpStatusCode.BadRequest);

        // The interval's entries (the requests may straddle an interval's end: their totals add up across entries).
        var entries = new List<JsonElement>();
        Assert.True(
            await ServiceQueries.EventuallyAsync(async () => (entries = await ServiceQueries.AuditEntriesAsync(auditor, "http.feedback", Ct)).Sum(e => Details(e).GetProperty("requests").GetInt64()) >= 3, TimeSpan.FromSeconds(30), Ct),
            $"{entries.Count} feedback entries");
        Assert.All(entries, e => Assert.Equal("test-labeller", e.GetProperty("actor").GetString()));
        Assert.Equal(3, entries.Sum(e => Details(e).GetProperty("requests").GetInt64()));
        Assert.Equal(2, entries.Sum(e => Status(e, "200")));
        Assert.Equal(1, entries.Sum(e => Status(e, "400")));
        Assert.Equal(4, entries.Sum(e => Details(e).GetProperty("labels").GetInt64()));       // 3 + 1
        Assert.Equal(3, entries.Sum(e => Details(e).GetProperty("streams").GetInt64()));      // 2 + 1
        Assert.Equal(3, entries.Sum(e => Details(e).GetProperty("labelled_windows").GetInt64())); // 3 + 0
        Assert.Contains(entries, e => e.GetProperty("record").GetProperty("severity").GetString() == "warning"); // the 400's interval

        // No entry per request, none for the prediction; every entry is small.
        var operations = await ServiceQueries.AuditEntriesAsync(auditor, "http.operation", Ct);
        Assert.DoesNotContain(operations, e => Details(e).GetProperty("path").GetString()!.EndsWith("/feedback", StringComparison.Ordinal));
        Assert.DoesNotContain(operations, e => Details(e).GetProperty("path").GetString()!.EndsWith("/samples", StringComparison.Ordinal));
        Assert.All(entries, e => Assert.True(e.GetRawText().Length < 2048, e.GetRawText()));
    }

    private static JsonElement Details(JsonElement entry) => entry.GetProperty("record").GetProperty("action_details");

    private static long Status(JsonElement entry, string status) =>
        Details(entry).GetProperty("by_status").TryGetProperty(status, out var n) ? n.GetInt64() : 0;

    private static async Task PostAsync(HttpClient client, string path, string body, HttpStatusCode expected)
    {
        using var response = await client.PostAsync(path, ServiceFixture.Json(body), Ct);
        Assert.True(response.StatusCode == expected, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
    }
}
