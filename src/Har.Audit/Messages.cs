using System.Globalization;

namespace Har.Audit;

/// <summary>Helpers for the text of exceptions and results: counts with the right noun, and sentences that end.</summary>
internal static class Messages
{
    /// <summary>Formats a count with its noun in the singular or the plural: <c>1 entry</c>, <c>0 entries</c>, <c>2 entries</c>.</summary>
    public static string Count(long n, string one, string many) =>
        n.ToString(CultureInfo.InvariantCulture) + " " + (n == 1 ? one : many);

    /// <summary>Formats a count of entries: <c>1 entry</c>, <c>3 entries</c>.</summary>
    public static string Entries(long n) => Count(n, "entry", "entries");

    /// <summary>Formats a count of bytes: <c>1 byte</c>, <c>8 bytes</c>.</summary>
    public static string Bytes(long n) => Count(n, "byte", "bytes");

    /// <summary>Returns <paramref name="text"/> ending with a full stop (messages of other libraries often end without one), trimmed.</summary>
    public static string Sentence(string text)
    {
        text = text.TrimEnd();
        return text.Length == 0 || text[^1] is '.' or '!' or '?' ? text : text + ".";
    }

    /// <summary>Names the entries [<paramref name="from"/>, <paramref name="to"/>) with their verb: <c>entry 4 is</c>, <c>entries 4..9 are</c>.</summary>
    public static string Range(long from, long to) =>
        to - from == 1
            ? string.Create(CultureInfo.InvariantCulture, $"entry {from} is")
            : string.Create(CultureInfo.InvariantCulture, $"entries {from}..{to - 1} are");

    /// <summary>Says the entries [<paramref name="from"/>, <paramref name="to"/>) are missing: <c>entry 4 is missing</c>, <c>entries 4..9 are missing</c>.</summary>
    public static string Missing(long from, long to) => Range(from, to) + " missing";
}
