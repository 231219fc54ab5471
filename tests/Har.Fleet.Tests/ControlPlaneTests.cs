using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Har.Inference;
using Har.Testing;

namespace Har.Fleet.Tests;

/// <summary>
/// The fleet's control plane through HTTP, as operators and devices use it: a canary started on replica 1 is visible on
/// replicas 2 and 3 within 2 s (the issue's bound) and every later state change too; a device gets the same version
/// whichever replica answers; SIGKILL of the leader mid-rollout → another replica leads within 15 s (the issue's bound),
/// the rollout carries on, and the audit log shows each step once.
/// </summary>
[Collection(FleetDefinition.Name)]
public sealed class ControlPlaneTests(LocalFleet fleet, ITestOutputHelper output)
{
    private static readonly TimeSpan Propagation = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Failover = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Rollout_StartedOnOneReplica_FollowedEverywhereWithinTwoSecondsAndLeaderFailoverWithinFifteen()
    {
        fleet.RequireTools();
        var window = HaptStreams.Load(TestPaths.RequireSharedData(), 1, 400)[0];
        var card = ModelCard.Load(TestPaths.ChampionModel);
        var ct = TestContext.Current.CancellationToken;
        var clients = fleet.Replicas.Select(r => fleet.Client(r)).ToArray();
        string? rolloutId = null;
        int? killed = null;
        try
        {
            var before = await StatusAsync(clients[0]);
            if (before is { } b && !FleetHttp.Terminal.Contains(b.Phase))
            {
                await CommandAsync(clients[0], "abort");
            }

            // Followers' views, polled from before the start: when each first shows the new rollout.
            var clock = Stopwatch.StartNew();
            var seen = new ConcurrentDictionary<int, TimeSpan>();
            using var polling = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var pollers = new[] { 2, 3 }.Select(r => Task.Run(async () =>
            {
                while (!polling.IsCancellationRequested && !seen.ContainsKey(r))
                {
                    if (await StatusAsync(clients[r - 1]) is { } s && s.RolloutId != before?.RolloutId && s.Candidate == "1.1.0")
                    {
                        seen.TryAdd(r, clock.Elapsed);
                    }

                    await Task.Delay(10, CancellationToken.None);
                }
            }, CancellationToken.None)).ToArray();

            using var start = new StringContent("""{"candidate": "1.1.0", "strategy": "canary", "reason": "fleet end-to-end test"}""", Encoding.UTF8, "application/json");
            using (var response = await clients[0].PostAsync(new Uri("/v1/rollouts", UriKind.Relative), start, ct))
            {
                var body = await response.Content.ReadAsStringAsync(ct);
                Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"POST /v1/rollouts on replica 1: {(int)response.StatusCode} {body}");
                rolloutId = JsonDocument.Parse(body).RootElement.GetProperty("rollout_id").GetString();
            }

            var acknowledged = clock.Elapsed;
            await WaitAsync(() => seen.Count == 2, Bound, "replicas 2 and 3 to show the rollout");
            await polling.CancelAsync();
            await Task.WhenAll(pollers);
            var startLags = seen.Values.Select(t => t < acknowledged ? TimeSpan.Zero : t - acknowledged).ToArray();
            Assert.All(startLags, lag => Assert.True(lag <= Propagation, $"the rollout reached a follower {lag.TotalMilliseconds:0} ms after replica 1 acknowledged it; the bound is 2 s"));

            // Routing is one pure function everywhere: once the canary weight is applied, each device gets the same
            // version from every replica, and the devices split between champion and candidate.
            await WaitAsync(async () => (await Task.WhenAll(clients.Select(StatusAsync))).All(s => s is not null && s.RolloutId == rolloutId && s.CandidatePercent > 0), Bound, "the canary weight on every replica");

            // Paused (the weight stays, no analysis runs) while the devices are routed: 60 devices sending one window each
            // are not traffic an analysis should judge, and one that rolled the candidate back in the middle of the
            // check left no device on it.
            var paused = await CommandAsync(clients[0], "pause");
            await WaitAsync(async () => (await Task.WhenAll(clients.Select(StatusAsync))).All(s => s is not null && s.Revision >= paused.Revision), Bound, "every replica to show the pause");
            // The status shows the weight when the rollout state says so; each replica's pipeline gets the plan a moment
            // later, and until then every replica routes every device to the champion, which is "alike" too. So the wait
            // is for the split. With 60 devices, none on the candidate at 10 % by the rollout's salt had probability
            // 0.9^60 ≈ 0.2 %, a wait that could never end (a CI run timed out here, with nothing to tell which); with 200,
            // 0.9^200 ≈ 7e-10, and a timeout says what each replica routed.
            var devices = Enumerable.Range(0, 200).Select(i => $"fleet-device-{i:000}").ToArray();
            Dictionary<string, string>[] versions = [];
            try
            {
                await WaitAsync(async () =>
                {
                    versions = await Task.WhenAll(clients.Select(c => VersionsAsync(c, devices, window.Samples.AsMemory(0, card.WindowLength * 6), ct)));
                    return versions.Skip(1).All(v => v.Count == versions[0].Count && v.All(kv => versions[0][kv.Key] == kv.Value))
                        && versions[0].Values.Any(v => v == "1.1.0");
                }, Bound, "every replica to route every device alike, some of them to the candidate");
            }
            catch (TimeoutException ex)
            {
                var seenBy = string.Join("; ", versions.Select((v, r) => $"replica {r + 1}: " + string.Join(", ", v.GroupBy(kv => kv.Value).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} on {g.Key}"))));
                var statuses = await Task.WhenAll(clients.Select(StatusAsync));
                throw new TimeoutException($"{ex.Message} Last routing: {seenBy}. Statuses: {string.Join("; ", statuses.Select(s => s is null ? "none" : $"{s.RolloutId} {s.Phase} rev {s.Revision} candidate {s.CandidatePercent} %"))}.", ex);
            }
            var onCandidate = versions[0].Count(kv => kv.Value == "1.1.0");
            output.WriteLine($"{devices.Length} devices routed alike by 3 replicas: {onCandidate} on the candidate 1.1.0, {devices.Length - onCandidate} on the champion");
            Assert.InRange(onCandidate, 1, devices.Length - 1);

            // Every later change reaches every replica within the bound too: resume and pause, alternately on each replica.
            var lags = new List<double>(startLags.Select(l => l.TotalMilliseconds));
            for (var i = 0; i < 10; i++)
            {
                var origin = i % 3;
                var status = await CommandAsync(clients[origin], i % 2 == 0 ? "resume" : "pause");
                var changed = clock.Elapsed;
                foreach (var other in Enumerable.Range(0, 3).Where(r => r != origin))
                {
                    var at = await WaitForAsync(clients[other], s => s.Revision >= status.Revision, clock);
                    lags.Add(Math.Max(0, (at - changed).TotalMilliseconds));
                }
            }

            lags.Sort();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"state changes seen by the other replicas over HTTP: {lags.Count} samples, p50 {lags[lags.Count / 2]:0} ms, p99 {lags[(int)Math.Ceiling(lags.Count * 0.99) - 1]:0} ms, max {lags[^1]:0} ms"));
            Assert.All(lags, lag => Assert.True(lag <= Propagation.TotalMilliseconds, $"a change reached a replica after {lag:0} ms; the bound is 2 s"));

            // SIGKILL the leader mid-rollout (left paused by the loop): another replica leads within 15 s and carries on.
            var leader = await WaitForLeaderAsync(clients, exclude: null);
            var stepsBefore = await FleetHttp.StepsAsync(clients[0], rolloutId!, ct);
            await fleet.KillReplicaAsync(leader);
            killed = leader;
            var killedAt = Stopwatch.StartNew();
            var successor = await WaitForLeaderAsync(clients, exclude: leader);
            var failover = killedAt.Elapsed;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"leader replica {leader} SIGKILLed mid-rollout ({stepsBefore.Count} steps applied); replica {successor} leads after {failover.TotalSeconds:0.0} s"));
            Assert.True(failover <= Failover, $"replica {successor} took the lead {failover.TotalSeconds:0.0} s after the leader was killed; the bound is 15 s");
            var after = await StatusAsync(clients[successor - 1]);
            Assert.Equal(rolloutId, after!.RolloutId);
            Assert.DoesNotContain(after.Phase, FleetHttp.Terminal);

            // Each step applied once, whoever applied it: the audit log's step numbers are 0, 1, 2, … without repeat.
            await CommandAsync(clients[successor - 1], "abort");
            var steps = await FleetHttp.StepsAsync(clients[successor - 1], rolloutId!, ct);
            Assert.Equal(Enumerable.Range(0, steps.Count), steps);
            Assert.True(steps.Count >= stepsBefore.Count, "the audit log lost steps");
        }
        finally
        {
            var alive = clients.Where((_, i) => i + 1 != killed).First();
            if (rolloutId is not null && await StatusAsync(alive) is { } last && !FleetHttp.Terminal.Contains(last.Phase))
            {
                await CommandAsync(alive, "abort");
            }

            if (killed is { } k)
            {
                await fleet.RestartReplicaAsync(k, freshData: true);
            }

            foreach (var c in clients)
            {
                c.Dispose();
            }
        }
    }

    private sealed record Status(string RolloutId, string Phase, long Revision, string Candidate, double CandidatePercent, bool Leader);

    private static async Task<Status?> StatusAsync(HttpClient client)
    {
        try
        {
            using var response = await client.GetAsync(new Uri("/v1/rollouts/current", UriKind.Relative), CancellationToken.None);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return null;
            }

            return Parse(await response.Content.ReadAsStringAsync(CancellationToken.None));
        }
        catch (HttpRequestException)
        {
            return null; // a killed replica
        }
    }

    /// <summary>
    /// Sends a rollout command as a client should: a 409 "stale" answer (the leader changed the state between this
    /// replica's read and its compare-and-set) is re-sent, a bounded number of times.
    /// </summary>
    private static async Task<Status> CommandAsync(HttpClient client, string action)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var response = await client.PostAsync(new Uri($"/v1/rollouts/current/{action}", UriKind.Relative), null, CancellationToken.None);
            var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
            if (response.StatusCode == HttpStatusCode.Conflict && attempt < 10 && body.Contains("another replica changed it first", StringComparison.Ordinal))
            {
                continue;
            }

            Assert.True(response.StatusCode == HttpStatusCode.OK, $"POST /v1/rollouts/current/{action} on {client.BaseAddress} (attempt {attempt}): {(int)response.StatusCode} {body}");
            return Parse(body);
        }
    }

    private static Status Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        return new Status(
            r.GetProperty("rollout_id").GetString()!, r.GetProperty("phase").GetString()!, r.GetProperty("revision").GetInt64(),
            r.GetProperty("candidate").GetString()!, r.GetProperty("candidate_percent").GetDouble(), r.TryGetProperty("leader", out var l) && l.GetBoolean());
    }

    private static async Task<TimeSpan> WaitForAsync(HttpClient client, Func<Status, bool> condition, Stopwatch clock)
    {
        var start = clock.Elapsed;
        while (clock.Elapsed - start < Bound)
        {
            if (await StatusAsync(client) is { } s && condition(s))
            {
                return clock.Elapsed;
            }

            await Task.Delay(10, CancellationToken.None);
        }

        throw new TimeoutException($"{client.BaseAddress} did not show the change within {Bound.TotalSeconds} s");
    }

    /// <summary>The one replica (1-based) that says it leads, polled until exactly one does.</summary>
    private static async Task<int> WaitForLeaderAsync(HttpClient[] clients, int? exclude)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Bound)
        {
            var statuses = await Task.WhenAll(clients.Select((c, i) => i + 1 == exclude ? Task.FromResult<Status?>(null) : StatusAsync(c)));
            var leaders = statuses.Select((s, i) => (s, i)).Where(x => x.s?.Leader == true).Select(x => x.i + 1).ToArray();
            if (leaders.Length == 1)
            {
                return leaders[0];
            }

            await Task.Delay(50, CancellationToken.None);
        }

        throw new TimeoutException($"no single leader within {Bound.TotalSeconds} s");
    }

    /// <summary>Each device's version: one window to <c>/v1/predict</c> per device, named by <c>X-Stream-Id</c>.</summary>
    private static async Task<Dictionary<string, string>> VersionsAsync(HttpClient client, string[] devices, ReadOnlyMemory<float> window, CancellationToken ct)
    {
        var versions = new Dictionary<string, string>(StringComparer.Ordinal);
        var bytes = MemoryMarshal.AsBytes(window.Span).ToArray();
        foreach (var device in devices)
        {
            using var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/v1/predict", UriKind.Relative)) { Content = content };
            request.Headers.Add("X-Stream-Id", device);
            using var response = await client.SendAsync(request, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"/v1/predict on {client.BaseAddress}: {(int)response.StatusCode} {body}");
            versions[device] = JsonDocument.Parse(body).RootElement.GetProperty("predictions")[0].GetProperty("model_version").GetString()!;
        }

        return versions;
    }

    /// <summary>The step numbers of one rollout's <c>rollout.step</c> audit events, in log order.</summary>
    private static Task WaitAsync(Func<bool> condition, TimeSpan timeout, string what) => FleetAuditTests.WaitUntilAsync(condition, timeout, what);

    private static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Not reached within {timeout.TotalSeconds} s: {what}.");
            }

            await Task.Delay(100, CancellationToken.None);
        }
    }
}
