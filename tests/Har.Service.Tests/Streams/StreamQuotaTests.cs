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
    public async Task ManyAddresses_BeyondMaxTrackedClients_ShareOneQuota_TrackedAndKeyedClientsServed()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "other loopback addresses (127.0.x.y) are routed on Linux");

        // Each address was a client with a quota of its own and an entry of its own, however many addresses: now at most
        // MaxTrackedClients addresses hold streams, the others share one quota.
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxTrackedClients"] = "20",
            ["Har:Service:MaxStreamsPerAnonymousClient"] = "1",
            ["Har:Service:StreamIdleTimeout"] = "01:00:00",
        }, cancellationToken: Ct);
        using var keyed = service.CreateClient(service.PredictorKey);
        var frames = Frames(ServiceFixture.ChampionCard(service.ModelsDirectory).ChannelCount, 10);

        var statuses = new List<HttpStatusCode>();
        for (var i = 1; i <= 30; i++)
        {
            using var client = service.CreateClientFrom(IPAddress.Parse($"127.0.4.{i}"));
            using var response = await client.PostAsync($"/v1/streams/s{i}/samples", ServiceFixture.Bytes(frames, "application/octet-stream"), Ct);
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.TooManyRequests, $"{(int)response.StatusCode} {body}");
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.Contains("Too many streams", body, StringComparison.Ordinal);
            }

            statuses.Add(response.StatusCode);
        }

        // Twenty addresses with a stream each, then one stream for the ten others together.
        Assert.All(statuses.Take(21), s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.All(statuses.Skip(21), s => Assert.Equal(HttpStatusCode.TooManyRequests, s));
        var tracked = await ServiceQueries.MetricAsync(keyed, "har_service_tracked_clients", Ct);
        Assert.Equal(20, tracked["{table=\"stream_quota\"}"]);
        var overflow = await ServiceQueries.MetricAsync(keyed, "har_service_client_overflow_total", Ct);
        Assert.Equal(10, overflow["{table=\"stream_quota\"}"]);

        // A tracked address keeps its stream, and keys are not counted.
        using (var first = service.CreateClientFrom(IPAddress.Parse("127.0.4.1")))
        {
            Assert.Equal(HttpStatusCode.OK, await AppendAsync(first, "s1", frames));
        }

        Assert.Equal(HttpStatusCode.OK, await AppendAsync(keyed, "k1", frames));
        Assert.False(service.HasExited, service.Output);
    }

    [Fact]
    public async Task TrackedClientsHoldingMaxTrackedClientsStreams_NewStreamsShareOneQuota_HeldStreamsServed()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "other loopback addresses (127.0.x.y) are routed on Linux");

        // The stream ids the quota keeps are bounded in all, not only per client (clients × quota was unbounded in practice:
        // 100,000 clients × 1,000 streams): at most MaxTrackedClients, and new streams beyond them share one quota.
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxTrackedClients"] = "20",
            ["Har:Service:MaxStreamsPerAnonymousClient"] = "5",
            ["Har:Service:StreamIdleTimeout"] = "01:00:00",
        }, cancellationToken: Ct);
        using var keyed = service.CreateClient(service.PredictorKey);
        var frames = Frames(ServiceFixture.ChampionCard(service.ModelsDirectory).ChannelCount, 10);
        var clients = Enumerable.Range(1, 6).Select(i => service.CreateClientFrom(IPAddress.Parse($"127.0.5.{i}"))).ToArray();
        try
        {
            // Four clients with 5 streams each: 20 streams, the most the quota tracks.
            for (var c = 0; c < 4; c++)
            {
                for (var s = 0; s < 5; s++)
                {
                    Assert.Equal(HttpStatusCode.OK, await AppendAsync(clients[c], $"c{c}s{s}", frames));
                }
            }

            // A fifth client's streams go to the shared quota (5), and a sixth client finds it full.
            for (var s = 0; s < 5; s++)
            {
                Assert.Equal(HttpStatusCode.OK, await AppendAsync(clients[4], $"c4s{s}", frames));
            }

            using (var refused = await clients[5].PostAsync("/v1/streams/c5s0/samples", ServiceFixture.Bytes(frames, "application/octet-stream"), Ct))
            {
                var body = await refused.Content.ReadAsStringAsync(Ct);
                Assert.True(refused.StatusCode == HttpStatusCode.TooManyRequests, $"{(int)refused.StatusCode} {body}");
                Assert.Contains("Har:Service:MaxTrackedClients", body, StringComparison.Ordinal);
            }

            // Held streams are served, in a client's own quota and in the shared one; keys are not counted.
            Assert.Equal(HttpStatusCode.OK, await AppendAsync(clients[0], "c0s0", frames));
            Assert.Equal(HttpStatusCode.OK, await AppendAsync(clients[4], "c4s0", frames));
            Assert.Equal(HttpStatusCode.OK, await AppendAsync(keyed, "k1", frames));
            var tracked = await ServiceQueries.MetricAsync(keyed, "har_service_tracked_clients", Ct);
            Assert.Equal(4, tracked["{table=\"stream_quota\"}"]);
            var overflow = await ServiceQueries.MetricAsync(keyed, "har_service_client_overflow_total", Ct);
            Assert.Equal(7, overflow["{table=\"stream_quota\"}"]);
        }
        finally
        {
            Array.ForEach(clients, c => c.Dispose());
        }
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

    /// <summary>
    /// The probe sent 4,200 one-window predictions with new stream ids from one anonymous address in 20 s: the
    /// predictions held for feedback labels (4,096 streams) were evicted, a device's among them, and its label joined
    /// nothing. A stream id on <c>/v1/predict</c> now counts against the client's stream quota.
    /// </summary>
    [Fact]
    public async Task PredictionsWithNewStreamIds_CountAgainstTheQuota_AnotherDevicesLabelsStillJoin()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            [ServiceProcess.KeysInFile] = "",
            ["Har:Service:AnonymousWindowsPerSecond"] = "100000", // the window budget is not the subject
        }, cancellationToken: Ct);
        using var device = service.CreateClient(service.PredictorKey);
        using var labeller = service.CreateClient(service.LabellerKey);
        using var anonymous = service.CreateClient();
        var card = ServiceFixture.ChampionCard(service.ModelsDirectory);
        var stream = Frames(card.ChannelCount, card.WindowLength * 2);
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(device, "victim", stream));

        // One anonymous client: whole windows with a new stream id each, more ids than the feedback store holds streams.
        var window = Frames(card.ChannelCount, card.WindowLength);
        int served = 0, refused = 0;
        string? refusal = null;
        for (var i = 0; i < 4200; i++)
        {
            using var content = ServiceFixture.Bytes(window, "application/octet-stream");
            content.Headers.Add("X-Stream-Id", $"flood-{i}");
            using var response = await anonymous.PostAsync("/v1/predict", content, Ct);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                served++;
            }
            else
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
                refused++;
                refusal ??= await response.Content.ReadAsStringAsync(Ct);
            }
        }

        Assert.Equal(1000, served); // the default MaxStreamsPerAnonymousClient
        Assert.Equal(3200, refused);
        Assert.Contains("Har:Service:MaxStreamsPerAnonymousClient", refusal, StringComparison.Ordinal);
        Assert.Contains("Nothing was predicted for stream 'flood-1000'", refusal, StringComparison.Ordinal);

        // The device's predictions are still held: its label joins its windows.
        using var label = await labeller.PostAsync("/v1/feedback", ServiceFixture.Json($"{{\"labels\":[{{\"stream_id\":\"victim\",\"activity\":\"WALKING\",\"start_frame\":0,\"end_frame\":{card.WindowLength * 2}}}]}}"), Ct);
        var body = await label.Content.ReadAsStringAsync(Ct);
        Assert.True(label.StatusCode == HttpStatusCode.OK, $"feedback: {(int)label.StatusCode} {body}");
        Assert.True(System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("labelled_windows").GetInt32() > 0, "the device's held predictions were evicted: " + body);

        // Predictions without a stream id are not streams, and a held id is served.
        using (var plain = await anonymous.PostAsync("/v1/predict", ServiceFixture.Bytes(window, "application/octet-stream"), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        }

        using var held = ServiceFixture.Bytes(window, "application/octet-stream");
        held.Headers.Add("X-Stream-Id", "flood-7");
        Assert.Equal(HttpStatusCode.OK, (await anonymous.PostAsync("/v1/predict", held, Ct)).StatusCode);
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
