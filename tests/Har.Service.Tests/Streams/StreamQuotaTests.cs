using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Streams;

/// <summary>
/// Streams per client. The hostile-client probe filled the whole stream table with one key (and the window budget lets one
/// anonymous address keep about 2,000 streams from going idle, five addresses hold 10,000), and then every new
/// device got 503 until those streams went idle. Now a client holds at most its quota of streams; a new stream beyond
/// it is 429 with Retry-After, its other streams and every other client are served.
/// </summary>
public sealed class StreamQuotaTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AnonymousClientAtItsQuota_NewStreamIs429_ItsStreamsAndKeyedClientsServed_ReleasedWhenIdle()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxStreamsPerAnonymousClient"] = "3",
            ["Har:Service:StreamIdleTimeout"] = "00:00:04",
        }, cancellationToken: Ct);
        using var anonymous = service.CreateClient();
        using var keyed = service.CreateClient(service.PredictorKey);
        var frames = Frames(ServiceFixture.ChampionCard(service.ModelsDirectory).ChannelCount, 10);

        foreach (var device in new[] { "a", "b", "c" })
        {
            Assert.Equal(HttpStatusCode.OK, await AppendAsync(anonymous, device, frames));
        }

        using (var refused = await anonymous.PostAsync("/v1/streams/d/samples", ServiceFixture.Bytes(frames, "application/octet-stream"), Ct))
        {
            var body = await refused.Content.ReadAsStringAsync(Ct);
            Assert.True(refused.StatusCode == HttpStatusCode.TooManyRequests, $"{(int)refused.StatusCode} {body}");
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.InRange(refused.Headers.RetryAfter?.Delta ?? TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4));
            var detail = JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString()!;
            Assert.Contains("holds 3 streams", detail, StringComparison.Ordinal);
            Assert.Contains("Har:Service:MaxStreamsPerAnonymousClient", detail, StringComparison.Ordinal);
            Assert.Contains("Stream 'd' was not created", detail, StringComparison.Ordinal);
        }

        // Its own streams are served; a key (no quota by default) creates the same stream id.
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(anonymous, "a", frames));
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(keyed, "d", frames));
        var refusals = await ServiceQueries.MetricAsync(keyed, "har_service_stream_quota_refusals_total", Ct);
        Assert.Equal(1, refusals["{client=\"anonymous\"}"]);

        // Streams that went idle are released: the anonymous client creates new ones again (bounded wait on the real clock).
        Assert.True(
            await ServiceQueries.EventuallyAsync(async () => await AppendAsync(anonymous, "e", frames) == HttpStatusCode.OK, TimeSpan.FromSeconds(60), Ct),
            "the anonymous client's idle streams were never released");
    }

    [Fact]
    public async Task KeyAtItsQuota_NewStreamIs429NamingTheKeySetting_OtherKeysServed()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxStreamsPerKey"] = "2",
            ["Har:Service:StreamIdleTimeout"] = "01:00:00",
        }, cancellationToken: Ct);
        using var predictor = service.CreateClient(service.PredictorKey);
        using var operatorClient = service.CreateClient(service.OperatorKey);
        var frames = Frames(ServiceFixture.ChampionCard(service.ModelsDirectory).ChannelCount, 10);

        Assert.Equal(HttpStatusCode.OK, await AppendAsync(predictor, "p1", frames));
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(predictor, "p2", frames));
        using (var refused = await predictor.PostAsync("/v1/streams/p3/samples", ServiceFixture.Bytes(frames, "application/octet-stream"), Ct))
        {
            var body = await refused.Content.ReadAsStringAsync(Ct);
            Assert.True(refused.StatusCode == HttpStatusCode.TooManyRequests, $"{(int)refused.StatusCode} {body}");
            Assert.Contains("Har:Service:MaxStreamsPerKey", body, StringComparison.Ordinal);
            Assert.Contains("one API key", body, StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.OK, await AppendAsync(operatorClient, "o1", frames));
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(operatorClient, "o2", frames));
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(predictor, "p2", frames));

        // Anonymous clients keep their own quota (the default, 1,000): unaffected by the keys'.
        using var anonymous = service.CreateClient();
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(anonymous, "p3", frames));
        var refusals = await ServiceQueries.MetricAsync(operatorClient, "har_service_stream_quota_refusals_total", Ct);
        Assert.Equal(1, refusals["{client=\"key\"}"]);
    }

    private static async Task<HttpStatusCode> AppendAsync(HttpClient client, string stream, byte[] frames)
    {
        using var response = await client.PostAsync($"/v1/streams/{stream}/samples", ServiceFixture.Bytes(frames, "application/octet-stream"), Ct);
        return response.StatusCode;
    }

    private static byte[] Frames(int channels, int frames)
    {
        var bytes = new byte[channels * frames * sizeof(float)];
        var values = new float[channels * frames];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)Math.Sin(i * 0.01);
        }

        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return bytes;
    }
}
