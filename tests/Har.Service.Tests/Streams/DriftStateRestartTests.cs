using System.Text.Json;
using Har.Drift;
using Har.Inference.Data;
using Har.Testing;

namespace Har.Service.Tests.Streams;

/// <summary>
/// The service's drift state outlives the process (<c>Har:Service:DriftStatePath</c>, by default beside
/// <c>rollout.json</c>). Before it, a crash or a deploy lowered every device's raised alarm: <c>GET /v1/drift/alarms</c>
/// came back empty and the HarDeviceDriftAlarm alert resolved, although nothing about the faulty device had changed.
/// </summary>
public sealed class DriftStateRestartTests
{
    private const string Faulty = "ay-stuck";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task DeviceInARaisedAlarm_ServiceKilled_RestartedServiceStillListsIt()
    {
        // A profile with a calibrated alarm needs real motion: four HAPT training recordings, one-minute windows of 500 frames.
        var hapt = TestPaths.RequireSharedData();
        var sessions = SensorDataset.Load(hapt, "train", cancellationToken: Ct);
        var test = SensorDataset.Load(hapt, "test", cancellationToken: Ct);
        var work = Directory.CreateTempSubdirectory("har-drift-state-");
        SaveHaptProfile(sessions, Path.Combine(work.FullName, "profile.json"));
        var data = Path.Combine(work.FullName, "data");
        var statePath = Path.Combine(data, "registry", ".rollout", "drift-state.bin");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromMinutes(4)); // against a hang
        try
        {
            string cause;
            await using (var service = await DriftCapacityTests.StartAsync(work, ("Har:Service:DataDirectory", data)))
            {
                using var client = service.CreateClient();

                // A device whose ay repeats one value (a stuck channel: decisive on one window), and a healthy one.
                await PostAsync(client, Faulty, Stuck(test[0].Samples[..(1000 * 6)]), deadline.Token);
                await PostAsync(client, "healthy", test[1].Samples[..(1000 * 6)], deadline.Token);
                JsonElement listed;
                for (var attempt = 0; ; attempt++)
                {
                    if (attempt == 150)
                    {
                        using var report = JsonDocument.Parse(await client.GetStringAsync($"/v1/drift?device={Faulty}", deadline.Token));
                        var r = report.RootElement.GetProperty("report");
                        Assert.Fail($"{Faulty} was never listed: alarm {r.GetProperty("alarm")}, findings {r.GetProperty("findings")}, unchecked {r.GetProperty("unchecked")}");
                    }

                    using var alarms = JsonDocument.Parse(await client.GetStringAsync("/v1/drift/alarms", deadline.Token));
                    var faulty = alarms.RootElement.GetProperty("alarmed").EnumerateArray().Where(a => a.GetProperty("device").GetString() == Faulty).ToList();
                    if (faulty.Count == 1)
                    {
                        listed = faulty[0].GetProperty("alarm").Clone();
                        break;
                    }

                    await Task.Delay(200, deadline.Token);
                }

                cause = listed.GetProperty("cause").GetString()!;
                Assert.Equal("Stuck", cause);

                // The tick that raised the alarm saves the state at its end (an alarm change is saved at once; other
                // scorings only every StateSaveInterval, 5 minutes): the data folder is new, so the first state file
                // there is that save.
                while (!File.Exists(statePath))
                {
                    await Task.Delay(100, deadline.Token);
                }
            } // disposed: SIGKILL (Process.Kill), no graceful shutdown

            await using var restarted = await DriftCapacityTests.StartAsync(work, ("Har:Service:DataDirectory", data));
            using var again = restarted.CreateClient();
            using (var alarms = JsonDocument.Parse(await again.GetStringAsync("/v1/drift/alarms", deadline.Token)))
            {
                var root = alarms.RootElement;
                var item = Assert.Single(root.GetProperty("alarmed").EnumerateArray());
                Assert.Equal(Faulty, item.GetProperty("device").GetString());
                Assert.Equal(cause, item.GetProperty("alarm").GetProperty("cause").GetString());
                Assert.True(item.GetProperty("alarm").GetProperty("raised").GetBoolean());
                Assert.Equal(2, root.GetProperty("devices").GetInt32());
            }

            // Its report answers as before the crash, and the by-cause gauge the alert reads is back without new frames.
            using (var drift = JsonDocument.Parse(await again.GetStringAsync($"/v1/drift?device={Faulty}", deadline.Token)))
            {
                Assert.True(drift.RootElement.GetProperty("scored").GetBoolean());
                Assert.Equal("Stuck", drift.RootElement.GetProperty("report").GetProperty("alarm").GetProperty("cause").GetString());
            }

            var metrics = await again.GetStringAsync("/metrics", deadline.Token);
            Assert.Contains("har_drift_devices_alarmed_by_cause{monitor=\"streams\",cause=\"Stuck\"} 1", metrics, StringComparison.Ordinal);
            Assert.Contains("\"EventId\":4009", restarted.Output, StringComparison.Ordinal); // "restored 2 devices from …"
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>Saves a drift profile with a calibrated alarm (it needs real motion): four HAPT training recordings, one-minute windows of 500 frames.</summary>
    internal static void SaveHaptProfile(IReadOnlyList<SensorSession> sessions, string path)
    {
        var builder = new ReferenceProfileBuilder([.. DriftCapacityTests.Card.Channels], new ReferenceProfileOptions { SegmentLength = 500 });
        foreach (var s in sessions.Take(4))
        {
            builder.AddRecording($"subject-{s.Subject}-{s.Session}", s.Samples);
        }

        builder.Build("HAPT training recordings (drift state restart test)").Save(path);
    }

    /// <summary>The frames with ay (channel 1) stuck at 0.25.</summary>
    internal static float[] Stuck(float[] frames)
    {
        for (var i = 1; i < frames.Length; i += 6)
        {
            frames[i] = 0.25f;
        }

        return frames;
    }

    internal static async Task PostAsync(HttpClient client, string device, float[] frames, CancellationToken ct)
    {
        var bytes = new byte[frames.Length * sizeof(float)];
        Buffer.BlockCopy(frames, 0, bytes, 0, bytes.Length);
        using var response = await client.PostAsync($"/v1/streams/{device}/samples", ServiceFixture.Bytes(bytes, "application/octet-stream"), ct);
        Assert.True(response.IsSuccessStatusCode, $"{device}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
    }
}
