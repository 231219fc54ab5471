using System.CommandLine;
using Har.Cli.Commands;

namespace Har.Cli;

/// <summary>The <c>har</c> command: composes the Har packages; no domain logic lives here.</summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = BuildRoot();
        try
        {
            return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("har: cancelled.").ConfigureAwait(false);
            return 130;
        }
    }

    internal static RootCommand BuildRoot()
    {
        var root = new RootCommand("har: run, monitor, audit and roll out human-activity-recognition models.")
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

        return root;
    }
}
