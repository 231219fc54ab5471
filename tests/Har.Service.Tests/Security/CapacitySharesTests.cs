using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Har.Service.Tests.Streams;

namespace Har.Service.Tests.Security;

/// <summary>
/// The stream table and the drift monitors are shared between clients once full: API keys first, then an equal share per
/// anonymous client. Found from outside: both were first come, first served, so one anonymous address held all 1,000
/// drift monitors (keyed devices went unmonitored) and ten addresses within their stream quotas filled the 10,000-stream
/// table (every other device got 503). Anonymous clients are loopback addresses here (127.0.0.1 and 127.0.9.1: Linux
/// routes every 127.x.y.z to the loopback); the tables are made small.
/// </summary>
public sealed class CapacitySharesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task FullStreamTable_AKeyTakesAnAnonymousPlace_AnotherAddressGetsAShare_TheHolderNoMore()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "other loopback addresses (127.0.x.y) are routed on Linux");
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            [ServiceProcess.KeysInFile] = "",
            ["Har:Service:MaxStreams"] = "4",
        }, cancellationToken: Ct);
        using var first = service.CreateClient();
        using var second = service.CreateClientFrom(IPAddress.Parse("127.0.9.1"));
        using var keyed = service.CreateClient(service.PredictorKey);
        var frames = Frames(100);

        // One address fills the table; alone, it keeps all of it.
        foreach (var id in new[] { "a-1", "a-2", "a-3", "a-4" })
        {
            Assert.Equal(HttpStatusCode.OK, await AppendAsync(first, id, frames));
        }

        Assert.Equal(HttpStatusCode.ServiceUnavailable, await AppendAsync(first, "a-5", frames));

        // A key's new stream takes the place of the anonymous stream used least recently (a-1).
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(keyed, "k-1", frames));

        // Another address gets a place while the first holds more than it would then: 3 against 1, not 2 against 2.
        foreach (var id in new[] { "a-2", "a-3", "a-4" })
        {
            Assert.Equal(HttpStatusCode.OK, await AppendAsync(first, id, frames)); // used just now: a-2 is the least recent
        }

        Assert.Equal(HttpStatusCode.OK, await AppendAsync(second, "b-1", frames));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await AppendAsync(second, "b-2", frames));

        // The first address keeps what it still holds, gets no new place, and its streams that gave theirs up are new
        // streams now (refused like any other); the key's stream is served.
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(first, "a-3", frames));
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(first, "a-4", frames));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await AppendAsync(first, "a-1", frames));
        Assert.Equal(HttpStatusCode.OK, await AppendAsync(keyed, "k-1", frames));

        var metrics = await first.GetStringAsync("/metrics", Ct);
        Assert.Equal("1", Metric(metrics, "streams", "key"));
        Assert.Equal("1", Metric(metrics, "streams", "anonymous"));
        Assert.Contains("Stream a-1 of address:127.0.0.1 gave its place in the full stream table", service.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AllDriftMonitorsHeldByOneAddress_AKeyedDeviceAndAnotherAddressGetMonitors_TheHolderKeepsAnEqualShare()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "other loopback addresses (127.0.x.y) are routed on Linux");
        var work = Directory.CreateTempSubdirectory("har-capacity-shares-");
        try
        {
            await using var service = await DriftCapacityTests.StartAsync(work, (ServiceProcess.KeysInFile, ""), ("Har:Service:DriftMaxDevices", "3"));
            using var first = service.CreateClient();
            using var second = service.CreateClientFrom(IPAddress.Parse("127.0.9.1"));
            using var keyed = service.CreateClient(service.PredictorKey);
            string[] held = ["a-1", "a-2", "a-3"];

            // One address takes every monitor.
            foreach (var id in held)
            {
                await PredictAsync(first, id);
                Assert.True(await MonitoredAsync(first, id), id);
            }

            // A keyed device finds them held: at its first window the monitor frees none (all streamed within its
            // minimum idle time); at its next, it takes the place of the anonymous device seen least recently.
            await PredictAsync(keyed, "k-1");
            Assert.False(await MonitoredAsync(first, "k-1"));
            await RefreshAsync(first, held);
            await PredictAsync(keyed, "k-1");
            Assert.True(await MonitoredAsync(first, "k-1"));
            Assert.False(await MonitoredAsync(first, "a-1"));

            // Another address gets one of the first's two monitors, but not a second: that would leave the first fewer.
            foreach (var id in new[] { "b-1", "b-2" })
            {
                await PredictAsync(second, id);
                await RefreshAsync(first, held);
                await PredictAsync(second, id);
            }

            Assert.True(await MonitoredAsync(first, "b-1"));
            Assert.False(await MonitoredAsync(first, "b-2"));
            Assert.Equal(1, (await Task.WhenAll(held.Select(id => MonitoredAsync(first, id)))).Count(m => m));
            Assert.True(await MonitoredAsync(first, "k-1")); // a key's monitor is never taken

            var metrics = await first.GetStringAsync("/metrics", Ct);
            Assert.Equal("1", Metric(metrics, "drift_monitors", "key"));
            Assert.Equal("1", Metric(metrics, "drift_monitors", "anonymous"));
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>One window more for each of the first address's devices, so none has been silent for the monitor's minimum idle time.</summary>
    private static async Task RefreshAsync(HttpClient client, string[] devices)
    {
        foreach (var id in devices)
        {
            await PredictAsync(client, id);
        }
    }

    private static async Task PredictAsync(HttpClient client, string streamId)
    {
        var card = DriftCapacityTests.Card;
        var window = string.Join(",", DriftCapacityTests.Signal(card.ChannelCount, card.WindowLength, seed: streamId.GetHashCode(StringComparison.Ordinal)).Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        using var response = await client.PostAsync("/v1/predict", ServiceFixture.Json($"{{\"stream_id\":\"{streamId}\",\"windows\":[[{window}]]}}"), Ct);
        Assert.True(response.IsSuccessStatusCode, $"{streamId}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
    }

    private static async Task<bool> MonitoredAsync(HttpClient client, string device)
    {
        using var drift = JsonDocument.Parse(await client.GetStringAsync($"/v1/drift?device={device}", Ct));
        return drift.RootElement.GetProperty("monitored").GetBoolean();
    }

    private static async Task<HttpStatusCode> AppendAsync(HttpClient client, string stream, byte[] frames)
    {
        using var response = await client.PostAsync($"/v1/streams/{stream}/samples", ServiceFixture.Bytes(frames, "application/octet-stream"), Ct);
        return response.StatusCode;
    }

    private static byte[] Frames(int frames)
    {
        var values = DriftCapacityTests.Signal(DriftCapacityTests.Card.ChannelCount, frames, seed: 3);
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return bytes;
    }

    private static string? Metric(string exposition, string table, string newcomer)
    {
        var match = Regex.Match(exposition, $"^har_service_capacity_places_taken_total\\{{table=\"{table}\",newcomer=\"{newcomer}\"\\}} (?<v>\\S+)$", RegexOptions.Multiline);
        return match.Success ? match.Groups["v"].Value : null;
    }
}
