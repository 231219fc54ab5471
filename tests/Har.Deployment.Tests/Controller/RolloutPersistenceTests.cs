using System.Text;
using Har.Audit;
using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Controller;

public sealed class RolloutPersistenceTests
{
    [Fact]
    public async Task ChildKilledWithSigkillMidRollout_RestartResumes_NoStepOrAuditEventRepeated()
    {
        var dir = Directory.CreateTempSubdirectory("har-deploy-crash-").FullName;
        try
        {
            await using (var audit = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(dir, "audit"), EnableMetrics = false }))
            {
                var registry = new ModelRegistry(Path.Combine(dir, "registry"), audit);
                registry.Register(TestRegistry.ChampionFile);
                registry.Register(TestRegistry.CandidateFile);
            }

            var rng = new Random(20260115);
            var kills = 0;
            string? done = null;
            var log = new StringBuilder();
            for (var run = 0; run < 60 && done is null; run++)
            {
                using var child = ProcessHost.Start(["rollout", dir]);
                var killAfter = kills < 25 ? rng.Next(1, 4) : int.MaxValue;
                var lines = 0;
                var last = await ProcessHost.WaitForLineAsync(child, line => line.StartsWith("DONE", StringComparison.Ordinal) || (line.StartsWith("TICK", StringComparison.Ordinal) && ++lines >= killAfter), log, TestContext.Current.CancellationToken);
                if (last is not null && last.StartsWith("DONE", StringComparison.Ordinal))
                {
                    done = last;
                    await child.WaitForExitAsync(TestContext.Current.CancellationToken);
                    break;
                }

                child.Kill(entireProcessTree: true); // SIGKILL: no finally blocks, no flush
                await child.WaitForExitAsync(TestContext.Current.CancellationToken);
                kills++;
                if (last is null)
                {
                    Assert.Fail($"The child exited without finishing: {await child.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken)}\n{log}");
                }
            }

            Assert.True(kills >= 20, $"only {kills} kills happened before the rollout finished\n{log}");
            Assert.Equal("DONE Succeeded", done);

            var status = RolloutController.ReadStatus(Path.Combine(dir, "registry", ".rollout"))!;
            Assert.Equal(RolloutPhase.Succeeded, status.Phase);
            Assert.Equal("1.1.0", new ModelRegistry(Path.Combine(dir, "registry")).CurrentVersion);

            await using var reopened = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(dir, "audit"), EnableMetrics = false });
            Assert.True(reopened.Verify().IsValid, reopened.Verify().Message);
            var events = new List<AuditEvent>();
            string? token = null;
            do
            {
                var page = reopened.Query(new AuditQuery { EntityId = "rollout-crash", PageSize = 200, PageToken = token });
                events.AddRange(page.Entries.Select(e => e.Record).OfType<AuditEvent>());
                token = page.NextPageToken;
            }
            while (token is not null);

            var sequences = events.Select(e => e.ActionDetails.GetProperty("sequence").GetInt64()).ToList();
            Assert.Equal(Enumerable.Range(0, sequences.Count).Select(i => (long)i), sequences);
            var steps = events.Where(e => e.EventType == "rollout.step").Select(e => e.ActionDetails.GetProperty("step").GetInt32()).ToList();
            Assert.Equal(Enumerable.Range(0, status.Steps.Count), steps);
            Assert.Single(events, e => e.EventType == "rollout.transition" && e.ActionDetails.GetProperty("to").GetString() == "Succeeded");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
