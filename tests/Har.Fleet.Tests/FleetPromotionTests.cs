using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Har.Testing;

namespace Har.Fleet.Tests;

/// <summary>
/// The healthy candidate on the fleet, as devices and operators use it: HAPT test streams through nginx (each device's
/// samples hashed to one replica) with several appends in flight, a canary of the bundled 1.1.0 started on replica 1 and
/// analysed by whichever replica leads over the observations of all three, promoted with the built-in default gates; each
/// device switches from the champion to the candidate at most once (its bucket is sticky) and ends on the candidate; every
/// step is in the fleet's one audit log once, and the log verifies in the database.
/// </summary>
[Collection(FleetDefinition.Name)]
public sealed class FleetPromotionTests(LocalFleet fleet, ITestOutputHelper output)
{
    private const int Devices = 120;
    private const int InFlight = 8;
    private const int FramesPerAppend = 64;
    private const string Candidate = "1.1.0";
    private const string Champion = "1.0.0";
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(10);

    [Fact]
    public async Task HealthyCanary_HaptStreamsThroughNginx_PromotedWithDefaultGatesEachStepAuditedOnce()
    {
        fleet.RequireTools();
        var ct = TestContext.Current.CancellationToken;
        var recordings = HaptStreams.Load(TestPaths.RequireSharedData(), 12, 6000);
        var clients = fleet.Replicas.Select(r => fleet.Client(r)).ToArray();
        using var entry = fleet.Client(fleet.EntryPoint, withKey: false);
        string? rolloutId = null;
        try
        {
            var before = await FleetHttp.RolloutStatusAsync(clients[0]);
            if (before is { } b && !FleetHttp.Terminal.Contains(b.GetProperty("phase").GetString()))
            {
                await FleetHttp.PostAsync(clients[0], "/v1/rollouts/current/abort", null, HttpStatusCode.OK);
            }

            await RestoreChampionAsync(clients[0]);
            using (var start = new StringContent($$"""{"candidate": "{{Candidate}}", "strategy": "canary", "reason": "fleet test: healthy candidate"}""", Encoding.UTF8, "application/json"))
            {
                rolloutId = JsonDocument.Parse(await FleetHttp.PostAsync(clients[0], "/v1/rollouts", start, HttpStatusCode.Accepted)).RootElement.GetProperty("rollout_id").GetString()!;
            }

            // Devices replay HAPT recordings (12 test sessions, each device from its own offset) through nginx, 8 appends in
            // flight, until the rollout ends. Each append of 64 frames completes one window.
            var served = new ConcurrentDictionary<string, List<string>>(StringComparer.Ordinal);
            var replicaOf = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
            var refused = 0;
            var windows = 0;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var clock = Stopwatch.StartNew();
            var traffic = Enumerable.Range(0, InFlight).Select(worker => Task.Run(async () =>
            {
                var position = new int[Devices];
                while (!stop.IsCancellationRequested)
                {
                    for (var d = worker; d < Devices && !stop.IsCancellationRequested; d += InFlight)
                    {
                        var device = $"fleet-promotion-device-{d:000}";
                        var recording = recordings[d % recordings.Count];
                        var frames = recording.Frames / FramesPerAppend * FramesPerAppend;
                        var offset = ((d * 7 * FramesPerAppend) + position[d]) % frames;
                        position[d] += FramesPerAppend;
                        AppendAnswer answer;
                        try
                        {
                            answer = await FleetHttp.AppendAsync(entry, device, recording.Samples.AsMemory(offset * 6, FramesPerAppend * 6), stop.Token);
                        }
                        catch (OperationCanceledException) when (stop.IsCancellationRequested)
                        {
                            return;
                        }

                        if (answer.Status != HttpStatusCode.OK)
                        {
                            Interlocked.Increment(ref refused);
                            continue;
                        }

                        if (answer.Replica is { } replica && replicaOf.GetOrAdd(device, replica) != replica)
                        {
                            Assert.Fail($"{device} was answered by replica {replicaOf[device]} and then by {replica}: a device's samples must reach one replica");
                        }

                        var list = served.GetOrAdd(device, _ => []);
                        lock (list)
                        {
                            list.AddRange(answer.Windows.Select(w => w.Version));
                        }

                        Interlocked.Add(ref windows, answer.Windows.Count);

                        // About 20 appends per second per worker: modest traffic, the machine stays responsive.
                        await Task.Delay(40, CancellationToken.None);
                    }
                }
            }, CancellationToken.None)).ToArray();

            JsonElement status = default;
            try
            {
                while (true)
                {
                    await Task.Delay(1000, ct);
                    if (await FleetHttp.RolloutStatusAsync(clients[0]) is { } s)
                    {
                        status = s;
                        if (s.GetProperty("rollout_id").GetString() == rolloutId && FleetHttp.Terminal.Contains(s.GetProperty("phase").GetString()))
                        {
                            break;
                        }
                    }

                    Assert.True(clock.Elapsed < Bound, $"the healthy canary did not end within {Bound.TotalMinutes} min ({windows} windows served); last status: {status}");
                    if (traffic.FirstOrDefault(t => t.IsFaulted) is { } faulted)
                    {
                        Assert.Fail($"the traffic failed: {faulted.Exception}");
                    }
                }
            }
            finally
            {
                await stop.CancelAsync();
                await Task.WhenAll(traffic);
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{windows} windows of {served.Count} devices through nginx in {clock.Elapsed.TotalSeconds:0} s ({refused} appends refused); replicas used: {string.Join(", ", replicaOf.Values.Distinct().Order())}"));
            output.WriteLine($"final status: {status}");
            Assert.True(status.GetProperty("phase").GetString() == "Succeeded", $"the healthy candidate was not promoted: {status}");
            Assert.Equal(0, refused);
            Assert.True(replicaOf.Values.Distinct().Count() >= 2, "every device hashed to one replica: the test would not exercise the fleet");

            // Buckets are sticky: a device moves from the champion to the candidate once, as the weight grows, and never back.
            var switched = 0;
            foreach (var (device, versions) in served)
            {
                var first = versions.FindIndex(v => v == Candidate);
                Assert.True(versions.All(v => v is Candidate or Champion), $"{device} was served {string.Join(", ", versions.Distinct())}");
                Assert.True(first < 0 || versions.Skip(first).All(v => v == Candidate), $"{device} went back to the champion after the candidate served it: {string.Join(" ", versions)}");
                switched += first > 0 ? 1 : 0;
            }

            Assert.True(switched > 0, "no device moved from the champion to the candidate during the rollout");

            // Every replica serves the candidate now, and the fleet's one log holds each step of this rollout once.
            foreach (var client in clients)
            {
                var s = await FleetHttp.RolloutStatusAsync(client);
                Assert.Equal(Candidate, s!.Value.GetProperty("current_version").GetString());
            }

            var steps = await FleetHttp.StepsAsync(clients[2], rolloutId, ct);
            output.WriteLine($"steps in the audit log: {string.Join(", ", steps)}");
            Assert.Equal(Enumerable.Range(0, steps.Count), steps);
            Assert.True(steps.Count >= 3, $"{steps.Count} steps audited; the canary has at least three");

            var (exit, text) = await fleet.RunCliAsync("audit", "verify");
            Assert.True(exit == 0, $"har audit verify on the database: exit {exit}\n{text}");
        }
        finally
        {
            if (rolloutId is not null && await FleetHttp.RolloutStatusAsync(clients[0]) is { } last && !FleetHttp.Terminal.Contains(last.GetProperty("phase").GetString()))
            {
                await FleetHttp.PostAsync(clients[0], "/v1/rollouts/current/abort", null, HttpStatusCode.OK);
            }

            // The other fleet tests start from the champion.
            await RestoreChampionAsync(clients[0]);
            foreach (var c in clients)
            {
                c.Dispose();
            }
        }
    }

    /// <summary>Rolls back to the champion (an audited rollback to a named earlier version) when another version serves.</summary>
    private static async Task RestoreChampionAsync(HttpClient client)
    {
        if (await FleetHttp.RolloutStatusAsync(client) is { } s && s.TryGetProperty("current_version", out var current) && current.GetString() is { } version && version != Champion)
        {
            using var body = new StringContent($$"""{"to": "{{Champion}}", "reason": "fleet test: the other tests start from the champion"}""", Encoding.UTF8, "application/json");
            await FleetHttp.PostAsync(client, "/v1/rollouts/rollback", body, HttpStatusCode.OK);
        }
    }
}
