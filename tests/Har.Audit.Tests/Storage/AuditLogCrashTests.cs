using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Prometheus;

namespace Har.Audit.Tests.Storage;

/// <summary>
/// A child process appends from several threads and prints each index only after its append returned;
/// it is killed with SIGKILL at random moments, 24 times. After each kill every printed entry must be
/// in the log, the log must verify, and torn tails (natural or injected) must be truncated and reported.
/// </summary>
public sealed class AuditLogCrashTests
{
    private const int Kills = 24;

    [Fact]
    public async Task SigkillAtRandomMoments_AcknowledgedEntriesSurviveAndTornTailsAreTruncated()
    {
        var host = CrashHostPath();
        using var dir = new TempDir();
        var rng = new Random(5150);
        var acked = new Dictionary<long, string>();
        var injected = 0;
        var truncatedReports = 0;
        var ct = TestContext.Current.CancellationToken;
        var summary = new System.Text.StringBuilder();

        for (var run = 0; run < Kills; run++)
        {
            var target = rng.Next(4) == 0 ? 0 : rng.Next(1, 600); // some kills right after start-up
            var lines = new BlockingCollection<string>();
            using var process = Start(host, dir.Path, run);
            var reader = Task.Run(
                async () =>
                {
                    while (await process.StandardOutput.ReadLineAsync(ct) is { } line)
                    {
                        lines.Add(line, ct);
                    }

                    lines.CompleteAdding();
                },
                ct);

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            var seen = 0;
            var readyLine = string.Empty;
            void Record(string line)
            {
                if (line.StartsWith("ready", StringComparison.Ordinal))
                {
                    readyLine = line;
                }
                else if (line.StartsWith("ack ", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ');
                    var index = long.Parse(parts[1], CultureInfo.InvariantCulture);
                    Assert.False(acked.TryGetValue(index, out var earlier), $"run {run}: index {index} acknowledged again for {parts[2]}; it was acknowledged for {earlier} before. Host said: {readyLine}");
                    acked[index] = parts[2];
                    seen++;
                }
            }

            foreach (var line in lines.GetConsumingEnumerable(timeout.Token))
            {
                Record(line);
                if ((target == 0 && readyLine.Length > 0) || (target > 0 && seen >= target))
                {
                    break;
                }
            }

            Assert.False(process.HasExited, $"run {run}: the crash host exited on its own (code {(process.HasExited ? process.ExitCode : 0)}) after {seen} acknowledgements: {Errors(process)}");
            process.Kill(); // SIGKILL on Unix
            await process.WaitForExitAsync(ct);
            await reader;
            foreach (var line in lines)
            {
                Record(line); // acknowledgements printed after the target, before the kill landed
            }

            summary.Append(CultureInfo.InvariantCulture, $"[run {run}: target {target}, seen {seen}, acked {acked.Count}, {readyLine}] ");

            // Half of the kills also get a torn frame appended: what a power cut mid-write leaves.
            long injectedBytes = 0;
            if (rng.Next(2) == 0)
            {
                var torn = new byte[rng.Next(1, 200)];
                rng.NextBytes(torn);
                if (torn.Length >= 4)
                {
                    BitConverter.TryWriteBytes(torn.AsSpan(0, 4), 300 + torn.Length); // claims more bytes than follow
                }

                await using var f = new FileStream(Path.Combine(dir.Path, "entries.log"), FileMode.Append);
                await f.WriteAsync(torn, ct);
                injectedBytes = torn.Length;
                injected++;
            }

            // Verified as the crash left it, before any open rebuilt its derived files or cut its torn tail (an auditor's
            // check of a crashed service): it verifies, and says what the next open will do.
            var asLeft = AuditLog.Verify(dir.Path, null);
            Assert.True(asLeft.IsValid, $"run {run}, before reopening: {asLeft}");

            using var log = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, MetricsRegistry = new CollectorRegistry() });
            if (injectedBytes > 0)
            {
                Assert.True(log.Recovery.TailTruncated, $"run {run}: injected torn tail not reported");
                Assert.True(log.Recovery.TruncatedBytes >= injectedBytes);
                Assert.True(File.Exists(log.Recovery.QuarantinePath));
            }

            if (log.Recovery.TailTruncated)
            {
                truncatedReports++;
                Assert.False(string.IsNullOrEmpty(log.Recovery.Reason));
            }

            Assert.True(log.Count >= acked.Count, $"run {run}: {log.Count} entries but {acked.Count} acknowledged");
            foreach (var (index, id) in acked)
            {
                Assert.True(index < log.Count, $"run {run}: acknowledged entry {index} is missing (log has {log.Count})");
                Assert.Equal(id, log.Get(index).EntityId);
            }

            var verification = log.Verify();
            Assert.True(verification.IsValid, $"run {run}: {verification.Message}");
        }

        Assert.True(injected > 0 && truncatedReports >= injected, $"{injected} torn tails injected, {truncatedReports} truncations reported");
        Assert.True(acked.Count > Kills, $"only {acked.Count} acknowledged appends over {Kills} kills: {summary}");
    }

    [Fact]
    public async Task SigkillThenFlippedByteInAnAcknowledgedEntry_OpenRefusesNamingIt_RepairRecordsTheRemoval()
    {
        var host = CrashHostPath();
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        var acked = await RunUntilAcknowledged(host, dir.Path, 0, 150, ct);
        var segment = Path.Combine(dir.Path, "entries.log");
        var length = new FileInfo(segment).Length;

        // Entry 60 is acknowledged and in the unsealed region (the host seals every 300 entries).
        var offset = IndexRowOffset(dir.Path, 60);
        await FlipByte(segment, offset + 40, ct);

        var ex = Assert.Throws<AuditLogCorruptedException>(() => AuditLog.Open(new AuditLogOptions { Directory = dir.Path, EnableMetrics = false }));
        Assert.Equal(60, ex.EntryIndex);
        Assert.Equal(offset, ex.Offset);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"entry 60 (segment offset {offset})"), ex.Message, StringComparison.Ordinal);
        Assert.Contains("har audit repair", ex.Message, StringComparison.Ordinal);
        Assert.Equal(length, new FileInfo(segment).Length); // nothing was dropped
        Assert.False(AuditLog.Verify(dir.Path, null).IsValid);

        var report = AuditLog.Repair(new AuditLogOptions { Directory = dir.Path, EnableMetrics = false }, "alice", "INC-7: disk error");
        Assert.Equal(60, report.Entries);
        Assert.Equal(60, report.RepairEventIndex);
        Assert.True(File.Exists(report.QuarantinePath));
        Assert.Equal(length - offset, new FileInfo(report.QuarantinePath!).Length);
        Assert.Contains("repair recorded as entry 60", report.ToString(), StringComparison.Ordinal);

        using (var log = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, EnableMetrics = false }))
        {
            var evt = Assert.IsType<AuditEvent>(log.Get(60).Record);
            Assert.Equal("audit.log.repaired", evt.EventType);
            Assert.Equal("alice", evt.Actor);
            Assert.Equal(AuditSeverity.Critical, evt.Severity);
            Assert.Equal(60, evt.ActionDetails.GetProperty("removed_from_index").GetInt64());
            Assert.True(evt.ActionDetails.GetProperty("entries_removed_at_least").GetInt64() >= acked.Count - 60);
            Assert.Equal("INC-7: disk error", evt.ActionDetails.GetProperty("reason").GetString());
            for (var i = 0; i < 60; i++)
            {
                Assert.Equal(acked[i], log.Get(i).EntityId);
            }
        }

        // The quarantine stays visible: verify fails with its own problem.
        var verification = AuditLog.Verify(dir.Path, null);
        Assert.Equal(AuditVerificationProblem.Quarantined, verification.Problem);
        Assert.False(verification.IsValid);
        Assert.Contains("removed at least", verification.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VerifyWhileAnotherProcessAppends_NeverReportsTamperingAndSaysTheLogIsLive()
    {
        var host = CrashHostPath();
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        using var process = Start(host, dir.Path, 0);
        try
        {
            var first = await process.StandardOutput.ReadLineAsync(ct);
            Assert.StartsWith("ready", first, StringComparison.Ordinal);
            var drain = Task.Run(async () => { while (await process.StandardOutput.ReadLineAsync(ct) is not null) { } }, ct);
            var ioex = Assert.Throws<IOException>(() => AuditLog.Open(new AuditLogOptions { Directory = dir.Path, EnableMetrics = false }));
            Assert.Contains("open in another process", ioex.Message, StringComparison.Ordinal);

            long previous = -1;
            var grew = 0;
            var clock = Stopwatch.StartNew();
            for (var i = 0; grew < 10 && clock.Elapsed < TimeSpan.FromSeconds(90); i++)
            {
                var result = AuditLog.Verify(dir.Path, null);
                Assert.True(result.IsValid, $"verification {i} of a live log failed: {result}");
                Assert.Contains("live", result.Message, StringComparison.Ordinal);
                grew += result.EntriesVerified > previous ? 1 : 0;
                previous = result.EntriesVerified;
            }

            Assert.True(grew >= 10, $"the writer appended during only {grew} verifications");
            Assert.False(process.HasExited, Errors(process));
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync(ct);
        }
    }

    [Fact]
    public async Task DiskFullThenReadOnly_AppendsFailTyped_StateSaysUnavailable_RecoversWithoutRestart()
    {
        var host = CrashHostPath();
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        var mount = dir.Combine("fs");
        Directory.CreateDirectory(mount);
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p && File.Exists(p) ? p : "dotnet";

        // A private mount namespace with a 1 MiB tmpfs: a real ENOSPC and a real read-only remount, no root on the host needed.
        var info = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["-Urm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs \"$1\" && exec \"$2\" \"$3\" disk \"$1\"", "sh", mount, dotnet, host])
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync(ct);
        var errors = await process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        if (process.ExitCode != 0 && errors.Contains("unshare", StringComparison.Ordinal) && !output.Contains("step", StringComparison.Ordinal))
        {
            Assert.Skip($"this machine does not allow a private mount namespace (unshare -Urm): {errors}");
        }

        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{output}\n{errors}");
        var steps = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 3)).Where(s => s[0] == "step").ToDictionary(s => s[1], s => s.Length > 2 ? s[2] : string.Empty);
        Assert.Contains("No space left on device", steps["full"], StringComparison.Ordinal);
        Assert.StartsWith("AuditLogUnavailableException", steps["append-failed"], StringComparison.Ordinal);
        Assert.Equal("Unavailable", steps["state"]);
        Assert.Equal("synchronously", steps["refused"]);
        Assert.Equal("0", steps["readable"]);
        Assert.Equal("Writable", steps["recovered"]);
        Assert.Equal("5", steps["appended-after-recovery"]); // the failed appends left nothing behind
        Assert.Equal("True", steps["verify"]);
        Assert.Equal("6 5 True", steps["reopened"]);
        Assert.StartsWith("AuditLogUnavailableException", steps["readonly-open"], StringComparison.Ordinal);
        Assert.Contains("Read-only file system", steps["readonly-open"], StringComparison.Ordinal);
        Assert.Equal("6", steps["writable-open"]);
    }

    private static async Task<Dictionary<long, string>> RunUntilAcknowledged(string host, string dir, int run, int count, CancellationToken ct)
    {
        var acked = new Dictionary<long, string>();
        using var process = Start(host, dir, run);
        while (acked.Count < count && await process.StandardOutput.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("ack ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                acked[long.Parse(parts[1], CultureInfo.InvariantCulture)] = parts[2];
            }
        }

        Assert.True(acked.Count >= count, $"the crash host stopped after {acked.Count} acknowledgements: {Errors(process)}");
        process.Kill();
        await process.WaitForExitAsync(ct);
        while (await process.StandardOutput.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("ack ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                acked[long.Parse(parts[1], CultureInfo.InvariantCulture)] = parts[2];
            }
        }

        return acked;
    }

    internal static long IndexRowOffset(string dir, long index)
    {
        using var f = new FileStream(Path.Combine(dir, "entries.idx"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var row = new byte[8];
        f.Position = index * 40;
        f.ReadExactly(row);
        return BitConverter.ToInt64(row);
    }

    internal static async Task FlipByte(string file, long position, CancellationToken ct)
    {
        await using var f = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        f.Position = position;
        var b = new byte[1];
        await f.ReadExactlyAsync(b, ct);
        b[0] ^= 0x20;
        f.Position = position;
        await f.WriteAsync(b, ct);
    }

    internal static Process Start(string host, string dir, int run)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p && File.Exists(p) ? p : "dotnet";
        var info = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(host);
        info.ArgumentList.Add(dir);
        info.ArgumentList.Add("4");
        info.ArgumentList.Add(string.Create(CultureInfo.InvariantCulture, $"r{run}"));
        var process = Process.Start(info) ?? throw new InvalidOperationException("Could not start the crash host.");
        var errors = new System.Text.StringBuilder();
        StandardErrors[process.Id] = errors;
        process.ErrorDataReceived += (_, e) =>
        {
            lock (errors)
            {
                errors.AppendLine(e.Data);
            }
        };
        process.BeginErrorReadLine();
        return process;
    }

    private static readonly ConcurrentDictionary<int, System.Text.StringBuilder> StandardErrors = new();

    internal static string Errors(Process process)
    {
        var errors = StandardErrors.GetValueOrDefault(process.Id);
        if (errors is null)
        {
            return "(no standard error)";
        }

        lock (errors)
        {
            return errors.ToString();
        }
    }

    internal static string CrashHostPath()
    {
        // tests/Har.Audit.Tests/bin/<Configuration>/net10.0/ → tests/Har.Audit.CrashHost/bin/<Configuration>/net10.0/
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = baseDir.Name;
        var configuration = baseDir.Parent!.Name;
        var path = Path.Combine(Har.Testing.TestPaths.RepoRoot, "tests", "Har.Audit.CrashHost", "bin", configuration, tfm, "Har.Audit.CrashHost.dll");
        Assert.True(File.Exists(path), $"The crash host was not built at {path}; build tests/Har.Audit.Tests (it references the host project).");
        return path;
    }
}
