using System.Globalization;
using System.Text;

namespace Har.Service.Endpoints;

/// <summary>Checks of text a client sends for records that outlive the request (audit entries, deployment records).</summary>
internal static class ClientText
{
    /// <summary>
    /// An argument exception's message as a client should read it: its first line, without .NET's
    /// " (Parameter 'name')" suffix and the "Actual value was …" line that follow the sentence.
    /// </summary>
    public static string Message(ArgumentException exception)
    {
        var first = exception.Message.Split('\n')[0].TrimEnd('\r');
        return exception.ParamName is { } name ? first.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : first;
    }

    /// <summary>
    /// The first character that would not show as itself where the value is read (a terminal, a log line, a diff): a
    /// control character (NUL, CR, LF, ESC …), a format character (U+202E right-to-left override, zero-width ones), a
    /// line or paragraph separator, or a lone surrogate; null when there is none.
    /// </summary>
    public static string? Hidden(string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            if (IsPair(value, i))
            {
                i++;
            }
            else if (HiddenKind(value[i]) is { } kind)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{kind} (U+{(int)value[i]:X4}) at position {i}");
            }
        }

        return null;
    }

    /// <summary>A client value as shown in an error: at most <paramref name="max"/> characters, every hidden character escaped.</summary>
    public static string Shown(string value, int max = 64)
    {
        var text = value.Length <= max ? value : value[..max] + "…";
        if (Hidden(text) is null)
        {
            return text;
        }

        var shown = new StringBuilder(text.Length + 16);
        for (var i = 0; i < text.Length; i++)
        {
            if (IsPair(text, i))
            {
                shown.Append(text, i++, 2);
            }
            else if (HiddenKind(text[i]) is null)
            {
                shown.Append(text[i]);
            }
            else
            {
                shown.Append(CultureInfo.InvariantCulture, $"\\u{(int)text[i]:x4}");
            }
        }

        return shown.ToString();
    }

    private static bool IsPair(string text, int i) => char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]);

    private static string? HiddenKind(char c) => char.GetUnicodeCategory(c) switch
    {
        UnicodeCategory.Control => "a control character",
        UnicodeCategory.Format => "a format character",
        UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator => "a line separator",
        UnicodeCategory.Surrogate => "a lone surrogate",
        _ => null,
    };
}
