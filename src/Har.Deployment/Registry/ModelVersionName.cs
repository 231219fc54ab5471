namespace Har.Deployment;

/// <summary>
/// Version names as users type them (<c>1.2.0</c> or <c>v1.2.0</c>) mapped to registry folder names
/// (<c>v1.2.0</c>), through <see cref="SemanticVersion"/>: only strict semantic versions are accepted, so
/// a name never contains a path separator, <c>..</c> or a drive letter. Build metadata (<c>+build</c>) is
/// refused: it takes no part in precedence, so <c>1.2.0+a</c> and <c>1.2.0+b</c> would be one version in two folders.
/// </summary>
internal static class ModelVersionName
{
    /// <summary>Normalises <paramref name="input"/> to <c>MAJOR.MINOR.PATCH[-pre]</c> or throws.</summary>
    /// <exception cref="ArgumentException">Not a semantic version, or one with build metadata.</exception>
    public static string Normalize(string input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Parse(input).ToString();
    }

    /// <summary>Parses <paramref name="input"/> as a registry version or throws.</summary>
    /// <exception cref="ArgumentException">Not a semantic version, or one with build metadata.</exception>
    public static SemanticVersion Parse(string input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!SemanticVersion.TryParse(input, out var version) || version.Build.Length > 0)
        {
            throw new ArgumentException($"'{Printable(input)}' is not a model version; expected a semantic version such as '1.2.0' or 'v1.2.0' (numbers, dots and an optional -prerelease of letters, digits and hyphens; no +build metadata).", nameof(input));
        }

        return version;
    }

    public static bool TryNormalize(string? input, out string version)
    {
        if (SemanticVersion.TryParse(input, out var parsed) && parsed.Build.Length == 0)
        {
            version = parsed.ToString();
            return true;
        }

        version = string.Empty;
        return false;
    }

    public static string FolderName(string normalizedVersion) => "v" + normalizedVersion;

    /// <summary>Text from outside shown in a message: at most 80 characters, one line, control characters escaped.</summary>
    public static string Printable(string s)
    {
        var clipped = s.Length > 80 ? string.Concat(s.AsSpan(0, 80), "…") : s;
        return string.Create(clipped.Length, clipped, static (span, text) =>
        {
            for (var i = 0; i < text.Length; i++)
            {
                span[i] = char.IsControl(text[i]) || char.IsSurrogate(text[i]) ? '?' : text[i];
            }
        });
    }
}
