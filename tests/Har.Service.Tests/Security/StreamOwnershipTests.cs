using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Security;

/// <summary>
/// A stream an API key sends belongs to that key while it is active. Found from outside: streams were keyed by their id
/// alone, so an anonymous caller appended to a keyed device's stream: its answer held a window of 150 of the device's
/// frames and 50 of its own, the device's next window mixed both, and injected deg/s frames raised a Units drift alarm
/// on the device within a minute.
/// </summary>
public sealed class StreamOwnershipTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task KeyedStream_OtherClientsAreRefused_AndTheDevicesWindowsHoldOnlyItsOwnFrames()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct);
        using var device = service.CreateClient(service.PredictorKey);
        using var otherKey = service.CreateClient(service.LabellerKey);
        using var anonymous = service.CreateClient(null);
        var card = ServiceFixture.ChampionCard(service.ModelsDirectory);
        var (window, channels) = (card.WindowLength, card.ChannelCount);

        Assert.Equal(0, await AppendAsync(device, "watch-17", Frames(channels, window - 50, 0.1f), HttpStatusCode.OK));

        foreach (var (client, who) in new[] { (anonymous, "an API key"), (otherKey, "another API key") })
        {
            using var refused = await client.PostAsync("/v1/streams/watch-17/samples", ServiceFixture.Bytes(Frames(channels, 100, 9f), "application/octet-stream"), Ct);
            var body = await refused.Content.ReadAsStringAsync(Ct);
            Assert.True(refused.StatusCode == HttpStatusCode.Conflict, $"{(int)refused.StatusCode} {body}");
            Assert.Contains($"Stream 'watch-17' is held by {who}", JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);

            var windowJson = string.Join(",", Enumerable.Repeat("0.5", window * channels));
            using var predict = await client.PostAsync("/v1/predict", ServiceFixture.Json($"{{\"stream_id\":\"watch-17\",\"windows\":[[{windowJson}]]}}"), Ct);
            Assert.Equal(HttpStatusCode.Conflict, predict.StatusCode);
        }

        // The device's first window is its own 200 frames: it completes at the device's frame 200, not earlier.
        Assert.Equal(1, await AppendAsync(device, "watch-17", Frames(channels, 50, 0.1f), HttpStatusCode.OK));

        // Other ids are served to everyone as before; anonymous clients share anonymous streams (they cannot be told apart).
        Assert.Equal(0, await AppendAsync(anonymous, "anon-1", Frames(channels, 100, 0.1f), HttpStatusCode.OK));
        Assert.Equal(1, await AppendAsync(anonymous, "anon-1", Frames(channels, 100, 0.1f), HttpStatusCode.OK));
    }

    private static async Task<int> AppendAsync(HttpClient client, string stream, byte[] frames, HttpStatusCode expected)
    {
        using var response = await client.PostAsync($"/v1/streams/{stream}/samples", ServiceFixture.Bytes(frames, "application/octet-stream"), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == expected, $"{stream}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("predictions").GetArrayLength();
    }

    private static byte[] Frames(int channels, int frames, float value)
    {
        var bytes = new byte[channels * frames * sizeof(float)];
        var values = new float[channels * frames];
        Array.Fill(values, value);
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return bytes;
    }
}
