using System.CommandLine;
using System.CommandLine.Parsing;

namespace Har.Cli;

/// <summary>
/// Options that only make sense together, or not together, checked while the command line is parsed: a refused
/// combination is a parse error (exit code 2, naming both options) before any work.
/// </summary>
internal static class OptionCombinations
{
    /// <summary>Refuses <paramref name="option"/> when <paramref name="needed"/> is not given: "--accuracy-subjects needs --model: why".</summary>
    public static void Needs(this Command command, Option option, Option needed, string why) =>
        command.Validators.Add(result =>
        {
            if (Given(result, option) && !Given(result, needed))
            {
                result.AddError($"{option.Name} needs {needed.Name}: {why}.");
            }
        });

    /// <summary>Refuses <paramref name="option"/> and <paramref name="other"/> given together: "--input and --data cannot be given together: why".</summary>
    public static void Excludes(this Command command, Option option, Option other, string why) =>
        command.Validators.Add(result =>
        {
            if (Given(result, option) && Given(result, other))
            {
                result.AddError($"{option.Name} and {other.Name} cannot be given together: {why}.");
            }
        });

    /// <summary>Requires exactly one of two options: both is "… cannot be given together", neither is <paramref name="neither"/>.</summary>
    public static void ExactlyOne(this Command command, Option option, Option other, string why, string neither)
    {
        command.Excludes(option, other, why);
        command.Validators.Add(result =>
        {
            if (!Given(result, option) && !Given(result, other))
            {
                result.AddError(neither);
            }
        });
    }

    /// <summary>Whether the option was typed (not merely defaulted).</summary>
    public static bool Given(CommandResult result, Option option) => result.GetResult(option) is OptionResult { Implicit: false };
}
