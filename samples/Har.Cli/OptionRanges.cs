using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Har.Cli;

/// <summary>
/// Range checks on option values, made while the command line is parsed: a value out of range is a parse error (exit
/// code 2, its message on stderr) before any data is read or any model loaded.
/// </summary>
internal static class OptionRanges
{
    /// <summary>
    /// Refuses a folder option naming an existing file: "--out '…' is a file; expected <paramref name="expected"/>."
    /// (the command found it only when it wrote, and said the BCL's "The file '…' already exists").
    /// </summary>
    public static T NotAFile<T>(this T option, string expected)
        where T : Option
    {
        option.Validators.Add(result =>
        {
            var path = result.Tokens.Count > 0 ? result.Tokens[^1].Value : null;
            if (!string.IsNullOrEmpty(path) && File.Exists(path))
            {
                result.AddError($"{option.Name} '{Path.GetFullPath(path)}' is a file; expected {expected}.");
            }
        });
        return option;
    }

    /// <summary>Refuses a value below <paramref name="min"/> or above <paramref name="max"/>: "--bins is 0; expected 2 to 10,000: why".</summary>
    public static Option<int> InRange(this Option<int> option, int min, int max, string why)
    {
        option.Validators.Add(result =>
        {
            if (TryGetValue(result, out int value) && (value < min || value > max))
            {
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} is {value}; expected {Range(min, max)}: {why}."));
            }
        });
        return option;
    }

    /// <summary>Refuses a value (when given) below <paramref name="min"/> or above <paramref name="max"/>.</summary>
    public static Option<int?> InRange(this Option<int?> option, int min, int max, string why)
    {
        option.Validators.Add(result =>
        {
            if (TryGetValue(result, out int? given) && given is { } value && (value < min || value > max))
            {
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} is {value}; expected {Range(min, max)}: {why}."));
            }
        });
        return option;
    }

    /// <summary>Refuses NaN, an infinity, or a finite value below <paramref name="min"/> or above <paramref name="max"/>.</summary>
    public static Option<double> InRange(this Option<double> option, double min, double max, string why)
    {
        option.Validators.Add(result =>
        {
            if (!HasComma(result) && TryGetValue(result, out double value) && !(value >= min && value <= max))
            {
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} is {value:R}; expected a finite number from {min:#,0.##} to {max:#,0.##}: {why}."));
            }
        });
        return option;
    }

    /// <summary>Refuses NaN, an infinity, or a value outside [<paramref name="min"/>, <paramref name="max"/>] when the option is given.</summary>
    public static Option<double?> InRange(this Option<double?> option, double min, double max, string why)
    {
        option.Validators.Add(result =>
        {
            if (!HasComma(result) && TryGetValue(result, out double? value) && value is { } v && !(v >= min && v <= max))
            {
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} is {v:R}; expected a finite number from {min:#,0.##} to {max:#,0.##}: {why}."));
            }
        });
        return option;
    }

    /// <summary>
    /// Refuses a comma in the value of every number option of <paramref name="command"/> and its subcommands: .NET reads
    /// "1,5" as 15 (a thousands separator), so `har eval --tolerance 1,5` passed a model 15 points below its card.
    /// </summary>
    public static void RefuseCommasInNumbers(Command command)
    {
        foreach (var option in command.Options)
        {
            if (option.ValueType == typeof(double) || option.ValueType == typeof(double?))
            {
                option.Validators.Add(result =>
                {
                    if (HasComma(result))
                    {
                        var text = result.Tokens[0].Value;
                        result.AddError($"{option.Name} is '{text}'; expected a number with a decimal point ({text.Replace(',', '.')}), not a comma.");
                    }
                });
            }
        }

        foreach (var sub in command.Subcommands)
        {
            RefuseCommasInNumbers(sub);
        }
    }

    private static bool HasComma(OptionResult result) => result.Tokens.Any(t => t.Value.Contains(',', StringComparison.Ordinal));

    /// <summary>"2 to 10,000", or "1 or more" without an upper bound (<see cref="int.MaxValue"/>).</summary>
    private static string Range(int min, int max) =>
        max == int.MaxValue ? string.Create(CultureInfo.InvariantCulture, $"{min:#,0} or more") : string.Create(CultureInfo.InvariantCulture, $"{min:#,0} to {max:#,0}");

    /// <summary>
    /// The option's value, or <see langword="false"/> when the text is not a <typeparamref name="T"/> (e.g. '--bins x'):
    /// the parser reports that conversion error itself, and a validator reading the value would throw instead.
    /// </summary>
    public static bool TryGetValue<T>(OptionResult result, out T value)
    {
        try
        {
            value = result.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }
}
