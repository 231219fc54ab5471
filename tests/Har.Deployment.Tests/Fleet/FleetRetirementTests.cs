using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Testing;

namespace Har.Deployment.Tests.Fleet;

/// <summary>
/// A retirement in a fleet (real PostgreSQL, two replicas each with its own registry folder and audit-log connection): the
/// decision taken through replica A is an entry of the shared audit log, and replica B, which never registered the
/// version itself, refuses to roll it out until A reinstates it.
/// </summary>
public sealed class FleetRetirementTests(PostgresCluster cluster)
{
    [Fact]
    public async Task RetiredThroughReplicaA_RefusedOnReplicaB_UntilReinstated()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var root = Directory.CreateTempSubdirectory("har-fleet-retire-").FullName;
        try
        {
            await using var auditA = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
            await using var auditB = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
            var a = new ModelRegistry(Path.Combine(root, "a"), auditA);
            var b = new ModelRegistry(Path.Combine(root, "b"), auditB);
            a.Seed([TestRegistry.ChampionFile]);
            b.Seed([TestRegistry.ChampionFile]);
            await using var pipelineA = ServingPipeline.Open(a, TestRegistry.ServingOptions());
            await using var controllerA = await RolloutController.OpenAsync(a, pipelineA, TestRegistry.Options(o => o.ConnectionString = connectionString));
            await using var pipelineB = ServingPipeline.Open(b, TestRegistry.ServingOptions());
            await using var controllerB = await RolloutController.OpenAsync(b, pipelineB, TestRegistry.Options(o => o.ConnectionString = connectionString));
            a.Register(TestRegistry.CandidateFile, new ModelRegistrationOptions { Deployer = "tester" });
            Assert.Null(b.GetRetirement(TestRegistry.Candidate)); // B has read the log before the retirement

            var retirement = a.Retire(TestRegistry.Candidate, "wrong sensor axes in its training data", "carol");

            Assert.Equal(retirement.AuditIndex, b.GetRetirement(TestRegistry.Candidate)?.AuditIndex);
            var refused = await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => controllerB.ExecuteAsync(RolloutCommand.Start(TestRegistry.Candidate, "canary", "tester", "try"), TestContext.Current.CancellationToken));
            Assert.Contains("wrong sensor axes in its training data", refused.Message, StringComparison.Ordinal);
            Assert.Null(controllerB.Status);

            Assert.True(a.Reinstate(TestRegistry.Candidate, "axes checked", "carol"));
            var started = await controllerB.ExecuteAsync(RolloutCommand.Start(TestRegistry.Candidate, "canary", "tester", "again"), TestContext.Current.CancellationToken);
            Assert.Equal(TestRegistry.Candidate, started.Candidate);

            // Replica A follows the shared rollout (its loop runs, as every replica's does in the service): the running
            // rollout's candidate is not retired through A either.
            using var stop = new CancellationTokenSource();
            var loop = controllerA.RunAsync(stop.Token);
            try
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (controllerA.Status?.RolloutId != started.RolloutId)
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(120), "replica A did not follow the shared rollout within 120 s");
                    await Task.Delay(50, TestContext.Current.CancellationToken);
                }

                var inUse = Assert.Throws<ModelInUseException>(() => a.Retire(TestRegistry.Candidate, "again", "carol"));
                Assert.Contains($"rollout {started.RolloutId}", inUse.Message, StringComparison.Ordinal);
            }
            finally
            {
                await stop.CancelAsync();
                await loop;
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
