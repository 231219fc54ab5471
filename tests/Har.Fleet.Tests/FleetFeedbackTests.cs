using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Har.Inference;
using Har.Testing;

namespace Har.Fleet.Tests;

/// <summary>
/// Feedback labels in a fleet. A label joins the windows of its stream, which one replica holds; the accuracy gate runs
/// on the leader. Devices stream to the two followers only. Their labels are posted either per stream on the follower
/// that holds the stream (<c>POST /v1/streams/{id}/feedback</c>, which the proxy hashes like the stream's samples) or
/// all to the leader's <c>POST /v1/feedback</c>, which holds none of the streams (a proxy that balances it anywhere;
/// the bundled Kubernetes ingress does). Either way they must reach the leader's accuracy gate: replicas forward the
/// labels they receive through the database, and write the windows they labelled to har_fleet.labelled_windows, which the leader reads.
/// Before, each replica kept its labels, so the leader judged accuracy on nothing ("No labelled windows").
/// </summary>
[Collection(FleetDefinition.Name)]
public sealed class FleetFeedbackTests(LocalFleet fleet, ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(4);

    [Theory]
    [InlineData(false, "1.5.0")]
    [InlineData(true, "1.6.0")]
    public async Task Labels_ReachTheLeadersAccuracyGate_WhereverTheyArePosted(bool onTheLeader, string version)
    {
        fleet.RequireTools();
        var ct = TestContext.Current.CancellationToken;
        var streams = HaptStreams.Load(TestPaths.RequireSharedData(), 4, 12_000);
        var card = ModelCard.Load(TestPaths.ChampionModel);
        var clients = fleet.Replicas.Select(r => fleet.Client(r)).ToArray();
        using var proxy = fleet.Client(fleet.EntryPoint);
        try
        {
            await FleetHttp.AbortActiveAsync(clients[0]);

            // Through the proxy: a stream's feedback path reaches the replica that holds the stream's windows.
            var probe = await FleetHttp.AppendAsync(proxy, "fleet-feedback-proxy", streams[0].Samples.AsMemory(0, 400 * 6), ct);
            Assert.True(probe.Windows.Count > 0, probe.Body);
            var (_, labelledThere, labelReplica) = await LabelAsync(proxy, "fleet-feedback-proxy", probe.Windows, card.WindowLength, ct);
            Assert.Equal(probe.Replica, labelReplica);
            Assert.Equal(probe.Windows.Count, labelledThere);

            // A copy of the champion's network under a new version: the candidate.
            var model = OnnxModelEditor.WithKey(File.ReadAllBytes(TestPaths.ChampionModel), "har.model_version", version);
            using (var upload = new ByteArrayContent(model))
            {
                upload.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                await FleetHttp.PostAsync(clients[0], "/v1/models?approved_by=fleet-test&run_id=feedback", upload, HttpStatusCode.Created);
            }

            string rolloutId;
            using (var start = new StringContent($$"""{"candidate": "{{version}}", "strategy": "canary", "reason": "fleet feedback test"}""", Encoding.UTF8, "application/json"))
            {
                rolloutId = JsonDocument.Parse(await FleetHttp.PostAsync(clients[0], "/v1/rollouts", start, HttpStatusCode.Accepted)).RootElement.GetProperty("rollout_id").GetString()!;
            }

            var leader = await FleetHttp.LeaderAsync(clients, Bound);
            var followers = Enumerable.Range(1, clients.Length).Where(r => r != leader).ToArray();
            output.WriteLine($"replica {leader} leads; the devices stream to replicas {string.Join(" and ", followers)} and are labelled there");

            // Each device streams 2 s at a time to one follower; each window it completes is labelled on that follower
            // at once (here with the answer it got: what matters is where the labels are judged, not what they say).
            var clock = Stopwatch.StartNew();
            var labelled = 0;
            var accuracy = default(JsonElement);
            for (var chunk = 0; ; chunk++)
            {
                for (var d = 0; d < streams.Count; d++)
                {
                    var frames = streams[d].Frames;
                    var start = (chunk * 100) % (frames - 100);
                    var device = $"fleet-feedback-device-{d}";
                    var client = clients[followers[d % followers.Length] - 1];
                    var answer = await FleetHttp.AppendAsync(client, device, streams[d].Samples.AsMemory(start * 6, 100 * 6), ct);
                    Assert.True(answer.Status == HttpStatusCode.OK, answer.Body);
                    if (answer.Windows.Count > 0 && !onTheLeader)
                    {
                        labelled += (await LabelAsync(client, device, answer.Windows, card.WindowLength, ct)).Windows;
                    }
                    else if (answer.Windows.Count > 0)
                    {
                        // The leader holds none of these windows: it labels nothing itself, and forwards the labels.
                        Assert.Equal(0, (await LabelAsync(clients[leader - 1], device, answer.Windows, card.WindowLength, ct, manyStreams: true)).Windows);
                        labelled += answer.Windows.Count;
                    }
                }

                if (chunk % 10 == 0 && await FleetHttp.RolloutStatusAsync(clients[leader - 1]) is { } s && s.GetProperty("rollout_id").GetString() == rolloutId
                    && s.GetProperty("last_analysis") is { ValueKind: JsonValueKind.Object } analysis)
                {
                    accuracy = analysis.GetProperty("gates").EnumerateArray().FirstOrDefault(g => g.GetProperty("gate").GetString() == "accuracy");
                    if (accuracy.ValueKind == JsonValueKind.Object && accuracy.GetProperty("evidence").TryGetProperty("candidate_labelled", out var n) && n.GetDouble() > 0)
                    {
                        break;
                    }

                    Assert.False(FleetHttp.Terminal.Contains(s.GetProperty("phase").GetString()), $"the rollout ended before the leader's accuracy gate saw a label: {s}");
                }

                Assert.True(clock.Elapsed < Bound, $"the leader's accuracy gate saw none of the {labelled} windows labelled on the followers within {Bound.TotalMinutes} min; its last verdict: {accuracy}\n{fleet.ReplicaLog(leader)}");
                await Task.Delay(100, ct);
            }

            output.WriteLine($"{labelled} windows labelled on the followers; the leader's accuracy gate: {accuracy}");
            var evidence = accuracy.GetProperty("evidence");
            Assert.True(evidence.GetProperty("stable_labelled").GetDouble() > 0, accuracy.ToString());
            Assert.True(evidence.GetProperty("paired").GetDouble() > 0, accuracy.ToString());
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

    /// <summary>Labels each window with the answer it got, through <c>POST /v1/streams/{id}/feedback</c>; returns the status, the windows labelled and the replica that answered.</summary>
    private static async Task<(HttpStatusCode Status, int Windows, string? Replica)> LabelAsync(HttpClient client, string streamId, IReadOnlyList<(long StartFrame, string Version, string Label)> windows, int windowLength, CancellationToken ct, bool manyStreams = false)
    {
        var stream = manyStreams ? $"\"stream_id\": \"{streamId}\", " : string.Empty;
        var labels = string.Join(",", windows.Select(w => "{" + stream + $"\"activity\": \"{w.Label}\", \"start_frame\": {w.StartFrame}, \"end_frame\": {w.StartFrame + windowLength}" + "}"));
        using var content = new StringContent($$"""{"labels": [{{labels}}]}""", Encoding.UTF8, "application/json");
        var path = manyStreams ? "/v1/feedback" : $"/v1/streams/{Uri.EscapeDataString(streamId)}/feedback";
        using var response = await client.PostAsync(new Uri(path, UriKind.Relative), content, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"feedback for {streamId}: {(int)response.StatusCode} {body}");
        var replica = response.Headers.TryGetValues("X-Har-Replica", out var values) ? values.First() : null;
        return (response.StatusCode, JsonDocument.Parse(body).RootElement.GetProperty("labelled_windows").GetInt32(), replica);
    }
}
