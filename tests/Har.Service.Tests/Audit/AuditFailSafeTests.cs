using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Har.Audit;

namespace Har.Service.Tests.Audit;

/// <summary>
/// Issue 17 points 3 and 11 against the real service process: a damaged acknowledged entry is a clear error
/// (never a 400), is never dropped silently on restart, can be repaired only by an operator (recorded), and the
/// quarantine stays visible in /ready, /metrics and `har audit verify`; checkpoints are signed at shutdown and
/// `har audit verify` on the live log reports no tampering.
/// </summary>
public sealed class AuditFailSafeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task KilledBeforeItsFirstCheckpoint_RestartSignsEveryEntryItAcknowledged()
    {
        // Checkpoints are signed every minute and at shutdown. A service killed sooner than a minute after its start (a
        // crash loop, frequent kills) never signed, and the entries it acknowledged stayed beyond every checkpoint.
        var audit = Directory.CreateTempSubdirectory("har-audit-e2e-").FullName;
        try
        {
            // A restart is the same service: the same data folder (its signing key) beside the same log.
            var settings = new Dictionary<string, string> { ["Har:Service:AuditDirectory"] = audit, ["Har:Service:DataDirectory"] = audit + "-data" };
            long acknowledged = 0;
            await using (var service = await ServiceProcess.StartAsync(settings, cancellationToken: Ct))
            {
                using var op = service.CreateClient(service.OperatorKey);
                for (var i = 0; i < 3; i++)
                {
                    using var response = await op.PostAsJsonAsync("/v1/audit/events", new { event_type = "e2e.note", entity_type = "test", entity_id = $"n{i}", severity = "info", action_details = new { i } }, Ct);
                    Assert.Equal(HttpStatusCode.Created, response.StatusCode);
                    acknowledged = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("index").GetInt64() + 1;
                }
            } // SIGKILL: no shutdown signing

            await using var restarted = await ServiceProcess.StartAsync(settings, cancellationToken: Ct);
            using var anonymous = restarted.CreateClient();
            var operations = JsonDocument.Parse(await anonymous.GetStringAsync("/ready", Ct)).RootElement.GetProperty("checks").GetProperty("operations");
            Assert.True(operations.GetProperty("data").GetProperty("checkpoint_size").GetInt64() >= acknowledged, operations.GetRawText());
            var (exit, output) = await Cli("audit", "verify", "--log", audit);
            Assert.True(exit == 0, output);
        }
        finally
        {
            Directory.Delete(audit, recursive: true);
            if (Directory.Exists(audit + "-data"))
            {
                Directory.Delete(audit + "-data", recursive: true);
            }
        }
    }

    [Fact]
    public async Task DamagedEntry_IsAClearError_StopsTheNextOpen_RepairIsRecordedAndTheQuarantineStaysVisible()
    {
        var audit = Directory.CreateTempSubdirectory("har-audit-e2e-").FullName;
        try
        {
            // A restart is the same service: the same data folder (its signing key) beside the same log.
            var settings = new Dictionary<string, string> { ["Har:Service:AuditDirectory"] = audit, ["Har:Service:DataDirectory"] = audit + "-data" };
            long damaged;
            await using (var service = await ServiceProcess.StartAsync(settings, cancellationToken: Ct))
            {
                using var op = service.CreateClient(service.OperatorKey);
                using var auditor = service.CreateClient(service.AuditorKey);
                var indexes = new List<long>();
                for (var i = 0; i < 5; i++)
                {
                    using var response = await op.PostAsJsonAsync("/v1/audit/events", new { event_type = "e2e.note", entity_type = "test", entity_id = $"n{i}", severity = "info", action_details = new { i } }, Ct);
                    Assert.Equal(HttpStatusCode.Created, response.StatusCode);
                    indexes.Add((await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("index").GetInt64());
                }

                damaged = indexes[2];
                await FlipByteInEntry(audit, damaged);
                using var get = await auditor.GetAsync($"/v1/audit/events/{damaged}", Ct);
                var problem = await get.Content.ReadFromJsonAsync<JsonElement>(Ct);
                Assert.Equal(HttpStatusCode.InternalServerError, get.StatusCode);
                Assert.Equal("Audit log damaged", problem.GetProperty("title").GetString());
                Assert.Contains($"Entry {damaged} is damaged", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
                Assert.DoesNotContain(audit, problem.GetRawText(), StringComparison.Ordinal);
                using var other = await auditor.GetAsync($"/v1/audit/events/{indexes[1]}", Ct);
                Assert.Equal(HttpStatusCode.OK, other.StatusCode); // the rest of the log is still served
            } // SIGKILL: the damaged entry is acknowledged, in the region re-scanned on the next open

            var (exit, output) = await Cli("audit", "verify", "--log", audit);
            Assert.Equal(1, exit);
            Assert.Contains($"FAILED (Checksum, first bad index {damaged})", output, StringComparison.Ordinal);
            Assert.Throws<AuditLogCorruptedException>(() => AuditLog.Open(new AuditLogOptions { Directory = audit, EnableMetrics = false }));

            (exit, output) = await Cli("audit", "repair", "--log", audit, "--actor", "ops-oncall", "--reason", "e2e: flipped byte");
            Assert.True(exit == 0, output);
            Assert.Contains($"REPAIRED: {damaged} entries", output, StringComparison.Ordinal);

            (exit, output) = await Cli("audit", "verify", "--log", audit);
            Assert.Equal(1, exit);
            Assert.Contains("FAILED (Quarantined)", output, StringComparison.Ordinal);

            await using (var restarted = await ServiceProcess.StartAsync(settings, cancellationToken: Ct))
            {
                using var anonymous = restarted.CreateClient();
                using var ready = await anonymous.GetAsync("/ready", Ct);
                Assert.Equal(HttpStatusCode.OK, ready.StatusCode); // still serving
                var readiness = JsonDocument.Parse(await ready.Content.ReadAsStringAsync(Ct)).RootElement;
                Assert.Equal("Degraded", readiness.GetProperty("status").GetString());
                // One check reports the audit log (AuditLogHealthCheck, named 'operations'): writable, but a repair removed entries.
                var operations = readiness.GetProperty("checks").GetProperty("operations");
                Assert.Equal("Degraded", operations.GetProperty("status").GetString());
                Assert.Contains("audit log repaired", operations.GetProperty("description").GetString(), StringComparison.Ordinal);
                Assert.True(operations.GetProperty("data").GetProperty("quarantined_entries").GetInt64() >= 1);
                var metrics = await anonymous.GetStringAsync("/metrics", Ct);
                var line = metrics.Split('\n').Single(l => l.StartsWith("har_audit_quarantined_entries ", StringComparison.Ordinal));
                Assert.True(double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) >= 1, line);

                using var auditor = restarted.CreateClient(restarted.AuditorKey);
                var repaired = await auditor.GetFromJsonAsync<JsonElement>($"/v1/audit/events/{damaged}", Ct);
                Assert.Equal("audit.log.repaired", repaired.GetProperty("event_type").GetString());
                Assert.Equal("ops-oncall", repaired.GetProperty("actor").GetString());
            }
        }
        finally
        {
            Directory.Delete(audit, recursive: true);
            if (Directory.Exists(audit + "-data"))
            {
                Directory.Delete(audit + "-data", recursive: true);
            }
        }
    }

    [Fact]
    public async Task LiveLog_VerifiesWithoutTampering_AndAGracefulStopSignsACheckpointOverEveryEntry()
    {
        var audit = Directory.CreateTempSubdirectory("har-audit-e2e-").FullName;
        try
        {
            await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { ["Har:Service:AuditDirectory"] = audit }, cancellationToken: Ct);
            using var op = service.CreateClient(service.OperatorKey);
            var writer = Task.Run(async () =>
            {
                for (var i = 0; i < 200; i++)
                {
                    using var r = await op.PostAsJsonAsync("/v1/audit/events", new { event_type = "e2e.live", entity_type = "test", entity_id = $"l{i}", severity = "info", action_details = new { i } }, Ct);
                    Assert.Equal(HttpStatusCode.Created, r.StatusCode);
                }
            }, Ct);
            for (var i = 0; i < 3; i++)
            {
                var (exit, output) = await Cli("audit", "verify", "--log", audit);
                Assert.True(exit == 0, $"verify of the live log failed:\n{output}");
                Assert.Contains("live", output, StringComparison.Ordinal);
            }

            await writer;

            // SIGTERM: the host stops its services; the checkpoint signer signs once more on the way out.
            using (var kill = Process.Start("kill", ["-TERM", service.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(Ct);
            }

            var clock = Stopwatch.StartNew();
            while (!service.HasExited)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the service did not stop within 60 s of SIGTERM");
                await Task.Delay(100, Ct);
            }

            var result = AuditLog.Verify(audit, null);
            Assert.True(result.IsValid, result.ToString());
            Assert.NotNull(result.Checkpoint);
            Assert.Equal(result.EntriesVerified, result.Checkpoint!.TreeSize); // every acknowledged entry anchored
            Assert.True(result.EntriesVerified >= 200);
        }
        finally
        {
            Directory.Delete(audit, recursive: true);
        }
    }

    private static async Task FlipByteInEntry(string audit, long index)
    {
        long offset;
        await using (var idx = new FileStream(Path.Combine(audit, "entries.idx"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            var row = new byte[8];
            idx.Position = index * 40;
            await idx.ReadExactlyAsync(row, Ct);
            offset = BitConverter.ToInt64(row);
        }

        await using var f = new FileStream(Path.Combine(audit, "entries.log"), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        f.Position = offset + 30;
        var b = new byte[1];
        await f.ReadExactlyAsync(b, Ct);
        b[0] ^= 0x01;
        f.Position = offset + 30;
        await f.WriteAsync(b, Ct);
    }

    private static async Task<(int ExitCode, string Output)> Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(ServiceProcess.CliDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the har CLI");
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        return (process.ExitCode, await stdout + await stderr);
    }
}
