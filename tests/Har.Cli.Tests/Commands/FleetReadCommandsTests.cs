using System.Text.Json;
using Har.Audit;
using Har.Deployment;
using Npgsql;

namespace Har.Cli.Tests.Commands;

/// <summary>
/// <c>har rollout status</c>, <c>har models list</c> and <c>har models verify</c> against a fleet's database (a real,
/// throwaway PostgreSQL), through <c>--connection</c> and through <c>ConnectionStrings__Har</c>: they show what the
/// replicas share (the rollout, the current pointer, the lease, the stored versions) and report a stored model altered
/// in the database.
/// </summary>
[Collection(ConsoleTests.Name)]
public sealed class FleetReadCommandsTests(PostgresCluster cluster)
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    [Fact]
    public async Task StatusListAndVerify_AgainstTheFleetDatabase_ShowTheSharedStateAndReportAnAlteredModel()
    {
        var cs = await cluster.CreateDatabaseAsync();
        var root = Directory.CreateTempSubdirectory("har-cli-fleet-").FullName;
        try
        {
            // Before any replica started, the database holds no fleet: said plainly, nothing created.
            var (code, stdout, stderr) = await ConsoleCapture.RunAsync("rollout", "status", "--connection", cs);
            Assert.NotEqual(0, code);
            Assert.Contains("holds no fleet state", stdout + stderr, StringComparison.Ordinal);

            // One replica: the two versions registered (stored in the database), a canary started.
            await using (var audit = AuditLog.Open(new AuditLogOptions { ConnectionString = cs, EnableMetrics = false }))
            {
                var registry = new ModelRegistry(Path.Combine(root, "registry"), audit);
                registry.Register(Fixture("tiny-probs-1.0.0.onnx"));
                var serving = new ServingOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
                serving.Model.EnableMetrics = false;
                await using var pipeline = ServingPipeline.Open(registry, serving);
                var options = new RolloutControllerOptions { ConnectionString = cs, MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
                await using var controller = await RolloutController.OpenAsync(registry, pipeline, options);
                registry.Register(Fixture("tiny-logits-1.1.0.onnx"));
                await controller.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "tester", "cli fleet test") with { RolloutId = "rollout-cli-fleet" });

                // A third version, retired: the fleet's listing reads the retirement from the shared audit log.
                var third = Path.Combine(root, "tiny-logits-1.2.0.onnx");
                File.WriteAllBytes(third, OnnxModelEditor.WithKey(File.ReadAllBytes(Fixture("tiny-logits-1.1.0.onnx")), "har.model_version", "1.2.0"));
                registry.Register(third);
                registry.Retire("1.2.0", "wrong export", "tester");
            }

            (code, stdout, stderr) = await ConsoleCapture.RunAsync("rollout", "status", "--connection", cs);
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("rollout rollout-cli-fleet (canary): 1.0.0 -> 1.1.0", stdout, StringComparison.Ordinal);
            Assert.Contains("current   1.0.0", stdout, StringComparison.Ordinal);
            Assert.Contains("leader    none yet", stdout, StringComparison.Ordinal);
            Assert.Contains("replicas  0 live", stdout, StringComparison.Ordinal); // the replica left when its controller was disposed

            Environment.SetEnvironmentVariable("ConnectionStrings__Har", cs);
            try
            {
                (code, stdout, stderr) = await ConsoleCapture.RunAsync("rollout", "status", "--json");
                Assert.True(code == 0, stdout + stderr);
                using (var doc = JsonDocument.Parse(stdout))
                {
                    Assert.Equal("rollout-cli-fleet", doc.RootElement.GetProperty("rollout").GetProperty("RolloutId").GetString());
                    Assert.Equal("1.0.0", doc.RootElement.GetProperty("current").GetString());
                    Assert.Equal(0, doc.RootElement.GetProperty("live_replicas").GetInt32());
                }

                (code, stdout, stderr) = await ConsoleCapture.RunAsync("models", "list", "--json");
                Assert.True(code == 0, stdout + stderr);
                using (var doc = JsonDocument.Parse(stdout))
                {
                    var versions = doc.RootElement.EnumerateArray().Select(e => (e.GetProperty("version").GetString(), e.GetProperty("current").GetBoolean(), e.GetProperty("retired").ValueKind == JsonValueKind.Object)).ToArray();
                    Assert.Equal([("1.0.0", true, false), ("1.1.0", false, false), ("1.2.0", false, true)], versions);
                }

                (code, stdout, stderr) = await ConsoleCapture.RunAsync("models", "verify");
                Assert.True(code == 0, stdout + stderr);
                Assert.Contains("ok    1.0.0", stdout, StringComparison.Ordinal);
                Assert.Contains("ok    1.1.0", stdout, StringComparison.Ordinal);
            }
            finally
            {
                Environment.SetEnvironmentVariable("ConnectionStrings__Har", null);
            }

            // One bit of the candidate's stored bytes flipped in the database: verify fails and says what.
            await using (var connection = new NpgsqlConnection(cs))
            {
                await connection.OpenAsync();
                await using var tamper = new NpgsqlCommand("UPDATE har_fleet.model_files SET bytes = set_byte(bytes, 500, get_byte(bytes, 500) # 1) WHERE sha256 = (SELECT model_sha256 FROM har_fleet.models WHERE version = '1.1.0')", connection);
                Assert.Equal(1, await tamper.ExecuteNonQueryAsync());
            }

            (code, stdout, stderr) = await ConsoleCapture.RunAsync("models", "verify", "--connection", cs);
            Assert.Equal(1, code);
            Assert.Contains("ok    1.0.0", stdout, StringComparison.Ordinal);
            Assert.Contains("FAIL  1.1.0", stdout, StringComparison.Ordinal);
            Assert.Contains("altered after registration", stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
