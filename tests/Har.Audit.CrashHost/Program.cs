using System.Globalization;
using System.Text.Json;

namespace Har.Audit.CrashHost;

/// <summary>
/// Usage: <c>Har.Audit.CrashHost &lt;log dir | Host=… connection string&gt; &lt;threads&gt; &lt;run id&gt;</c>. Appends audit events from
/// several threads forever and prints <c>ack &lt;index&gt; &lt;entity id&gt;</c> (flushed) after each append
/// returned. The crash test kills it with SIGKILL at random moments and checks every printed entry survived.
/// <c>Har.Audit.CrashHost disk &lt;dir on a small tmpfs&gt;</c> runs the disk-full and read-only scenario
/// (<see cref="DiskScenario"/>), printing one line per step.
/// </summary>
internal static class Program
{
    private static readonly Lock Out = new();

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 2 && args[0] == "disk")
        {
            return await DiskScenario.RunAsync(args[1]).ConfigureAwait(false);
        }

        if (args.Length != 3)
        {
            await Console.Error.WriteLineAsync("usage: Har.Audit.CrashHost <log dir> <threads> <run id>").ConfigureAwait(false);
            return 2;
        }

        var threads = int.Parse(args[1], CultureInfo.InvariantCulture);
        var run = args[2];
        var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = false };
        // A first argument "Host=..." is a PostgreSQL connection string: the log in the database, shared with other processes.
        using var log = AuditLog.Open(args[0].StartsWith("Host=", StringComparison.Ordinal)
            ? new AuditLogOptions { ConnectionString = args[0], EnableMetrics = false }
            : new AuditLogOptions { Directory = args[0], SealInterval = 300, EnableMetrics = false });
        lock (Out)
        {
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ready {log.Count} {log.Recovery}"));
            stdout.Flush();
        }

        var details = JsonSerializer.SerializeToElement(new { step = "crash-test", note = "appended until SIGKILL" });
        var workers = Enumerable.Range(0, threads).Select(t => Task.Run(async () =>
        {
            for (var seq = 0L; ; seq++)
            {
                var id = string.Create(CultureInfo.InvariantCulture, $"{run}-t{t}-{seq}");
                var result = await log.AppendAsync(new AuditEvent
                {
                    EventType = "crash.append",
                    EntityType = "probe",
                    EntityId = id,
                    Severity = AuditSeverity.Info,
                    ActionDetails = details,
                    Actor = "crash-host",
                    Timestamp = TimeProvider.System.GetUtcNow(),
                }).ConfigureAwait(false);
                lock (Out)
                {
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ack {result.Index} {id}"));
                    stdout.Flush();
                }
            }
        })).ToArray();
        await Task.WhenAll(workers).ConfigureAwait(false);
        return 0;
    }
}
