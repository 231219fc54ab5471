using System.CommandLine;
using Har.Cli.Commands;

namespace Har.Cli;

/// <summary>The <c>har</c> command: composes the Har packages; no domain logic lives here.</summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        try
        {
            return await RunAsync(args).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("har: cancelled.").ConfigureAwait(false);
            return 130;
        }
    }

    /// <summary>
    /// Parses and runs a command line; Ctrl-C or SIGTERM stops any command (exit code 130 or 143, "har: cancelled." on stderr). One that does not parse (an unknown option, a missing or malformed value, a value
    /// out of range) is exit code 2 with its errors on stderr, like any other usage mistake: exit code 1 means a check
    /// failed (verify, eval, drift check), so a script can tell the two apart. Help is printed only for <c>--help</c>.
    /// </summary>
    internal static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default)
    {
        var parse = BuildRoot().Parse(args);
        if (parse.Action is System.CommandLine.Invocation.ParseErrorAction)
        {
            return await CliErrors.ReportParseErrorsAsync(parse).ConfigureAwait(false);
        }

        var code = await parse.InvokeAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        if (code is CliErrors.Cancelled or CliErrors.Terminated)
        {
            await Console.Error.WriteLineAsync("har: cancelled.").ConfigureAwait(false);
        }

        return code;
    }

    internal static RootCommand BuildRoot()
    {
        var root = new RootCommand("har: run, monitor, audit and roll out human-activity-recognition models. Exit codes: 0 done; 1 a check failed (a verification, an eval below the card, drift found, a rollout that ended as soon as it started); 2 a usage mistake or bad input, or a rollout that cannot start or a retirement that is refused (the reason on stderr); 3 a rollout command refused by the rollout's state; 130 cancelled by Ctrl-C (143 by SIGTERM).")
        {
            ModelCommands.Create(),
            InferenceCommands.Predict(), InferenceCommands.Eval(),
            DriftCommands.Create(),
            AuditCommands.Create(),
            ModelsCommands.Create(), RolloutCommands.Create(), BackupCommands.Create(),
            DemoCommand.Create(),
        };

        // System.CommandLine prints the exception's stack by default; users get the message only.
        foreach (var command in root.Subcommands)
        {
            CliErrors.Wrap(command);
        }

        OptionRanges.RefuseCommasInNumbers(root);

        return root;
    }
}
