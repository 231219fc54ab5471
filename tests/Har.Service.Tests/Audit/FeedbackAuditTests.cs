using System.Globalization;
using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Audit;

/// <summary>
/// Feedback labels steer a rollout's accuracy gate, but were not audited at all, while every other mutating route
/// writes an <c>http.operation</c> entry. Each feedback request that passed authentication is audited the same way now
/// (the key, the route, the status, how many labels, streams and labelled windows): one entry per request, so the
/// rate limit bounds them; refused requests are counted, not audited, and predictions are not audited.
/// </summary>
public sealed class FeedbackAuditTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ServiceProcess Service => fixture.Service;

    [Fact]
    public async Task EachFeedbackRequest_IsOneOperationEntry_WithWhoAndHowMany()
    {
        using var anonymous = Service.CreateClient();
        using var labeller = Service.CreateClient(Service.LabellerKey);
        using var predictor = Service.CreateClient(Service.PredictorKey);
        using var auditor = Service.CreateClient(Service.AuditorKey);
        var card = fixture.Champion;

        // Three windows of one stream; a prediction is not an operation.
        var frames = card.WindowLength + (2 * card.Stride);
        var samples = string.Join(",", Enumerable.Range(0, frames * card.ChannelCount).Select(i => (i % 6 == 2 ? "9.8" : "0.1")));
        using (var ingest = await anonymous.PostAsync("/v1/streams/audited-1/samples", ServiceFixture.Json($"{{\"samples\":[{samples}]}}"), Ct))
        {
            Assert.True(ingest.StatusCode == HttpStatusCode.OK, await ingest.Content.ReadAsStringAsync(Ct));
        }

        var activity = card.Labels[0];
        var range = string.Create(CultureInfo.InvariantCulture, $"\"activity\":\"{activity}\",\"start_frame\":0,\"end_frame\":{frames}");
        var before = await FeedbackEntriesAsync(auditor);

        // Three labels over two streams (the second never streamed here; the third repeats the first): 3 windows labelled.
        await PostAsync(labeller, "/v1/feedback", $"{{\"labels\":[{{\"stream_id\":\"audited-1\",{range}}},{{\"stream_id\":\"audited-2\",{range}}},{{\"stream_id\":\"audited-1\",{range}}}]}}", HttpStatusCode.OK);
        await PostAsync(labeller, "/v1/streams/audited-2/feedback", $"{{\"labels\":[{{{range}}}]}}", HttpStatusCode.OK);

        // Refused: no key, a predictor key (counted as refusals, never audited one by one); a bad label (400) is an operation.
        await PostAsync(anonymous, "/v1/feedback", $"{{\"labels\":[{{\"stream_id\":\"audited-1\",{range}}}]}}", HttpStatusCode.Unauthorized);
        await PostAsync(predictor, "/v1/feedback", $"{{\"labels\":[{{\"stream_id\":\"audited-1\",{range}}}]}}", HttpStatusCode.Forbidden);
        await PostAsync(labeller, "/v1/feedback", "{\"labels\":[]}", HttpStatusCode.BadRequest);

        // The entry is appended once the response is written: wait for it, then check there are no more.
        var entries = new List<JsonElement>();
        Assert.True(await ServiceQueries.EventuallyAsync(async () => (entries = [.. (await FeedbackEntriesAsync(auditor)).Skip(before.Count)]).Count >= 3, TimeSpan.FromSeconds(10), Ct), $"{entries.Count} feedback entries");
        Assert.Equal(3, entries.Count);
        Assert.All(entries, e => Assert.Equal("test-labeller", e.GetProperty("actor").GetString()));

        var all = Details(entries[0]);
        Assert.Equal("/v1/feedback", all.GetProperty("path").GetString());
        Assert.Equal(200, all.GetProperty("status").GetInt32());
        Assert.Equal(3, all.GetProperty("labels").GetInt32());
        Assert.Equal(2, all.GetProperty("streams").GetInt32());
        Assert.Equal(3, all.GetProperty("labelled_windows").GetInt32());

        var one = Details(entries[1]);
        Assert.Equal("/v1/streams/audited-2/feedback", one.GetProperty("path").GetString());
        Assert.Equal(1, one.GetProperty("labels").GetInt32());
        Assert.Equal(0, one.GetProperty("labelled_windows").GetInt32());

        var refused = Details(entries[2]);
        Assert.Equal(400, refused.GetProperty("status").GetInt32());
        Assert.Equal("warning", entries[2].GetProperty("record").GetProperty("severity").GetString());
        Assert.False(refused.TryGetProperty("labels", out _));

        // The prediction wrote no entry; every entry is small.
        var operations = await ServiceQueries.AuditEntriesAsync(auditor, "http.operation", Ct);
        Assert.DoesNotContain(operations, e => Details(e).GetProperty("path").GetString()!.EndsWith("/samples", StringComparison.Ordinal));
        Assert.All(entries, e => Assert.True(e.GetRawText().Length < 2048, e.GetRawText()));
    }

    private static JsonElement Details(JsonElement entry) => entry.GetProperty("record").GetProperty("action_details");

    private static async Task<List<JsonElement>> FeedbackEntriesAsync(HttpClient auditor) =>
        [.. (await ServiceQueries.AuditEntriesAsync(auditor, "http.operation", Ct)).Where(e => Details(e).GetProperty("path").GetString()!.EndsWith("/feedback", StringComparison.Ordinal))];

    private static async Task PostAsync(HttpClient client, string path, string body, HttpStatusCode expected)
    {
        using var response = await client.PostAsync(path, ServiceFixture.Json(body), Ct);
        Assert.True(response.StatusCode == expected, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
    }
}
