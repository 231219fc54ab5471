using System.Text.Json;
using Har.Audit;
using Npgsql;

namespace Har.Cli.Tests.Commands;

/// <summary><c>har audit verify</c> and <c>har audit export</c> against a log in a real (throwaway) PostgreSQL cluster.</summary>
[Collection(ConsoleTests.Name)]
public sealed class AuditDatabaseCommandsTests(PostgresCluster cluster)
{
    [Fact]
    public async Task VerifyAndExport_LogInPostgreSql_VerifyTheDatabaseTheEnvironmentDefaultAndTheExportAndReportTampering()
    {
        var cs = await cluster.CreateDatabaseAsync();
        using var key = AuditSigningKey.Generate("fleet.example/har");
        using (var log = AuditLog.Open(new AuditLogOptions { ConnectionString = cs, Origin = "fleet.example/har", EnableMetrics = false }))
        {
            for (var i = 0; i < 10; i++)
            {
                await log.AppendAsync(new AuditEvent
                {
                    EventType = "rollout.step",
                    EntityType = "model",
                    EntityId = "har",
                    Severity = AuditSeverity.Info,
                    ActionDetails = JsonSerializer.SerializeToElement(new { step = i }),
                    Actor = "controller",
                    Timestamp = new DateTimeOffset(2026, 1, 15, 10, 0, i, TimeSpan.Zero),
                });
            }

            log.CreateCheckpoint(key);
        }

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("audit", "verify", "--connection", cs, "--vkey", key.VerifierKey, "--json");
        Assert.True(code == 0, stdout + stderr);
        using (var doc = JsonDocument.Parse(stdout))
        {
            Assert.True(doc.RootElement.GetProperty("valid").GetBoolean());
            Assert.Equal(10, doc.RootElement.GetProperty("entries_verified").GetInt64());
            Assert.Equal(10, doc.RootElement.GetProperty("checkpoint_size").GetInt64());
            Assert.True(doc.RootElement.GetProperty("verifier_key_pinned").GetBoolean());
        }

        var export = Path.Combine(Path.GetTempPath(), "har-cli-export-" + Guid.NewGuid().ToString("N"));
        Environment.SetEnvironmentVariable("ConnectionStrings__Har", cs);
        try
        {
            (code, stdout, stderr) = await ConsoleCapture.RunAsync("audit", "verify", "--vkey", key.VerifierKey);
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("10 entries verified", stdout, StringComparison.Ordinal);
            Assert.Contains("the root at the checkpoint's size matches", stdout, StringComparison.Ordinal);

            // Without --vkey: the flag is what the output names, not the library's API (found from outside).
            (code, stdout, stderr) = await ConsoleCapture.RunAsync("audit", "verify");
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("pin the trusted one with --vkey", stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("verifierKey", stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("AuditLogOptions", stdout, StringComparison.Ordinal);

            (code, stdout, stderr) = await ConsoleCapture.RunAsync("audit", "export", "--out", export);
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("exported 10 entries of fleet.example/har", stdout, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable("ConnectionStrings__Har", null);
        }

        try
        {
            (code, stdout, stderr) = await ConsoleCapture.RunAsync("audit", "verify", "--log", export, "--vkey", key.VerifierKey);
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("10 entries verified", stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(export, recursive: true);
        }

        await using (var connection = new NpgsqlConnection(cs))
        {
            await connection.OpenAsync();
            await using var tamper = new NpgsqlCommand("UPDATE har_audit.entries SET payload = set_byte(payload, 20, get_byte(payload, 20) # 1) WHERE idx = 4", connection);
            Assert.Equal(1, await tamper.ExecuteNonQueryAsync());
        }

        (code, stdout, _) = await ConsoleCapture.RunAsync("audit", "verify", "--connection", cs, "--vkey", key.VerifierKey, "--json");
        Assert.Equal(1, code);
        using (var doc = JsonDocument.Parse(stdout))
        {
            Assert.False(doc.RootElement.GetProperty("valid").GetBoolean());
            Assert.Equal(4, doc.RootElement.GetProperty("first_bad_index").GetInt64());
        }
    }

    [Fact]
    public async Task Verify_NoLogNoConnection_SaysWhatToPass()
    {
        var (code, _, stderr) = await ConsoleCapture.RunAsync("audit", "verify");
        Assert.NotEqual(0, code);
        Assert.Contains("--connection", stderr, StringComparison.Ordinal);
    }
}
