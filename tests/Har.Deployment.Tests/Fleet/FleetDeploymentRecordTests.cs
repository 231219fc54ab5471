using System.Diagnostics;
using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Testing;

namespace Har.Deployment.Tests.Fleet;

/// <summary>
/// The deployment record completed at promotion on a real PostgreSQL fleet: its <c>replicas</c> is the number of replicas
/// whose heartbeat is live (three controllers, each with its own folder, audit-log connection and serving pipeline), not
/// the registration's value; a replica that leaves stops counting.
/// </summary>
public sealed class FleetDeploymentRecordTests(PostgresCluster cluster)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(120);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Promotion_OnAFleetOfThree_RecordsThreeLiveReplicas_AndALeftReplicaStopsCounting()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var root = Directory.CreateTempSubdirectory("har-fleet-replicas-").FullName;
        var replicas = new List<Replica>();
        try
        {
            foreach (var name in (string[])["a", "b", "c"])
            {
                var audit = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
                var registry = new ModelRegistry(Path.Combine(root, name), audit);
                registry.Seed([TestRegistry.ChampionFile]);
                var pipeline = ServingPipeline.Open(registry, TestRegistry.ServingOptions());
                var controller = await RolloutController.OpenAsync(registry, pipeline, TestRegistry.Options(o =>
                {
                    o.ConnectionString = connectionString;
                    o.LeaseDuration = TimeSpan.FromSeconds(30); // heartbeats outlive any pause of a loaded test machine
                    o.BuiltInStrategies.AnalysisInterval = TimeSpan.FromMinutes(10);
                }), cancellationToken: Ct);
                var stop = new CancellationTokenSource();
                replicas.Add(new Replica(audit, pipeline, controller, stop, controller.RunAsync(stop.Token)));
            }

            using var store = FleetStore.Open(connectionString);
            Assert.Equal(3, store.CountLiveReplicas());

            var first = replicas[0];
            first.Controller.Registry.Register(TestRegistry.CandidateFile, new ModelRegistrationOptions { Deployer = "tester" });
            await WaitUntilAsync(() => replicas.Any(r => r.Controller.IsLeader), "a replica to lead");
            var leader = replicas.First(r => r.Controller.IsLeader).Controller;
            await leader.ExecuteAsync(RolloutCommand.Start(TestRegistry.Candidate, "canary", "tester", "three replicas"), Ct);
            await WaitUntilAsync(() => leader.Status?.Phase is RolloutPhase.Progressing, "the canary to progress");
            await leader.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Promote, "tester", "ship"), Ct);
            await WaitUntilAsync(() => FindCompleted(first.Audit) is not null, "the deployment.completed record");

            var completed = FindCompleted(first.Audit)!;
            Assert.Equal(3, completed.ActionDetails.GetProperty("replicas").GetInt32());
            Assert.Equal(3, completed.ActionDetails.GetProperty("record").GetProperty("environment").GetProperty("replicas").GetInt32());

            // A replica that shuts down cleanly leaves at once; the others still count.
            var leaving = replicas.First(r => !ReferenceEquals(r.Controller, leader));
            replicas.Remove(leaving);
            await leaving.DisposeAsync();
            Assert.Equal(2, store.CountLiveReplicas());
        }
        finally
        {
            foreach (var replica in replicas)
            {
                await replica.DisposeAsync();
            }

            Directory.Delete(root, recursive: true);
        }
    }

    private static AuditEvent? FindCompleted(AuditLog audit) =>
        audit.Query(new AuditQuery { EventType = "deployment.completed", PageSize = 10 }).Entries.Select(e => (AuditEvent)e.Record).SingleOrDefault();

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < Generous, $"Not reached within {Generous.TotalSeconds:0} s: {what}.");
            await Task.Delay(50, Ct);
        }
    }

    private sealed record Replica(AuditLog Audit, ServingPipeline Pipeline, RolloutController Controller, CancellationTokenSource Stop, Task Loop)
    {
        /// <summary>A clean shutdown, as the host's: the loop stops, then the controller (which leaves the fleet), the pipeline and the log.</summary>
        public async Task DisposeAsync()
        {
            await Stop.CancelAsync();
            await Loop;
            await Controller.DisposeAsync();
            await Pipeline.DisposeAsync();
            await Audit.DisposeAsync();
            Stop.Dispose();
        }
    }
}
