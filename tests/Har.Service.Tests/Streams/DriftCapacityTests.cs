using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Har.Drift;
using Har.Inference;

namespace Har.Service.Tests.Streams;

/// <summary>
/// More devices stream than the drift monitor keeps (<c>Har:Service:DriftMaxDevices</c>). Found from outside: 1,100
/// devices streaming round-robin into the default 1,000 monitors evicted each other (least recently seen first) 6,500
/// times and not one was ever scored, and the alarms raised before were dropped with them. Now the devices monitored
/// keep their monitors while they stream, and a device beyond the capacity is told why it has none.
/// </summary>
public sealed class DriftCapacityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task MoreDevicesStreamThanTheMonitorKeeps_TheMonitoredOnesAreScored_TheOtherIsToldWhy()
    {
        var card = Card;
        var work = Directory.CreateTempSubdirectory("har-drift-capacity-");
        try
        {
            await using var service = await StartAsync(work, ("Har:Service:DriftMaxDevices", "3"));
            using var client = service.CreateClient();

            // Four devices stream at once, round-robin, 100 frames (2 s) per post, 800 frames each.
            string[] devices = ["dev-0", "dev-1", "dev-2", "dev-3"];
            var streams = devices.Select((_, i) => Signal(card.ChannelCount, 800, seed: 10 + i)).ToArray();
            for (var offset = 0; offset < 800; offset += 100)
            {
                for (var d = 0; d < devices.Length; d++)
                {
                    var chunk = new byte[100 * card.ChannelCount * sizeof(float)];
                    Buffer.BlockCopy(streams[d], offset * card.ChannelCount * sizeof(float), chunk, 0, chunk.Length);
                    using var response = await client.PostAsync($"/v1/streams/{devices[d]}/samples", ServiceFixture.Bytes(chunk, "application/octet-stream"), Ct);
                    Assert.True(response.IsSuccessStatusCode, $"{devices[d]} at frame {offset}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
                }
            }

            // The first three are scored on their own windows (the timer scores every second; the bound is against a hang).
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            deadline.CancelAfter(TimeSpan.FromMinutes(2));
            foreach (var device in devices[..3])
            {
                while (true)
                {
                    using var drift = JsonDocument.Parse(await client.GetStringAsync($"/v1/drift?device={device}", deadline.Token));
                    Assert.True(drift.RootElement.GetProperty("monitored").GetBoolean(), $"{device} lost its monitor: {drift.RootElement}");
                    if (drift.RootElement.GetProperty("scored").GetBoolean())
                    {
                        Assert.Equal(device, drift.RootElement.GetProperty("device").GetString());
                        break;
                    }

                    await Task.Delay(200, deadline.Token);
                }
            }

            // The fourth came while the three streamed: it has no monitor, and the answer says why.
            using (var drift = JsonDocument.Parse(await client.GetStringAsync("/v1/drift?device=dev-3", Ct)))
            {
                var root = drift.RootElement;
                Assert.False(root.GetProperty("monitored").GetBoolean());
                Assert.False(root.GetProperty("scored").GetBoolean());
                Assert.Equal(3, root.GetProperty("devices").GetInt32());
                Assert.Equal(3, root.GetProperty("capacity").GetInt32());
                Assert.Contains("Har:Service:DriftMaxDevices", root.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            // A device that was monitored gets no detail.
            using (var drift = JsonDocument.Parse(await client.GetStringAsync("/v1/drift?device=dev-0", Ct)))
            {
                Assert.Equal(JsonValueKind.Null, drift.RootElement.GetProperty("detail").ValueKind);
            }

            // Its predictions are counted: one per window it completed (windows of 200 frames every 100 → 7 of 800 frames).
            var metrics = await client.GetStringAsync("/metrics", Ct);
            var windows = (800 - card.WindowLength) / card.Stride + 1;
            Assert.Equal(windows.ToString(CultureInfo.InvariantCulture), Metric(metrics, "har_drift_unmonitored_observations_total"));
            Assert.Equal("3", Metric(metrics, "har_drift_device_capacity"));
            Assert.Null(Metric(metrics, "har_drift_devices_evicted_total"));
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The drift metrics count the device monitor's scorings only. Found from outside: the service also started the
    /// single-stream <c>DriftMonitor</c>, which nothing feeds, and every scoring interval it scored an empty window under
    /// the same <c>monitor="streams"</c> label: one device scored once read as 39 scorings after two minutes,
    /// <c>har_drift_checks_without_evidence_total{check="short_window"}</c> grew by one a tick, and its empty verdicts
    /// were written to the channel gauges the device monitor publishes.
    /// </summary>
    [Fact]
    public async Task OneDeviceScoredOnce_TheDriftMetricsSayOnce()
    {
        var card = Card;
        var work = Directory.CreateTempSubdirectory("har-drift-metrics-");
        try
        {
            await using var service = await StartAsync(work);
            using var client = service.CreateClient();

            // 500 frames: the windows (200 frames every 100) cover exactly one drift window, scored once.
            var frames = Signal(card.ChannelCount, 500, seed: 2);
            var bytes = new byte[frames.Length * sizeof(float)];
            Buffer.BlockCopy(frames, 0, bytes, 0, bytes.Length);
            using (var response = await client.PostAsync("/v1/streams/only/samples", ServiceFixture.Bytes(bytes, "application/octet-stream"), Ct))
            {
                Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
            }

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            deadline.CancelAfter(TimeSpan.FromMinutes(2)); // against a hang
            while (true)
            {
                using var drift = JsonDocument.Parse(await client.GetStringAsync("/v1/drift?device=only", deadline.Token));
                if (drift.RootElement.GetProperty("scored").GetBoolean())
                {
                    break;
                }

                await Task.Delay(200, deadline.Token);
            }

            // Three more scoring intervals pass; the device has no new frames, so nothing more is scored.
            await Task.Delay(TimeSpan.FromSeconds(3.5), Ct);
            var metrics = await client.GetStringAsync("/metrics", Ct);
            Assert.Equal("1", Metric(metrics, "har_drift_scorings_total"));
            Assert.DoesNotContain("check=\"short_window\"", metrics, StringComparison.Ordinal);
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    internal static ModelCard Card => ServiceFixture.ChampionCard(ServiceProcess.HasBundledModels ? ServiceProcess.BundledModelsDirectory : ServiceProcess.FixturesDirectory);

    /// <summary>
    /// Starts the service on a drift profile (in <paramref name="work"/>) of a synthetic signal, with drift windows of 500
    /// frames scored every second, and the <paramref name="more"/> settings.
    /// The profile is built once per <paramref name="work"/> folder: a service restarted on it scores against the same one.
    /// </summary>
    internal static async Task<ServiceProcess> StartAsync(DirectoryInfo work, params (string Key, string Value)[] more)
    {
        var card = Card;
        var profilePath = Path.Combine(work.FullName, "profile.json");
        if (!File.Exists(profilePath))
        {
            new ReferenceProfileBuilder([.. card.Channels], new ReferenceProfileOptions { SegmentLength = 500 })
                .AddRecording("reference", Signal(card.ChannelCount, 3000, seed: 1))
                .Build("test")
                .Save(profilePath);
        }

        var settings = new Dictionary<string, string>
        {
            ["Har:Service:DriftProfilePath"] = profilePath,
            ["Har:Service:DriftWindowFrames"] = "500",
            ["Har:Service:DriftScoreInterval"] = "00:00:01",
        };
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }

        return await ServiceProcess.StartAsync(settings, cancellationToken: Ct);
    }

    /// <summary>The value of a metric's <c>monitor="streams"</c> series, or null when the service exports none.</summary>
    private static string? Metric(string exposition, string name)
    {
        var match = Regex.Match(exposition, $"^{name}\\{{monitor=\"streams\"[^}}]*\\}} (?<v>\\S+)$", RegexOptions.Multiline);
        return match.Success ? match.Groups["v"].Value : null;
    }

    /// <summary>A plausible interleaved signal: gravity on the first channel, slow oscillations and noise on all.</summary>
    internal static float[] Signal(int channels, int frames, int seed)
    {
        var random = new Random(seed);
        var values = new float[frames * channels];
        for (var t = 0; t < frames; t++)
        {
            for (var c = 0; c < channels; c++)
            {
                values[(t * channels) + c] = (c == 0 ? 1f : 0f) + (0.3f * MathF.Sin((t * 0.07f * (c + 1)) + seed)) + (0.05f * (float)(random.NextDouble() - 0.5));
            }
        }

        return values;
    }
}
