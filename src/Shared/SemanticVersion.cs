using System.Diagnostics.CodeAnalysis;
using System.Globalization;

// One source, compiled into Har.Inference (model cards) and Har.Deployment (registry folder names and ordering), each
// under its own namespace: the version type is not public API (model versions are strings everywhere in the API), and
// the `har` CLI sees the internals of both, where one type defined twice under the same name would be ambiguous.
#if HAR_INFERENCE
namespace Har.Inference;
#elif HAR_DEPLOYMENT
namespace Har.Deployment;
#else
#error Define HAR_INFERENCE or HAR_DEPLOYMENT in the project that links SemanticVersion.cs.
#endif

/// <summary>
/// A model version as a semantic version (<see href="https://semver.org/spec/v2.0.0.html">SemVer 2.0</see>):
/// <c>MAJOR.MINOR.PATCH</c>, an optional <c>-prerelease</c> and optional <c>+build</c> metadata. The one
/// version rule of Har: model cards and the registry check and order versions with it.
/// </summary>
/// <remarks>
/// <para>
/// Parsing accepts an optional leading <c>v</c> (<c>v1.2.0</c>, as users type folder names) and is strict
/// otherwise: numeric parts without leading zeros and at most nine digits, prerelease and build
/// identifiers of ASCII letters, digits and hyphens, numeric prerelease identifiers without leading zeros.
/// A parsed version therefore never contains a path separator or <c>..</c>.
/// </para>
/// <para>
/// Ordering is SemVer precedence: major, minor, patch numerically; a prerelease sorts before its release;
/// prerelease identifiers compare numerically when both are numeric, numeric before alphanumeric, ASCII
/// order otherwise, and a shorter list of equal identifiers first. Build metadata does not take part in
/// precedence or equality. <see cref="ToString()"/> gives the normalised form without <c>v</c>.
/// </para>
/// </remarks>
internal readonly struct SemanticVersion : IEquatable<SemanticVersion>, IComparable<SemanticVersion>
{
    private const int MaxLength = 256;
    private readonly string? _prerelease;
    private readonly string? _build;

    private SemanticVersion(int major, int minor, int patch, string? prerelease, string? build)
    {
        Major = major;
        Minor = minor;
        Patch = patch;
        _prerelease = prerelease;
        _build = build;
    }

    /// <summary>Gets the major version.</summary>
    internal int Major { get; }

    /// <summary>Gets the minor version.</summary>
    internal int Minor { get; }

    /// <summary>Gets the patch version.</summary>
    internal int Patch { get; }

    /// <summary>Gets the prerelease label without its leading hyphen (<c>rc.1</c>), or an empty string for a release.</summary>
    internal string Prerelease => _prerelease ?? string.Empty;

    /// <summary>Gets the build metadata without its leading plus sign, or an empty string.</summary>
    public string Build => _build ?? string.Empty;

    /// <summary>Gets a value indicating whether this is a prerelease version.</summary>
    internal bool IsPrerelease => !string.IsNullOrEmpty(_prerelease);

    /// <summary>Parses a semantic version such as <c>1.2.0</c>, <c>v1.2.0</c> or <c>2.0.0-rc.1+build.5</c>.</summary>
    /// <param name="text">The version text.</param>
    /// <returns>The parsed version.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    /// <exception cref="FormatException"><paramref name="text"/> is not a semantic version; the message says what was expected.</exception>
    public static SemanticVersion Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TryParse(text, out var version))
        {
            var shown = text.Length > 80 ? string.Concat(text.AsSpan(0, 80), "…") : text.ReplaceLineEndings(" ");
            throw new FormatException($"'{shown}' is not a semantic version; expected MAJOR.MINOR.PATCH such as '1.2.0' or 'v1.2.0' (numbers without leading zeros, an optional -prerelease and +build of letters, digits, hyphens and dots).");
        }

        return version;
    }

    /// <summary>Tries to parse a semantic version; see <see cref="Parse(string)"/> for the accepted form.</summary>
    /// <param name="text">The version text.</param>
    /// <param name="version">The parsed version, or <see langword="default"/> when the text is not a version.</param>
    /// <returns><see langword="true"/> when <paramref name="text"/> is a semantic version.</returns>
    public static bool TryParse([NotNullWhen(true)] string? text, out SemanticVersion version)
    {
        version = default;
        if (string.IsNullOrEmpty(text) || text.Length > MaxLength)
        {
            return false;
        }

        var s = text.AsSpan();
        if (s[0] is 'v' or 'V')
        {
            s = s[1..];
        }

        string? build = null;
        var plus = s.IndexOf('+');
        if (plus >= 0)
        {
            var b = s[(plus + 1)..];
            if (!ValidIdentifiers(b, numericRule: false))
            {
                return false;
            }

            build = b.ToString();
            s = s[..plus];
        }

        string? prerelease = null;
        var dash = s.IndexOf('-');
        if (dash >= 0)
        {
            var p = s[(dash + 1)..];
            if (!ValidIdentifiers(p, numericRule: true))
            {
                return false;
            }

            prerelease = p.ToString();
            s = s[..dash];
        }

        Span<Range> parts = stackalloc Range[4];
        if (s.Split(parts, '.') != 3
            || !TryNumber(s[parts[0]], out var major)
            || !TryNumber(s[parts[1]], out var minor)
            || !TryNumber(s[parts[2]], out var patch))
        {
            return false;
        }

        version = new SemanticVersion(major, minor, patch, prerelease, build);
        return true;
    }

    /// <inheritdoc/>
    public int CompareTo(SemanticVersion other)
    {
        var c = Major.CompareTo(other.Major);
        c = c != 0 ? c : Minor.CompareTo(other.Minor);
        c = c != 0 ? c : Patch.CompareTo(other.Patch);
        return c != 0 ? c : ComparePrerelease(Prerelease, other.Prerelease);
    }

    /// <inheritdoc/>
    public bool Equals(SemanticVersion other) => CompareTo(other) == 0;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is SemanticVersion v && Equals(v);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Major, Minor, Patch, StringComparer.Ordinal.GetHashCode(Prerelease));

    /// <summary>Gets the normalised text: <c>MAJOR.MINOR.PATCH[-prerelease][+build]</c>, without a leading <c>v</c>.</summary>
    /// <returns>The version text.</returns>
    public override string ToString()
    {
        var core = string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}.{Patch}");
        return (_prerelease, _build) switch
        {
            (null, null) => core,
            (_, null) => core + "-" + _prerelease,
            (null, _) => core + "+" + _build,
            _ => core + "-" + _prerelease + "+" + _build,
        };
    }

    /// <summary>Compares two versions by precedence.</summary>
    /// <param name="left">The first version.</param>
    /// <param name="right">The second version.</param>
    /// <returns>Whether the versions have the same precedence.</returns>
    public static bool operator ==(SemanticVersion left, SemanticVersion right) => left.Equals(right);

    /// <summary>Compares two versions by precedence.</summary>
    /// <param name="left">The first version.</param>
    /// <param name="right">The second version.</param>
    /// <returns>Whether the versions differ in precedence.</returns>
    public static bool operator !=(SemanticVersion left, SemanticVersion right) => !left.Equals(right);

    /// <summary>Compares two versions by precedence.</summary>
    /// <param name="left">The first version.</param>
    /// <param name="right">The second version.</param>
    /// <returns>Whether <paramref name="left"/> precedes <paramref name="right"/>.</returns>
    public static bool operator <(SemanticVersion left, SemanticVersion right) => left.CompareTo(right) < 0;

    /// <summary>Compares two versions by precedence.</summary>
    /// <param name="left">The first version.</param>
    /// <param name="right">The second version.</param>
    /// <returns>Whether <paramref name="left"/> precedes or equals <paramref name="right"/>.</returns>
    public static bool operator <=(SemanticVersion left, SemanticVersion right) => left.CompareTo(right) <= 0;

    /// <summary>Compares two versions by precedence.</summary>
    /// <param name="left">The first version.</param>
    /// <param name="right">The second version.</param>
    /// <returns>Whether <paramref name="left"/> follows <paramref name="right"/>.</returns>
    public static bool operator >(SemanticVersion left, SemanticVersion right) => left.CompareTo(right) > 0;

    /// <summary>Compares two versions by precedence.</summary>
    /// <param name="left">The first version.</param>
    /// <param name="right">The second version.</param>
    /// <returns>Whether <paramref name="left"/> follows or equals <paramref name="right"/>.</returns>
    public static bool operator >=(SemanticVersion left, SemanticVersion right) => left.CompareTo(right) >= 0;

    private static bool TryNumber(ReadOnlySpan<char> s, out int value)
    {
        value = 0;
        if (s.Length is 0 or > 9 || (s.Length > 1 && s[0] == '0'))
        {
            return false;
        }

        foreach (var ch in s)
        {
            if (!char.IsAsciiDigit(ch))
            {
                return false;
            }

            value = (value * 10) + (ch - '0');
        }

        return true;
    }

    private static bool ValidIdentifiers(ReadOnlySpan<char> s, bool numericRule)
    {
        if (s.IsEmpty)
        {
            return false;
        }

        foreach (var range in s.Split('.'))
        {
            var id = s[range];
            if (id.IsEmpty)
            {
                return false;
            }

            var numeric = true;
            foreach (var ch in id)
            {
                if (!char.IsAsciiLetterOrDigit(ch) && ch != '-')
                {
                    return false;
                }

                numeric &= char.IsAsciiDigit(ch);
            }

            if (numericRule && numeric && id.Length > 1 && id[0] == '0')
            {
                return false;
            }
        }

        return true;
    }

    private static int ComparePrerelease(string a, string b)
    {
        if (a.Length == 0 || b.Length == 0)
        {
            // A release (no prerelease) has higher precedence than any prerelease of the same core.
            return (a.Length == 0 ? 1 : 0) - (b.Length == 0 ? 1 : 0);
        }

        var x = a.AsSpan();
        var y = b.AsSpan();
        while (true)
        {
            var xd = x.IndexOf('.');
            var yd = y.IndexOf('.');
            var xi = xd < 0 ? x : x[..xd];
            var yi = yd < 0 ? y : y[..yd];
            var c = CompareIdentifier(xi, yi);
            if (c != 0)
            {
                return c;
            }

            if (xd < 0 || yd < 0)
            {
                // Equal so far: the list with more identifiers has higher precedence.
                return (xd < 0 ? 0 : 1) - (yd < 0 ? 0 : 1);
            }

            x = x[(xd + 1)..];
            y = y[(yd + 1)..];
        }
    }

    private static int CompareIdentifier(ReadOnlySpan<char> x, ReadOnlySpan<char> y)
    {
        var xNumeric = IsNumeric(x);
        var yNumeric = IsNumeric(y);
        if (xNumeric && yNumeric)
        {
            // No leading zeros, so the longer number is the larger one.
            var c = x.Length.CompareTo(y.Length);
            return c != 0 ? c : x.SequenceCompareTo(y);
        }

        if (xNumeric != yNumeric)
        {
            return xNumeric ? -1 : 1;
        }

        return Math.Sign(x.SequenceCompareTo(y));
    }

    private static bool IsNumeric(ReadOnlySpan<char> s)
    {
        foreach (var ch in s)
        {
            if (!char.IsAsciiDigit(ch))
            {
                return false;
            }
        }

        return true;
    }
}
