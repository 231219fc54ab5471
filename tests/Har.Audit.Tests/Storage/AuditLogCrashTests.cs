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

    private static Process Start(string host, string dir, int run)
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

    private static string Errors(Process process)
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

    private static string CrashHostPath()
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
