using System.CommandLine;
using System.Text.RegularExpressions;
using Har.Inference;

namespace Har.Cli;

/// <summary>Turns expected failures (bad input, missing files, invalid models, command lines that do not parse) into one clear line and exit code 2.</summary>
internal static partial class CliErrors
{
    /// <summary>The exit code of a usage mistake or bad input (exit code 1 is reserved for a check that failed).</summary>
    public const int UsageError = 2;

    /// <summary>The exit code of a command cancelled by Ctrl-C (SIGINT), as System.CommandLine returns it.</summary>
    public const int Cancelled = 130;

    /// <summary>The exit code System.CommandLine returns for a command stopped by SIGTERM.</summary>
    public const int Terminated = 143;

    /// <summary>
    /// Prints each parse error as <c>har: &lt;message&gt;</c> on stderr, the last one followed by where the usage is
    /// (<c>har drift psi --help</c>), and returns <see cref="UsageError"/>. Nothing goes to stdout.
    /// </summary>
    public static async Task<int> ReportParseErrorsAsync(ParseResult parse)
    {
        var errors = parse.Errors.Select(e => Readable(e.Message)).Distinct(StringComparer.Ordinal).ToList();
        for (var i = 0; i < errors.Count; i++)
        {
            var hint = i == errors.Count - 1 ? $" See '{CommandPath(parse.CommandResult.Command)} --help'." : string.Empty;
            await Console.Error.WriteLineAsync($"har: {errors[i]}{hint}").ConfigureAwait(false);
        }

        return UsageError;
    }

    /// <summary>
    /// A value that does not convert, said as the range errors say it ("--from is 'yesterday'; expected a date and time
    /// …"): System.CommandLine names the .NET type ("as expected type 'System.Nullable`1[System.DateTimeOffset]'"),
    /// which tells a user of the command line nothing. Types without a description here keep System.CommandLine's message.
    /// </summary>
    internal static string Readable(string message)
    {
        var match = ConversionError().Match(message);
        if (!match.Success)
        {
            return message;
        }

        var type = match.Groups["type"].Value;
        var nullable = NullableType().Match(type);
        var expected = (nullable.Success ? nullable.Groups["inner"].Value : type) switch
        {
            "System.Int32" => "a whole number (at most 2,147,483,647)",
            "System.Int64" => "a whole number (at most 9,223,372,036,854,775,807)",
            "System.Double" or "System.Single" => "a number, with a decimal point",
            "System.DateTimeOffset" or "System.DateTime" => "a date and time in RFC 3339, e.g. 2026-12-07T10:15:00Z",
            "System.TimeSpan" => "a duration such as 00:30:00",
            _ => null,
        };
        return expected is null ? message : $"{match.Groups["name"].Value} is '{match.Groups["value"].Value}'; expected {expected}.";
    }

    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for (?:option|command|argument) '(?<name>[^']*)' as expected type '(?<type>[^']*)'\.$", RegexOptions.Singleline | RegexOptions.CultureInvariant)]
    private static partial Regex ConversionError();

    [GeneratedRegex(@"^System\.Nullable`1\[(?<inner>.+)\]$", RegexOptions.CultureInvariant)]
    private static partial Regex NullableType();

    /// <summary>The command as typed, e.g. <c>har drift psi</c> (the root is always <c>har</c>, also in a test host).</summary>
    private static string CommandPath(Command command)
    {
        var names = new List<string>();
        while (command is not RootCommand)
        {
            names.Add(command.Name);
            if (command.Parents.FirstOrDefault() is not Command parent)
            {
                break;
            }

            command = parent;
        }

        names.Add("har");
        names.Reverse();
        return string.Join(' ', names);
    }

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
                    // On a worker thread: System.CommandLine handles Ctrl-C and SIGTERM by cancelling the token and, when the
                    // action has not ended within its ProcessTerminationTimeout, returning 130 (143) without it. A synchronous
                    // action run here blocked that return, so Ctrl-C did nothing until the command had finished (a minute
                    // of `har drift profile`, or for ever on a pipe that stays open).
                    System.CommandLine.Invocation.SynchronousCommandLineAction s => await Task.Run(() => s.Invoke(parse), CancellationToken.None).ConfigureAwait(false),
                    _ => throw new InvalidOperationException($"Unsupported action type {inner.GetType()}."),
                };
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // System.CommandLine's own handler makes a cancelled action exit code 1, the code of a failed check.
                return Cancelled;
            }
            catch (Exception ex) when (IsUserError(ex))
            {
                await Console.Error.WriteLineAsync($"har: {(ex is ArgumentException a ? Message(a) : ex.Message)}").ConfigureAwait(false);
                return 2;
            }
        });
    }

    /// <summary>An argument exception's first line, without .NET's " (Parameter 'name')" suffix: one line on stderr.</summary>
    internal static string Message(ArgumentException exception)
    {
        var first = exception.Message.Split('\n')[0].TrimEnd('\r');
        return exception.ParamName is { } name ? first.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : first;
    }

    private static bool IsUserError(Exception ex) =>
        ex is FileNotFoundException or DirectoryNotFoundException or InvalidDataException or ModelCardException
            or ArgumentException or FormatException or IOException or UnauthorizedAccessException;
}
