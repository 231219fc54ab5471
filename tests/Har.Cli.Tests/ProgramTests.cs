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
    [InlineData(new[] { "drift", "psi", "a.txt", "b.txt", "--bins", "x" }, "Cannot parse argument 'x' for option '--bins'", "har drift psi")]
    [InlineData(new[] { "rollout", "start", "--registry", "r", "--candidate", "1.1.0", "--canary-shadow", "abc" }, "Cannot parse argument 'abc' for option '--canary-shadow'", "har rollout start")] // its range check once threw on it
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
}
