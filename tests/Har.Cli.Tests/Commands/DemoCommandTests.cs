namespace Har.Cli.Tests.Commands;

[Collection(ConsoleTests.Name)]
public sealed class DemoCommandTests
{
    [Theory]
    [InlineData("0")] // ran one session, exit code 0
    [InlineData("-1")] // ran one session, exit code 0
    [InlineData("10")]
    [InlineData("100000")] // with --synthetic: never finished
    public async Task Sessions_OutOfRange_ExitCode2WithTheRange(string sessions)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("demo", "--synthetic", "--sessions", sessions);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"har: --sessions is {sessions}; expected 1 to 9: the demo streams one session per test subject, and the UCI HAPT test split has 9.", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OutNamingAFile_ParseErrorNamingTheOption()
    {
        // Found from outside: `har demo --out <file>` ran, then failed with the BCL's "The file '…' already exists".
        var file = Path.GetTempFileName();
        try
        {
            var (code, stdout, stderr) = await ConsoleCapture.RunAsync("demo", "--synthetic", "--out", file);

            Assert.Equal(2, code);
            Assert.Empty(stdout);
            Assert.StartsWith($"har: --out '{file}' is a file; expected a folder for the demo's registry", stderr, StringComparison.Ordinal);
            Assert.Equal(0, new FileInfo(file).Length);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task SyntheticWithData_ParseError()
    {
        // `har demo --synthetic --data <folder>` ran on synthetic data and ignored the folder, silently.
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("demo", "--synthetic", "--data", Path.GetTempPath());

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith("har: --synthetic and --data cannot be given together: ", stderr, StringComparison.Ordinal);
    }
}
