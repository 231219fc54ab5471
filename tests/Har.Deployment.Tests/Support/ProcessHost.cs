using System.Diagnostics;
using System.Text;

namespace Har.Deployment.Tests.Support;

/// <summary>Runs the crash/restart helper (tests/Har.Deployment.ProcessHost) as a real child process.</summary>
internal static class ProcessHost
{
    public static string AssemblyPath
    {
        get
        {
            var dir = AppContext.BaseDirectory.Replace("Har.Deployment.Tests", "Har.Deployment.ProcessHost", StringComparison.Ordinal);
            var path = Path.Combine(dir, "Har.Deployment.ProcessHost.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException($"The helper '{path}' is missing; build tests/Har.Deployment.ProcessHost (the test project references it for build order).", path);
        }
    }

    public static Process Start(IEnumerable<string> args, bool redirectInput = false)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = redirectInput, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(AssemblyPath);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi) ?? throw new InvalidOperationException("Could not start the helper process.");
    }

    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(IEnumerable<string> args, CancellationToken ct = default)
    {
        using var process = Start(args);
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        return (process.ExitCode, await output, await error);
    }

    /// <summary>Reads stdout lines until <paramref name="predicate"/> matches one (an explicit signal, no sleeps).</summary>
    public static async Task<string?> WaitForLineAsync(Process process, Func<string, bool> predicate, StringBuilder? log, CancellationToken ct)
    {
        while (await process.StandardOutput.ReadLineAsync(ct) is { } line)
        {
            log?.AppendLine(line);
            if (predicate(line))
            {
                return line;
            }
        }

        return null;
    }
}
