using System.Text.RegularExpressions;

namespace Har.Deployment;

/// <summary>
/// Version names as users type them (<c>1.2.0</c> or <c>v1.2.0</c>) mapped to registry folder names
/// (<c>v1.2.0</c>). Only strict semantic versions are accepted, so a name can never contain a path
/// separator, <c>..</c>, a drive letter or any other way out of the registry directory.
/// </summary>
internal static partial class ModelVersionName
{
    [GeneratedRegex(@"^v?(?<v>(?:0|[1-9][0-9]{0,8})\.(?:0|[1-9][0-9]{0,8})\.(?:0|[1-9][0-9]{0,8})(?:-[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*)?)$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    /// <summary>Normalises <paramref name="input"/> to <c>MAJOR.MINOR.PATCH[-pre]</c> or throws.</summary>
    public static string Normalize(string input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var match = Pattern().Match(input);
        if (!match.Success)
        {
            throw new ArgumentException($"'{Printable(input)}' is not a model version; expected a semantic version such as '1.2.0' or 'v1.2.0' (digits, dots and an optional -prerelease of letters and digits).", nameof(input));
        }

        return match.Groups["v"].Value;
    }

    public static bool TryNormalize(string? input, out string version)
    {
        var match = input is null ? Match.Empty : Pattern().Match(input);
        version = match.Success ? match.Groups["v"].Value : string.Empty;
        return match.Success;
    }

    public static string FolderName(string normalizedVersion) => "v" + normalizedVersion;

    private static string Printable(string s) => s.Length > 80 ? string.Concat(s.AsSpan(0, 80), "…") : s.ReplaceLineEndings(" ");
}
