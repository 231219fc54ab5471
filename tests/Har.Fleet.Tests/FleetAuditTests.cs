using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace Har.Fleet.Tests;

/// <summary>
/// The fleet's one audit log in PostgreSQL: entries appended on any replica are read back, with the same index and
/// leaf hash, from every replica and through nginx; <c>har audit verify</c> on the database passes; SIGKILL of a replica
/// during concurrent appends from all three loses no acknowledged entry.
/// </summary>
[Collection(FleetDefinition.Name)]
public sealed class FleetAuditTests(LocalFleet fleet, ITestOutputHelper output)
{
    [Fact]
    public async Task AuditEvents_AppendedOnEveryReplica_ShownWholeByEveryReplicaAndVerified()
    {
        fleet.RequireTools();
        var ct = TestContext.Current.CancellationToken;
        var entityType = "fleet-e2e-trail-" + Guid.NewGuid().ToString("N")[..8];
        var acks = new List<AuditAck>();
        for (var r = 1; r <= LocalFleet.ReplicaCount; r++)
        {
            using var client = fleet.Client(fleet.Replicas[r - 1]);
            for (var k = 0; k < 5; k++)
            {
                var (status, ack, response) = await FleetHttp.AppendEventAsync(client, entityType, $"r{r}-{k}", r, ct);
                using (response)
                {
                    Assert.True(status == HttpStatusCode.Created, $"replica {r}: {(int)status} {await response.Content.ReadAsStringAsync(ct)}");
                }

                acks.Add(ack!);
            }
        }

        Assert.Equal(acks.Count, acks.Select(a => a.Index).Distinct().Count());
        foreach (var address in fleet.Replicas.Append(fleet.EntryPoint))
        {
            using var client = fleet.Client(address);
            var entries = await FleetHttp.QueryEntityTypeAsync(client, entityType, ct);
            Assert.Equal(acks.Count, entries.Count);
            foreach (var ack in acks)
            {
                Assert.True(entries.TryGetValue(ack.EntityId, out var e), $"{address} does not show {ack.EntityId}, appended on replica {ack.Replica}");
                Assert.Equal((ack.Index, ack.LeafHash), e);
            }
        }

        // One entry appended on replica 3, read by index on replica 1.
        using (var reader = fleet.Client(fleet.Replicas[0]))
        {
            var last = acks[^1];
            using var response = await reader.GetAsync(new Uri($"/v1/audit/events/{last.Index}", UriKind.Relative), ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains(last.EntityId, body, StringComparison.Ordinal);
        }

        var (exit, text) = await fleet.RunCliAsync("audit", "verify");
        Assert.True(exit == 0, $"har audit verify on the database failed ({exit}): {text}");
        Assert.StartsWith("OK", text.TrimStart(), StringComparison.Ordinal);
        output.WriteLine(text.Trim());
    }

    [Fact]
    public async Task AuditAppends_ReplicaKilledDuringConcurrentAppends_NoAcknowledgedEntryLostAndTheLogVerifies()
    {
        fleet.RequireTools();
        var ct = TestContext.Current.CancellationToken;
        var entityType = "fleet-e2e-kill-" + Guid.NewGuid().ToString("N")[..8];
        const int victim = 2;
        const int writersPerReplica = 8;
        var acks = new ConcurrentBag<AuditAck>();
        var refused = new ConcurrentDictionary<int, int>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var clients = fleet.Replicas.Select(r => fleet.Client(r)).ToArray();
        var sequence = 0;
        var writers = new List<Task>();
        for (var r = 1; r <= LocalFleet.ReplicaCount; r++)
        {
            for (var w = 0; w < writersPerReplica; w++)
            {
                var replica = r;
                writers.Add(Task.Run(async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        var id = $"r{replica}-{Interlocked.Increment(ref sequence)}";
                        try
                        {
                            var (status, ack, response) = await FleetHttp.AppendEventAsync(clients[replica - 1], entityType, id, replica, stop.Token);
                            response.Dispose();
                            if (ack is not null)
                            {
                                acks.Add(ack);
                            }
                            else
                            {
                                refused.AddOrUpdate((int)status, 1, (_, n) => n + 1);
                            }
                        }
                        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
                        {
                            // The killed replica's connections break (or the test stopped): nothing was acknowledged.
                            if (replica == victim && !stop.IsCancellationRequested)
                            {
                                await Task.Delay(50, CancellationToken.None);
                            }
                        }
                    }
                }, CancellationToken.None));
            }
        }

        try
        {
            var clock = Stopwatch.StartNew();
            await WaitUntilAsync(() => acks.Count >= 600, TimeSpan.FromMinutes(2), "600 acknowledged appends before the kill");
            var beforeKill = acks.Count;
            var rate = beforeKill / clock.Elapsed.TotalSeconds;
            await fleet.KillReplicaAsync(victim);
            var ackedByVictim = acks.Count(a => a.Replica == victim);
            await WaitUntilAsync(() => acks.Count >= beforeKill + 300, TimeSpan.FromMinutes(2), "300 more acknowledged appends on the survivors");
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"audit appends acknowledged over HTTP by 3 replicas on one PostgreSQL ({LocalFleet.ReplicaCount * writersPerReplica} concurrent clients): {rate:0} /s; replica {victim} acknowledged {ackedByVictim} before SIGKILL; {acks.Count} acknowledged in all; refusals by status: {string.Join(", ", refused.Select(kv => $"{kv.Key}×{kv.Value}"))}"));
            Assert.True(ackedByVictim > 0, $"replica {victim} acknowledged nothing before it was killed");

            // Every acknowledged entry is in the log with the index and leaf hash the replica reported, none twice.
            using var reader = fleet.Client(fleet.Replicas[0]);
            var entries = await FleetHttp.QueryEntityTypeAsync(reader, entityType, ct);
            var lost = acks.Where(a => !entries.TryGetValue(a.EntityId, out var e) || e != (a.Index, a.LeafHash)).ToArray();
            Assert.True(lost.Length == 0, $"{lost.Length} acknowledged entries are missing or different, e.g. {string.Join("; ", lost.Take(5))}");
            Assert.Equal(entries.Count, entries.Values.Select(e => e.Index).Distinct().Count());

            var (exit, text) = await fleet.RunCliAsync("audit", "verify");
            Assert.True(exit == 0, $"har audit verify after the kill failed ({exit}): {text}");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            foreach (var c in clients)
            {
                c.Dispose();
            }

            // Leave the fleet whole for the other tests: the killed replica restarted on its own data folder (a container
            // restart inside its pod: its registry folder, registered in the shared log, must verify against its own records).
            if (!IsAlive(fleet.ReplicaPid(victim)))
            {
                await fleet.RestartReplicaAsync(victim, freshData: false);
            }
        }

        // The restarted replica reads the same log.
        using var restarted = fleet.Client(fleet.Replicas[victim - 1]);
        var seen = await FleetHttp.QueryEntityTypeAsync(restarted, entityType, ct);
        Assert.All(acks, a => Assert.True(seen.ContainsKey(a.EntityId), $"the restarted replica {victim} does not show {a.EntityId}"));
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Not reached within {timeout.TotalSeconds} s: {what}.");
            }

            await Task.Delay(100, CancellationToken.None);
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
