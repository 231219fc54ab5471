namespace Har.Cli.Tests;

/// <summary>Tests that redirect the process-wide <see cref="Console"/> run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleTests
{
    public const string Name = "Console";
}

/// <summary>Runs the <c>har</c> command line in process (as <c>Main</c> does, parse errors included) and captures stdout and stderr.</summary>
internal static class ConsoleCapture
{
    public static async Task<(int ExitCode, string Out, string Error)> RunAsync(params string[] args)
    {
        var (oldOut, oldError) = (Console.Out, Console.Error);
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            var code = await Program.RunAsync(args);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
    }
}
