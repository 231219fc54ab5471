using System.CommandLine;
using Har.Inference;

namespace Har.Cli;

/// <summary>Turns expected failures (bad input, missing files, invalid models) into one clear line and exit code 2.</summary>
internal static class CliErrors
{
    public static void Wrap(Command command)
    {
        foreach (var sub in command.Subcommands)
        {
            Wrap(sub);
        }

        if (command.Action is null)
        {
            return;
        }

        var inner = command.Action;
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                return inner switch
                {
                    System.CommandLine.Invocation.AsynchronousCommandLineAction a => await a.InvokeAsync(parse, ct).ConfigureAwait(false),
                    System.CommandLine.Invocation.SynchronousCommandLineAction s => s.Invoke(parse),
                    _ => throw new InvalidOperationException($"Unsupported action type {inner.GetType()}."),
                };
            }
            catch (Exception ex) when (IsUserError(ex))
            {
                await Console.Error.WriteLineAsync($"har: {ex.Message}").ConfigureAwait(false);
                return 2;
            }
        });
    }

    private static bool IsUserError(Exception ex) =>
        ex is FileNotFoundException or DirectoryNotFoundException or InvalidDataException or ModelCardException
            or ArgumentException or FormatException or IOException or UnauthorizedAccessException;
}
