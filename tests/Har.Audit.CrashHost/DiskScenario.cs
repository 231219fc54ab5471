using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Har.Audit.CrashHost;

/// <summary>
/// Runs inside a private mount namespace whose <c>dir</c> is a small tmpfs (the test starts it through
/// <c>unshare -Urm</c>): fills the file system for real, checks appends fail with the typed exception and the
/// log says it is unavailable, frees the space and waits for the log to recover on its own; then remounts the
/// folder read-only and checks opening fails with the typed exception until it is writable again.
/// Prints <c>step &lt;name&gt; &lt;detail&gt;</c> lines; exits 0 when the scenario ran to the end.
/// </summary>
internal static class DiskScenario
{
    public static async Task<int> RunAsync(string dir)
    {
        var logDir = Path.Combine(dir, "audit");
        var options = new AuditLogOptions { Directory = logDir, EnableMetrics = false, RetryInterval = TimeSpan.FromMilliseconds(50) };
        var details = JsonSerializer.SerializeToElement(new { padding = new string('x', 2000) });
        AuditEvent Event(int i) => new()
        {
            EventType = "disk.append",
            EntityType = "probe",
            EntityId = i.ToString(CultureInfo.InvariantCulture),
            Severity = AuditSeverity.Info,
            ActionDetails = details,
            Actor = "disk-scenario",
            Timestamp = TimeProvider.System.GetUtcNow(),
        };

        var log = AuditLog.Open(options);
        for (var i = 0; i < 5; i++)
        {
            await log.AppendAsync(Event(i)).ConfigureAwait(false);
        }

        Step("appended", log.Count);

        // Fill the file system: a filler file grows until the kernel says ENOSPC.
        var filler = Path.Combine(dir, "filler");
        try
        {
            using var f = new FileStream(filler, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.WriteThrough);
            var block = new byte[4096];
            while (true)
            {
                f.Write(block);
            }
        }
        catch (IOException ex)
        {
            Step("full", ex.Message);
        }

        // Appends now fail with the typed exception until space comes back.
        var failures = 0;
        for (var i = 0; i < 200 && log.State == AuditLogState.Writable; i++)
        {
            try
            {
                await log.AppendAsync(Event(100 + i)).ConfigureAwait(false);
            }
            catch (AuditLogUnavailableException ex)
            {
                failures++;
                Step("append-failed", ex.GetType().Name + " " + (ex.InnerException?.Message ?? string.Empty));
            }
        }

        Step("state", log.State);
        try
        {
            _ = log.AppendAsync(Event(999));
            Step("refused", "no");
        }
        catch (AuditLogUnavailableException)
        {
            Step("refused", "synchronously");
        }

        var countWhileFull = log.Count;
        Step("readable", log.Get(0).EntityId);

        File.Delete(filler);
        var clock = Stopwatch.StartNew();
        while (log.State != AuditLogState.Writable && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(20).ConfigureAwait(false);
        }

        Step("recovered", log.State);
        var ack = await log.AppendAsync(Event(1000)).ConfigureAwait(false);
        Step("appended-after-recovery", ack.Index);
        Step("verify", log.Verify().IsValid);
        log.Dispose();

        using (var reopened = AuditLog.Open(options))
        {
            Step("reopened", $"{reopened.Count} {countWhileFull} {reopened.Verify().IsValid}");
        }

        // Read-only folder at start-up: Open refuses with the typed exception; it opens once writable again.
        Run("mount", "-o", "remount,ro", dir);
        try
        {
            using var _ = AuditLog.Open(options);
            Step("readonly-open", "opened");
        }
        catch (AuditLogUnavailableException ex)
        {
            Step("readonly-open", "AuditLogUnavailableException " + ex.Message.Replace('\n', ' '));
        }

        Run("mount", "-o", "remount,rw", dir);
        using (var writable = AuditLog.Open(options))
        {
            var last = await writable.AppendAsync(Event(2000)).ConfigureAwait(false);
            Step("writable-open", last.Index);
        }

        Step("done", failures);
        return 0;
    }

    private static void Step(string name, object? detail)
    {
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {name} {detail}"));
        Console.Out.Flush();
    }

    private static void Run(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, UseShellExecute = false })!;
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {p.ExitCode}: {p.StandardError.ReadToEnd()}");
        }
    }
}
