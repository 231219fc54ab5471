using System.Diagnostics;

namespace Har.Cli.Tests;

/// <summary>
/// Command lines that do not parse are usage mistakes: exit code 2 with the parse error on stderr and nothing on stdout,
/// so that a script can tell them from exit code 1, a check that failed (models verify, eval, drift check). They were
/// exit code 1 with the full help on stdout.
/// </summary>
[Collection(ConsoleTests.Name)]
public sealed class ProgramTests
{
    [Theory]
    [InlineData(new[] { "drift", "psi", "a.txt", "b.txt", "--bogus" }, "Unrecognized command or argument '--bogus'", "har drift psi")]
    [InlineData(new[] { "drift", "psi", "a.txt", "b.txt", "--bins", "x" }, "--bins is 'x'; expected a whole number (at most 2,147,483,647).", "har drift psi")]
    [InlineData(new[] { "rollout", "start", "--registry", "r", "--candidate", "1.1.0", "--canary-shadow", "abc" }, "--canary-shadow is 'abc'; expected a number, with a decimal point.", "har rollout start")] // its range check once threw on it
    [InlineData(new[] { "models", "verify", "--registry" }, "Required argument missing for option: '--registry'", "har models verify")]
    [InlineData(new[] { "backup", "prune", "--dir", "backups" }, "Option '--keep' is required", "har backup prune")]
    [InlineData(new[] { "drift", "check", "--input", "x.csv" }, "Option '--profile' is required", "har drift check")]
    [InlineData(new[] { "no-such-command" }, "Unrecognized command or argument 'no-such-command'", "har")]
    public async Task RunAsync_CommandLineThatDoesNotParse_ExitCode2WithTheErrorOnStderr(string[] args, string error, string command)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(args);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith("har: ", stderr, StringComparison.Ordinal);
        Assert.Contains(error, stderr, StringComparison.Ordinal);
        Assert.Contains($"See '{command} --help'.", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Usage:", stderr + stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_SeveralErrors_OneLineEach()
    {
        var (code, _, stderr) = await ConsoleCapture.RunAsync("backup", "prune", "--bogus");

        Assert.Equal(2, code);
        var lines = stderr.TrimEnd().Split('\n');
        Assert.True(lines.Length >= 2, stderr);
        Assert.All(lines, l => Assert.StartsWith("har: ", l, StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("'--bogus'", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("'--dir' is required", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("drift", "psi", "--help")]
    [InlineData("backup", "prune", "--help")] // required options missing: --help still wins
    public async Task RunAsync_Help_ExitCode0WithTheUsageOnStdout(params string[] args)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(args);

        Assert.Equal(0, code);
        Assert.Contains("Usage:", stdout, StringComparison.Ordinal);
        Assert.Empty(stderr);
    }

    [Fact]
    public async Task RunAsync_RootHelp_StatesTheExitCodes()
    {
        var (code, stdout, _) = await ConsoleCapture.RunAsync("--help");

        Assert.Equal(0, code);
        Assert.Contains("1 a check failed", stdout, StringComparison.Ordinal);
        Assert.Contains("2 a usage mistake or bad input", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "audit", "query", "--log", "l", "--from", "yesterday" }, "har: --from is 'yesterday'; expected a date and time in RFC 3339, e.g. 2026-12-07T10:15:00Z. See 'har audit query --help'.")]
    [InlineData(new[] { "audit", "show", "--log", "l", "--index", "first" }, "har: --index is 'first'; expected a whole number (at most 9,223,372,036,854,775,807). See 'har audit show --help'.")]
    [InlineData(new[] { "predict", "--input", "x.csv", "--segments", "--smoothing", "99999999999" }, "har: --smoothing is '99999999999'; expected a whole number (at most 2,147,483,647). See 'har predict --help'.")]
    [InlineData(new[] { "eval", "--tolerance", "one" }, "har: --tolerance is 'one'; expected a number, with a decimal point. See 'har eval --help'.")]
    public async Task RunAsync_ValueThatDoesNotConvert_SaysWhatWasExpectedNotTheDotNetType(string[] args, string error)
    {
        // It was "Cannot parse argument 'yesterday' for option '--from' as expected type 'System.Nullable`1[System.DateTimeOffset]'."
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(args);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal(error, stderr.TrimEnd());
    }

    [Theory]
    [InlineData("TERM", 143)]
    [InlineData("INT", 130)] // Ctrl-C
    public async Task Main_SignalDuringASynchronousCommand_StopsIt(string signal, int exitCode)
    {
        // Found from outside: Ctrl-C and SIGTERM did nothing to a synchronous command until it ended by itself: `har drift
        // profile` ran on for its minute and wrote the profile after Ctrl-C, and `har predict` on a pipe whose writer
        // stays open never ended. System.CommandLine cancelled a token no synchronous action reads, and could not return.
        Assert.SkipWhen(OperatingSystem.IsWindows(), "POSIX signals and named pipes.");
        Assert.SkipWhen(signal == "INT" && SigIntIgnored(), "SIGINT is ignored in this process (started in the background of a shell without job control), and so in the har it starts.");
        var dir = Directory.CreateTempSubdirectory("har-cli-signal-").FullName;
        Process? har = null;
        try
        {
            var fifo = Path.Combine(dir, "stream.csv");
            await RunToolAsync("mkfifo", fifo);
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "har.dll"), "predict", "--input", fifo, "--model", DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx") })
            {
                start.ArgumentList.Add(arg);
            }

            har = Process.Start(start)!;
            var stdout = har.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            var stderr = har.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);

            // Opening the pipe for writing returns once har has opened it for reading: har is in the command, and the
            // frames written leave it waiting for more while the pipe stays open.
            await using var writer = new FileStream(fifo, FileMode.Open, FileAccess.Write);
            await writer.WriteAsync("ax,ay,az,gx,gy,gz\n0.98,0.01,0.2,0.01,-0.5,0.001\n"u8.ToArray(), TestContext.Current.CancellationToken);
            await writer.FlushAsync(TestContext.Current.CancellationToken);
            await RunToolAsync("kill", $"-{signal}", har.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));

            // A guard against a hang, not a measure: it ends within seconds (System.CommandLine's termination timeout).
            Assert.True(har.WaitForExit(TimeSpan.FromMinutes(2)), $"har still running 2 minutes after SIG{signal}");
            Assert.Equal(exitCode, har.ExitCode);
            Assert.Empty(await stdout);
            Assert.Equal("har: cancelled.", (await stderr).TrimEnd());
        }
        finally
        {
            if (har is { HasExited: false })
            {
                har.Kill();
            }

            har?.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task RunToolAsync(string tool, params string[] args)
    {
        using var process = Process.Start(tool, args);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.Equal(0, process.ExitCode);
    }

    /// <summary>Whether SIGINT is ignored here (bit 2 of SigIgn in /proc/self/status); a child started from here inherits that.</summary>
    private static bool SigIntIgnored()
    {
        var line = File.Exists("/proc/self/status") ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)) : null;
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & 0x2) != 0;
    }

    [Theory]
    [InlineData(new[] { "eval", "--tolerance", "1,5" }, "har: --tolerance is '1,5'; expected a number with a decimal point (1.5), not a comma. See 'har eval --help'.")] // read as 15 points, and the eval passed
    [InlineData(new[] { "rollout", "start", "--registry", "r", "--candidate", "1.1.0", "--min-accuracy", "0,93" }, "har: --min-accuracy is '0,93'; expected a number with a decimal point (0.93), not a comma. See 'har rollout start --help'.")] // was "--min-accuracy is 93; expected … 0 to 1"
    [InlineData(new[] { "rollout", "start", "--registry", "r", "--candidate", "1.1.0", "--canary-shadow", "2,5" }, "har: --canary-shadow is '2,5'; expected a number with a decimal point (2.5), not a comma. See 'har rollout start --help'.")] // read as 25 %
    public async Task RunAsync_DecimalCommaInANumber_RefusedNotReadAsThousands(string[] args, string error)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(args);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal(error, stderr.TrimEnd());
    }
}
