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
/// Model files in the fleet's database, through HTTP: a model uploaded to replica 1 only is the candidate of a canary
/// started on replica 2, and replica 3 (which never received it) serves it to the devices its bucket sends there; the
/// command line reads the fleet's state from the database (<c>har models list</c>, <c>har models verify</c>,
/// <c>har rollout status</c>).
/// </summary>
[Collection(FleetDefinition.Name)]
public sealed class FleetModelFilesTests(LocalFleet fleet, ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task ModelUploadedToReplicaOne_CanaryStartedOnReplicaTwo_ServedByReplicaThree()
    {
        fleet.RequireTools();
        var ct = TestContext.Current.CancellationToken;
        var window = HaptStreams.Load(TestPaths.RequireSharedData(), 1, 400)[0];
        var card = ModelCard.Load(TestPaths.ChampionModel);
        var clients = fleet.Replicas.Select(r => fleet.Client(r)).ToArray();
        const string Version = "1.4.0";
        try
        {
            if (await PhaseAsync(clients[0]) is { } phase && !FleetHttp.Terminal.Contains(phase))
            {
                await FleetHttp.PostAsync(clients[0], "/v1/rollouts/current/abort", null, HttpStatusCode.OK);
            }

            // The previous candidate's network (single windows, as the fleet serves by default) under a new version, uploaded to replica 1 only.
            var model = OnnxModelEditor.WithKey(File.ReadAllBytes(TestPaths.PlainCandidateModel), "har.model_version", Version);
            using (var upload = new ByteArrayContent(model))
            {
                upload.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                await FleetHttp.PostAsync(clients[0], "/v1/models?approved_by=fleet-test", upload, HttpStatusCode.Created);
            }

            // Started on replica 2, which has not seen the file: it fetches it from the database, verified against the log.
            using (var start = new StringContent($$"""{"candidate": "{{Version}}", "strategy": "canary", "reason": "registered on another replica"}""", Encoding.UTF8, "application/json"))
            {
                await FleetHttp.PostAsync(clients[1], "/v1/rollouts", start, HttpStatusCode.Accepted);
            }

            // Replica 3 follows the canary weight and serves the new version to the devices whose bucket says so.
            var devices = Enumerable.Range(0, 60).Select(i => $"fleet-model-device-{i:000}").ToArray();
            var clock = Stopwatch.StartNew();
            var onCandidate = 0;
            while (onCandidate == 0)
            {
                Assert.True(clock.Elapsed < Bound, $"replica 3 served no window with {Version} within {Bound.TotalSeconds} s.\n{fleet.ReplicaLog(3)}");
                onCandidate = 0;
                foreach (var device in devices)
                {
                    onCandidate += await VersionAsync(clients[2], device, window.Samples.AsMemory(0, card.WindowLength * 6), ct) == Version ? 1 : 0;
                }

                await Task.Delay(200, ct);
            }

            output.WriteLine($"replica 3 served {Version} to {onCandidate} of {devices.Length} devices");
            Assert.InRange(onCandidate, 1, devices.Length - 1);

            // Every replica lists it (fetched and verified); the command line reads it all from the database.
            foreach (var client in clients)
            {
                using var response = await client.GetAsync(new Uri($"/v1/models/{Version}", UriKind.Relative), ct);
                var body = await response.Content.ReadAsStringAsync(ct);
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET /v1/models/{Version} on {client.BaseAddress}: {(int)response.StatusCode} {body}");
                Assert.True(JsonDocument.Parse(body).RootElement.GetProperty("verified").GetBoolean(), body);
            }

            var (code, list) = await fleet.RunCliAsync("models", "list");
            Assert.True(code == 0, list);
            Assert.Contains($" {Version} ", list, StringComparison.Ordinal);
            (code, var verify) = await fleet.RunCliAsync("models", "verify");
            Assert.True(code == 0, verify);
            Assert.Contains($"ok    {Version}", verify, StringComparison.Ordinal);
            (code, var status) = await fleet.RunCliAsync("rollout", "status");
            Assert.True(code == 0, status);
            Assert.Contains($"-> {Version}", status, StringComparison.Ordinal);
            Assert.Contains("leader    ", status, StringComparison.Ordinal);

            // Each service process renews its heartbeat. A replica another test SIGKILLed (and replaced) keeps counting
            // until its heartbeat expires, within the lease duration: the count settles at the three running.
            output.WriteLine($"har rollout status, first read: {status.Split('\n').FirstOrDefault(l => l.Contains("replicas", StringComparison.Ordinal))?.Trim()}");
            var settle = System.Diagnostics.Stopwatch.StartNew();
            while (!status.Contains("replicas  3 live", StringComparison.Ordinal) && settle.Elapsed < TimeSpan.FromSeconds(45))
            {
                await Task.Delay(1000, CancellationToken.None);
                (code, status) = await fleet.RunCliAsync("rollout", "status");
                Assert.True(code == 0, status);
            }

            output.WriteLine($"settled after {settle.Elapsed.TotalSeconds:0} s");
            Assert.Contains("replicas  3 live", status, StringComparison.Ordinal);
        }
        finally
        {
            if (await PhaseAsync(clients[2]) is { } last && !FleetHttp.Terminal.Contains(last))
            {
                await FleetHttp.PostAsync(clients[2], "/v1/rollouts/current/abort", null, HttpStatusCode.OK);
            }

            foreach (var c in clients)
            {
                c.Dispose();
            }
        }
    }

    private static async Task<string?> PhaseAsync(HttpClient client)
    {
        using var response = await client.GetAsync(new Uri("/v1/rollouts/current", UriKind.Relative), CancellationToken.None);
        return response.StatusCode == HttpStatusCode.OK
            ? JsonDocument.Parse(await response.Content.ReadAsStringAsync(CancellationToken.None)).RootElement.GetProperty("phase").GetString()
            : null;
    }

    private static Task<string> VersionAsync(HttpClient client, string device, ReadOnlyMemory<float> window, CancellationToken ct) =>
        FleetHttp.PredictAsync(client, device, MemoryMarshal.AsBytes(window.Span).ToArray(), ct);
}
