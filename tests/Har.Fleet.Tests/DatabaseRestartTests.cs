using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Har.Testing;

namespace Har.Fleet.Tests;

/// <summary>
/// PostgreSQL restarted under traffic: predictions (which never need the database) keep flowing through nginx on every
/// replica while it is down; audit-writing operations (audit appends, rollout commands) answer 503 with Retry-After,
/// <c>/ready</c> stays 200 and says operations are degraded; once the database is back every replica accepts operations
/// again and the log verifies.
/// </summary>
[Collection(FleetDefinition.Name)]
public sealed class DatabaseRestartTests(LocalFleet fleet, ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Predictions_PostgresRestartedDuringTraffic_KeepFlowingWhileOperationsAnswer503AndRecover()
    {
        fleet.RequireTools();
        var streams = HaptStreams.Load(TestPaths.RequireSharedData(), 6, 6000);
        var ct = TestContext.Current.CancellationToken;
        using var proxy = fleet.Client(fleet.EntryPoint, withKey: false);
        var results = new ConcurrentQueue<(TimeSpan At, HttpStatusCode Status, int Windows, string Body)>();
        var clock = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var traffic = streams.Select((stream, i) => Task.Run(async () =>
        {
            var start = 0;
            while (!stop.IsCancellationRequested)
            {
                const int frames = 200;
                if (start + frames > stream.Frames)
                {
                    start = 0;
                }

                try
                {
                    var answer = await FleetHttp.AppendAsync(proxy, stream.StreamId + "-pg", stream.Samples.AsMemory(start * 6, frames * 6), stop.Token);
                    results.Enqueue((clock.Elapsed, answer.Status, answer.Windows.Count, answer.Status == HttpStatusCode.OK ? "" : answer.Body));
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    break;
                }
                catch (HttpRequestException ex)
                {
                    results.Enqueue((clock.Elapsed, 0, 0, ex.Message));
                }

                start += frames;
                await Task.Delay(20, CancellationToken.None);
            }
        }, CancellationToken.None)).ToArray();

        var stopped = false;
        TimeSpan downAt, upAt;
        try
        {
            await FleetAuditTests.WaitUntilAsync(() => results.Count(r => r.Windows > 0) >= 20, Bound, "20 appends with predictions before the restart");
            await fleet.StopPostgresAsync();
            stopped = true;
            downAt = clock.Elapsed;

            // Operations: every replica refuses audit-writing calls with 503 + Retry-After (its log cannot commit).
            for (var r = 1; r <= LocalFleet.ReplicaCount; r++)
            {
                using var client = fleet.Client(fleet.Replicas[r - 1]);
                var refusal = await PollAsync(client, r, "refused", s => s == HttpStatusCode.ServiceUnavailable);
                Assert.True(refusal.Headers.RetryAfter is not null, $"replica {r}'s 503 has no Retry-After");
                refusal.Dispose();

                // A rollout start (control plane in the database) is refused the same way, and starts nothing.
                using (var start = new StringContent("""{"candidate": "1.1.0", "strategy": "canary", "reason": "during the outage"}""", System.Text.Encoding.UTF8, "application/json"))
                using (var rollout = await client.PostAsync(new Uri("/v1/rollouts", UriKind.Relative), start, ct))
                {
                    Assert.True(rollout.StatusCode == HttpStatusCode.ServiceUnavailable, $"replica {r}: POST /v1/rollouts with the database down answered {(int)rollout.StatusCode}: {await rollout.Content.ReadAsStringAsync(ct)}");
                }

                // Readiness stays 200 (predictions are served) and says operations are not available.
                using var ready = await client.GetAsync(new Uri("/ready", UriKind.Relative), ct);
                var body = await ready.Content.ReadAsStringAsync(ct);
                Assert.True(ready.StatusCode == HttpStatusCode.OK, $"replica {r} /ready with the database down: {(int)ready.StatusCode} {body}");
                using var doc = JsonDocument.Parse(body);
                Assert.NotEqual("Healthy", doc.RootElement.GetProperty("checks").GetProperty("operations").GetProperty("status").GetString());
            }

            // Predictions while the database is down: at least 30 more answered appends with windows, on every replica.
            var servedBefore = results.Count(r => r.Windows > 0);
            await FleetAuditTests.WaitUntilAsync(() => results.Count(r => r.Windows > 0) >= servedBefore + 30, Bound, "30 appends with predictions while PostgreSQL is down");
            upAt = clock.Elapsed;
            await fleet.StartPostgresAsync();
            stopped = false;

            // Every replica accepts operations again once the database answers.
            for (var r = 1; r <= LocalFleet.ReplicaCount; r++)
            {
                using var client = fleet.Client(fleet.Replicas[r - 1]);
                (await PollAsync(client, r, "recovered", s => s == HttpStatusCode.Created)).Dispose();
            }

            var recoveredAt = clock.Elapsed;
            var servedAfter = results.Count;
            await FleetAuditTests.WaitUntilAsync(() => results.Count >= servedAfter + 10, Bound, "10 appends after the recovery");
            await stop.CancelAsync();
            await Task.WhenAll(traffic);

            var all = results.ToArray();
            var failed = all.Where(r => r.Status != HttpStatusCode.OK).ToArray();
            Assert.True(failed.Length == 0, $"{failed.Length} of {all.Length} prediction requests failed around the database restart, e.g. {string.Join("; ", failed.Take(3).Select(f => $"{(int)f.Status} {f.Body}"))}");
            var duringOutage = all.Count(r => r.At > downAt && r.At < upAt && r.Windows > 0);
            Assert.True(duringOutage >= 30, $"only {duringOutage} appends completed windows while PostgreSQL was down");
            output.WriteLine($"{all.Length} stream appends through nginx, none failed; {duringOutage} appends answered with predictions while PostgreSQL was down ({(upAt - downAt).TotalSeconds:0.0} s); operations 503 on every replica, all accepted again {(recoveredAt - upAt).TotalSeconds:0.0} s after the restart");

            var (exit, text) = await fleet.RunCliAsync("audit", "verify");
            Assert.True(exit == 0, $"har audit verify after the database restart failed ({exit}): {text}");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(traffic);
            if (stopped)
            {
                await fleet.StartPostgresAsync();
            }
        }
    }

    /// <summary>POSTs audit events to one replica until the status matches (bounded); returns the matching response.</summary>
    private static async Task<HttpResponseMessage> PollAsync(HttpClient client, int replica, string what, Func<HttpStatusCode, bool> match)
    {
        var clock = Stopwatch.StartNew();
        var seen = new List<string>();
        while (clock.Elapsed < Bound)
        {
            var (status, _, response) = await FleetHttp.AppendEventAsync(client, "fleet-e2e-pg", $"r{replica}-{what}-{seen.Count}", replica, CancellationToken.None);
            if (match(status))
            {
                return response;
            }

            seen.Add(((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture));
            response.Dispose();
            await Task.Delay(250, CancellationToken.None);
        }

        throw new TimeoutException($"replica {replica} was not {what} within {Bound.TotalSeconds} s; statuses: {string.Join(", ", seen.TakeLast(20))}");
    }
}
