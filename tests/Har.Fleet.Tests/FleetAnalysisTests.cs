using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Har.Inference;
using Har.Testing;

namespace Har.Fleet.Tests;

/// <summary>
/// The leader's analysis judges the whole fleet's traffic: a faulty candidate (valid, but its predictions have nothing to
/// do with the champion's) is canaried while devices are served only by the two followers; the leader, which served
/// nothing, analyses what the followers shipped, fails the candidate and rolls it back on every replica, audited once.
/// </summary>
[Collection(FleetDefinition.Name)]
public sealed class FleetAnalysisTests(LocalFleet fleet, ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task FaultyCanary_TrafficOnFollowersOnly_LeaderAnalysesTheirObservationsAndRollsBack()
    {
        fleet.RequireTools();
        var ct = TestContext.Current.CancellationToken;
        var recording = HaptStreams.Load(TestPaths.RequireSharedData(), 1, 6000)[0];
        var card = ModelCard.Load(TestPaths.ChampionModel);
        var clients = fleet.Replicas.Select(r => fleet.Client(r)).ToArray();
        const string Version = "1.3.0";
        try
        {
            await FleetHttp.AbortActiveAsync(clients[0]);

            var faulty = OnnxModelEditor.WithKey(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny-huge-logits-1.2.0.onnx")), "har.model_version", Version);
            using (var upload = new ByteArrayContent(faulty))
            {
                upload.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                await FleetHttp.PostAsync(clients[0], "/v1/models?approved_by=fleet-test&run_id=faulty-candidate", upload, HttpStatusCode.Created);
            }

            string rolloutId;
            using (var start = new StringContent($$"""{"candidate": "{{Version}}", "strategy": "canary", "reason": "fleet analysis test: faulty candidate"}""", Encoding.UTF8, "application/json"))
            {
                rolloutId = JsonDocument.Parse(await FleetHttp.PostAsync(clients[0], "/v1/rollouts", start, HttpStatusCode.Accepted)).RootElement.GetProperty("rollout_id").GetString()!;
            }

            var leader = await FleetHttp.LeaderAsync(clients, Bound);
            var followers = Enumerable.Range(1, clients.Length).Where(r => r != leader).ToArray();
            output.WriteLine($"replica {leader} leads; devices are served by replicas {string.Join(" and ", followers)} only");

            // Devices on the followers only, until the rollout ends; the leader serves nothing. Windows of a real recording,
            // every one different, so the candidate's disagreement with the champion shows.
            var size = card.WindowLength * 6;
            var windows = Enumerable.Range(0, recording.Samples.Length / size).Select(w => MemoryMarshal.AsBytes(recording.Samples.AsSpan(w * size, size)).ToArray()).ToArray();
            Assert.True(windows.Length >= 20, $"the recording holds {windows.Length} windows");
            var served = new Dictionary<string, int>(StringComparer.Ordinal);
            var clock = Stopwatch.StartNew();
            JsonElement status = default;
            for (var i = 0; ; i++)
            {
                var replica = followers[i % followers.Length];
                var version = await FleetHttp.PredictAsync(clients[replica - 1], $"fleet-analysis-device-{i % 400:000}", windows[i % windows.Length], ct);
                served[version] = served.GetValueOrDefault(version) + 1;
                if (i % 50 == 0 && await FleetHttp.RolloutStatusAsync(clients[leader - 1]) is { } s)
                {
                    status = s;
                    if (s.GetProperty("rollout_id").GetString() == rolloutId && FleetHttp.Terminal.Contains(s.GetProperty("phase").GetString()))
                    {
                        break;
                    }
                }

                Assert.True(clock.Elapsed < Bound, $"the faulty canary did not end within {Bound.TotalMinutes} min; last status on the leader: {status}\n{fleet.ReplicaLog(leader)}");
            }

            output.WriteLine($"windows served by the followers: {string.Join(", ", served.Select(kv => $"{kv.Key}: {kv.Value}"))}; leader's status: {status}");
            Assert.Equal("RolledBack", status.GetProperty("phase").GetString());
            Assert.True(served.GetValueOrDefault(Version) > 0, "the followers never served the candidate");

            // The leader rolled back on a failed analysis of observations it did not make itself.
            var analysis = status.GetProperty("last_analysis");
            Assert.Equal("Fail", analysis.GetProperty("verdict").GetString());
            Assert.Contains(analysis.GetProperty("gates").EnumerateArray(), g => g.GetProperty("verdict").GetString() == "Fail");

            // Every replica serves the champion again (a follower learns the state by NOTIFY, a moment after the leader
            // wrote it: waited for, bounded), and the rollback is in the fleet's one log once.
            foreach (var client in clients)
            {
                var converged = Stopwatch.StartNew();
                var s = await FleetHttp.RolloutStatusAsync(client);
                while (s!.Value.GetProperty("candidate_percent").GetDouble() != 0 && converged.Elapsed < TimeSpan.FromSeconds(60))
                {
                    await Task.Delay(200, ct);
                    s = await FleetHttp.RolloutStatusAsync(client);
                }

                Assert.Equal(rolloutId, s!.Value.GetProperty("rollout_id").GetString());
                Assert.Equal(0, s.Value.GetProperty("candidate_percent").GetDouble());
            }

            using var events = JsonDocument.Parse(await GetAsync(clients[followers[0] - 1], $"/v1/audit/events?entity_id={Uri.EscapeDataString(rolloutId)}&event_type=rollout.rollback", ct));
            Assert.Single(events.RootElement.GetProperty("entries").EnumerateArray());
        }
        finally
        {
            await FleetHttp.AbortActiveAsync(clients[0]);

            foreach (var c in clients)
            {
                c.Dispose();
            }
        }
    }

    private static async Task<string> GetAsync(HttpClient client, string path, CancellationToken ct)
    {
        using var response = await client.GetAsync(new Uri(path, UriKind.Relative), ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)response.StatusCode} {body}");
        return body;
    }
}
