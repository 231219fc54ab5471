using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Har.Audit;

/// <summary>
/// RFC 8785 JSON Canonicalization Scheme (JCS): members sorted by the UTF-16 code units of their
/// names, no insignificant whitespace, minimal string escapes, numbers as ECMAScript prints them.
/// Input must be I-JSON: no duplicate member names, no lone surrogates, every number a finite IEEE-754 double.
/// </summary>
internal static class CanonicalJson
{
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 63 };

    /// <summary>Returns the canonical UTF-8 form of a JSON text.</summary>
    /// <param name="utf8Json">A JSON text in UTF-8.</param>
    /// <returns>The canonical bytes.</returns>
    /// <exception cref="FormatException">The text is not JSON, or not I-JSON (duplicate names, lone surrogates, numbers outside the double range).</exception>
    public static byte[] Canonicalize(ReadOnlySpan<byte> utf8Json)
    {
        var buffer = new ArrayBufferWriter<byte>(Math.Max(16, utf8Json.Length));
        Canonicalize(utf8Json, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes the canonical UTF-8 form of a JSON text to <paramref name="destination"/>.</summary>
    /// <param name="utf8Json">A JSON text in UTF-8.</param>
    /// <param name="destination">Receives the canonical bytes.</param>
    /// <exception cref="FormatException">The text is not JSON or not I-JSON.</exception>
    public static void Canonicalize(ReadOnlySpan<byte> utf8Json, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        JsonDocument doc;
        try
        {
            var bytes = utf8Json.ToArray();
            doc = JsonDocument.Parse(bytes, DocumentOptions);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"Not valid JSON: {ex.Message}", ex);
        }

        using (doc)
        {
            Canonicalize(doc.RootElement, destination);
        }
    }

    /// <summary>Writes the canonical UTF-8 form of a parsed JSON value to <paramref name="destination"/>.</summary>
    /// <param name="element">The value.</param>
    /// <param name="destination">Receives the canonical bytes.</param>
    /// <exception cref="FormatException">The value is not I-JSON.</exception>
    public static void Canonicalize(JsonElement element, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        Write(new CanonicalJsonWriter(destination), element, "$");
    }

    /// <summary>Returns the canonical UTF-8 form of a parsed JSON value.</summary>
    /// <param name="element">The value.</param>
    /// <returns>The canonical bytes.</returns>
    /// <exception cref="FormatException">The value is not I-JSON.</exception>
    public static byte[] Canonicalize(JsonElement element)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Canonicalize(element, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Formats a double as ECMAScript's <c>Number.prototype.toString</c> does (RFC 8785 §3.2.2.3).</summary>
    /// <param name="value">A finite double.</param>
    /// <returns>The canonical number text.</returns>
    /// <exception cref="FormatException"><paramref name="value"/> is NaN or infinite.</exception>
    public static string FormatNumber(double value)
    {
        Span<char> chars = stackalloc char[32];
        var n = FormatNumber(value, chars);
        return new string(chars[..n]);
    }

    internal static int FormatNumber(double value, Span<char> output)
    {
        if (!double.IsFinite(value))
        {
            throw new FormatException($"{value.ToString(CultureInfo.InvariantCulture)} has no JSON representation; RFC 8785 accepts finite numbers only.");
        }

        if (value == 0)
        {
            output[0] = '0';
            return 1;
        }

        var pos = 0;
        if (value < 0)
        {
            output[pos++] = '-';
            value = -value;
        }

        // Shortest round-trip digits from .NET ("R"), then ECMAScript's layout.
        Span<char> r = stackalloc char[32];
        value.TryFormat(r, out var rl, "R", CultureInfo.InvariantCulture);
        r = r[..rl];
        var e = r.IndexOfAny('E', 'e');
        var exp = 0;
        var mantissa = r;
        if (e >= 0)
        {
            exp = int.Parse(r[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            mantissa = r[..e];
        }

        Span<char> digits = stackalloc char[32];
        var k = 0;
        var intLen = mantissa.IndexOf('.');
        if (intLen < 0)
        {
            intLen = mantissa.Length;
        }

        var leadingZeros = 0;
        var seenNonZero = false;
        foreach (var c in mantissa)
        {
            if (c == '.')
            {
                continue;
            }

            if (!seenNonZero && c == '0')
            {
                leadingZeros++;
                continue;
            }

            seenNonZero = true;
            digits[k++] = c;
        }

        while (k > 1 && digits[k - 1] == '0')
        {
            k--;
        }

        // value = 0.d1d2...dk × 10^n
        var n = intLen + exp - leadingZeros;
        if (k <= n && n <= 21)
        {
            digits[..k].CopyTo(output[pos..]);
            pos += k;
            output.Slice(pos, n - k).Fill('0');
            pos += n - k;
        }
        else if (n > 0 && n <= 21)
        {
            digits[..n].CopyTo(output[pos..]);
            pos += n;
            output[pos++] = '.';
            digits[n..k].CopyTo(output[pos..]);
            pos += k - n;
        }
        else if (n > -6 && n <= 0)
        {
            output[pos++] = '0';
            output[pos++] = '.';
            output.Slice(pos, -n).Fill('0');
            pos += -n;
            digits[..k].CopyTo(output[pos..]);
            pos += k;
        }
        else
        {
            output[pos++] = digits[0];
            if (k > 1)
            {
                output[pos++] = '.';
                digits[1..k].CopyTo(output[pos..]);
                pos += k - 1;
            }

            output[pos++] = 'e';
            var e10 = n - 1;
            output[pos++] = e10 < 0 ? '-' : '+';
            Math.Abs(e10).TryFormat(output[pos..], out var w, default, CultureInfo.InvariantCulture);
            pos += w;
        }

        return pos;
    }

    internal static void Write(CanonicalJsonWriter w, JsonElement element, string path) => Write(w, element, path, null, -1);

    /// <summary>Writes a value; <paramref name="parent"/> and <paramref name="member"/> name it in error messages (the JSON path is only built when needed).</summary>
    internal static void Write(CanonicalJsonWriter w, JsonElement element, string parent, string? member) => Write(w, element, parent, member, -1);

    private static string PathOf(string parent, string? member, int arrayIndex) =>
        member is not null ? parent + "." + member : arrayIndex >= 0 ? parent + "[" + arrayIndex.ToString(CultureInfo.InvariantCulture) + "]" : parent;

    /// <summary>Writes a value; the JSON path (for error messages) is only built when something is wrong or a nested container is entered.</summary>
    private static void Write(CanonicalJsonWriter w, JsonElement element, string parent, string? member, int arrayIndex)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                WriteObject(w, element, parent, member, arrayIndex);
                break;
            case JsonValueKind.Array:
                var arrayPath = PathOf(parent, member, arrayIndex);
                w.StartArray();
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    Write(w, item, arrayPath, null, index++);
                }

                w.EndArray();
                break;
            default:
                var problem = WriteScalar(w, element);
                if (problem is not null)
                {
                    throw new FormatException($"{PathOf(parent, member, arrayIndex)}: {problem}");
                }

                break;
        }
    }

    private static void WriteObject(CanonicalJsonWriter w, JsonElement element, string parent, string? member, int arrayIndex)
    {
        // Fast path: member names in ASCII without escapes are their own canonical form, and their
        // byte order is their UTF-16 code unit order; sort the members by raw name without decoding.
        var count = 0;
        var plainNames = true;
        var nested = false;
        foreach (var p in element.EnumerateObject())
        {
            count++;
            var raw = JsonMarshal.GetRawUtf8PropertyName(p);
            plainNames &= Ascii.IsValid(raw) && !raw.Contains((byte)'\\');
            nested |= p.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array;
        }

        var path = nested || !plainNames ? PathOf(parent, member, arrayIndex) : null;
        if (!plainNames)
        {
            WriteObjectDecoded(w, element, path!, count);
            return;
        }

        var members = ArrayPool<JsonProperty>.Shared.Rent(count);
        try
        {
            var n = 0;
            var sorted = true;
            foreach (var p in element.EnumerateObject())
            {
                members[n] = p;
                if (n > 0 && RawNameComparer.Instance.Compare(members[n - 1], p) > 0)
                {
                    sorted = false;
                }

                n++;
            }

            if (!sorted)
            {
                Array.Sort(members, 0, count, RawNameComparer.Instance);
            }

            w.StartObject();
            for (var i = 0; i < count; i++)
            {
                var name = JsonMarshal.GetRawUtf8PropertyName(members[i]);
                if (i > 0 && name.SequenceEqual(JsonMarshal.GetRawUtf8PropertyName(members[i - 1])))
                {
                    throw new FormatException($"{path ?? PathOf(parent, member, arrayIndex)}: duplicate member name '{Encoding.UTF8.GetString(name)}'; I-JSON (RFC 8785 §3.1) requires unique names.");
                }

                w.PlainName(name);
                var value = members[i].Value;
                if (value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
                {
                    Write(w, value, path!, Encoding.UTF8.GetString(name), -1);
                    continue;
                }

                var problem = WriteScalar(w, value);
                if (problem is not null)
                {
                    throw new FormatException($"{path ?? PathOf(parent, member, arrayIndex)}.{Encoding.UTF8.GetString(name)}: {problem}");
                }
            }

            w.EndObject();
        }
        finally
        {
            members.AsSpan(0, count).Clear();
            ArrayPool<JsonProperty>.Shared.Return(members);
        }
    }

    /// <summary>The general path: names decoded to UTF-16 and sorted as strings.</summary>
    private static void WriteObjectDecoded(CanonicalJsonWriter w, JsonElement element, string path, int count)
    {
        var members = new KeyValuePair<string, JsonElement>[count];
        var n = 0;
        foreach (var p in element.EnumerateObject())
        {
            members[n++] = new(DecodeString(JsonMarshal.GetRawUtf8PropertyName(p), path), p.Value);
        }

        Array.Sort(members, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        w.StartObject();
        for (var i = 0; i < members.Length; i++)
        {
            if (i > 0 && string.Equals(members[i - 1].Key, members[i].Key, StringComparison.Ordinal))
            {
                throw new FormatException($"{path}: duplicate member name '{members[i].Key}'; I-JSON (RFC 8785 §3.1) requires unique names.");
            }

            w.Name(members[i].Key);
            Write(w, members[i].Value, path, members[i].Key, -1);
        }

        w.EndObject();
    }

    /// <summary>Writes a string, number or literal; returns what is wrong with it (without its path), or null.</summary>
    private static string? WriteScalar(CanonicalJsonWriter w, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                var raw = JsonMarshal.GetRawUtf8Value(element);
                var content = raw[1..^1];

                // Without escapes, valid UTF-8 string content is already canonical: JSON text cannot
                // hold unescaped quotes or control characters, and a lone surrogate needs an escape.
                if (!content.Contains((byte)'\\') && Utf8.IsValid(content))
                {
                    w.RawValue(raw);
                    return null;
                }

                // System.Text.Json unescapes in one pass and refuses lone surrogates; its message is
                // replaced by the one the strict decoder gives.
                string? decoded;
                try
                {
                    decoded = element.GetString();
                }
                catch (InvalidOperationException)
                {
                    decoded = TryDecodeString(content);
                }

                if (decoded is null)
                {
                    return "string contains a lone surrogate; RFC 8785 requires well-formed Unicode.";
                }

                w.String(decoded);
                return null;
            case JsonValueKind.Number:
                var text = JsonMarshal.GetRawUtf8Value(element);
                if (IsCanonicalNumberLiteral(text))
                {
                    w.RawValue(text);
                    return null;
                }

                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !double.IsFinite(d))
                {
                    return $"number {Encoding.UTF8.GetString(text)} is not a finite IEEE-754 double (RFC 8785 §3.2.2.3).";
                }

                w.Number(d);
                return null;
            case JsonValueKind.True:
                w.Bool(true);
                return null;
            case JsonValueKind.False:
                w.Bool(false);
                return null;
            case JsonValueKind.Null:
                w.Null();
                return null;
            default:
                return $"unexpected JSON value kind {element.ValueKind}.";
        }
    }

    /// <summary>
    /// Whether a JSON number literal is already in ECMAScript's shortest form, so it can be copied: no
    /// exponent, at most 15 significant digits (any two such decimals are distinct doubles, so none
    /// shorter prints the same double), no trailing fraction zeros, fewer than 6 zeros after "0.",
    /// and not -0. JSON's grammar already excludes leading zeros.
    /// </summary>
    internal static bool IsCanonicalNumberLiteral(ReadOnlySpan<byte> text)
    {
        var i = 0;
        if (text.Length > 0 && text[0] == '-')
        {
            i = 1;
        }

        var intStart = i;
        while (i < text.Length && char.IsAsciiDigit((char)text[i]))
        {
            i++;
        }

        var intDigits = i - intStart;
        if (intDigits == 0)
        {
            return false;
        }

        var zeroInt = intDigits == 1 && text[intStart] == '0';
        if (i == text.Length)
        {
            // An integer: canonical unless -0 or longer than 15 digits.
            return intDigits <= 15 && !(zeroInt && intStart == 1);
        }

        if (text[i] != '.')
        {
            return false;
        }

        i++;
        var fracStart = i;
        while (i < text.Length && char.IsAsciiDigit((char)text[i]))
        {
            i++;
        }

        var fracDigits = i - fracStart;
        if (i != text.Length || fracDigits == 0 || text[^1] == '0')
        {
            return false;
        }

        if (!zeroInt)
        {
            return intDigits + fracDigits <= 15;
        }

        var leadingZeros = 0;
        while (text[fracStart + leadingZeros] == '0')
        {
            leadingZeros++;
        }

        return leadingZeros < 6 && fracDigits - leadingZeros <= 15;
    }

    private sealed class RawNameComparer : IComparer<JsonProperty>
    {
        public static readonly RawNameComparer Instance = new();

        public int Compare(JsonProperty x, JsonProperty y) =>
            JsonMarshal.GetRawUtf8PropertyName(x).SequenceCompareTo(JsonMarshal.GetRawUtf8PropertyName(y));
    }

    /// <summary>Decodes the raw (still escaped) UTF-8 content of a JSON string, rejecting lone surrogates.</summary>
    internal static string DecodeString(ReadOnlySpan<byte> raw, string path) =>
        DecodeStringOrNull(raw, path) ?? throw new FormatException($"{path}: string contains a lone surrogate; RFC 8785 requires well-formed Unicode.");

    /// <summary>As <see cref="DecodeString"/>, but returns null for a lone surrogate.</summary>
    internal static string? TryDecodeString(ReadOnlySpan<byte> raw) => DecodeStringOrNull(raw, null);

    private static string? DecodeStringOrNull(ReadOnlySpan<byte> raw, string? path)
    {
        if (raw.IndexOf((byte)'\\') < 0)
        {
            var plain = Encoding.UTF8.GetString(raw);
            return plain;
        }

        var sb = new StringBuilder(raw.Length);
        var i = 0;
        while (i < raw.Length)
        {
            var b = raw[i];
            if (b != '\\')
            {
                var start = i;
                while (i < raw.Length && raw[i] != '\\')
                {
                    i++;
                }

                sb.Append(Encoding.UTF8.GetString(raw[start..i]));
                continue;
            }

            var esc = raw[i + 1];
            i += 2;
            switch (esc)
            {
                case (byte)'"': sb.Append('"'); break;
                case (byte)'\\': sb.Append('\\'); break;
                case (byte)'/': sb.Append('/'); break;
                case (byte)'b': sb.Append('\b'); break;
                case (byte)'f': sb.Append('\f'); break;
                case (byte)'n': sb.Append('\n'); break;
                case (byte)'r': sb.Append('\r'); break;
                case (byte)'t': sb.Append('\t'); break;
                case (byte)'u':
                    sb.Append((char)int.Parse(Encoding.ASCII.GetString(raw.Slice(i, 4)), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
                    i += 4;
                    break;
                default:
                    throw new FormatException($"{path ?? "$"}: invalid escape '\\{(char)esc}'.");
            }
        }

        var s = sb.ToString();
        for (var j = 0; j < s.Length; j++)
        {
            if (char.IsHighSurrogate(s[j]) && j + 1 < s.Length && char.IsLowSurrogate(s[j + 1]))
            {
                j++;
            }
            else if (char.IsSurrogate(s[j]))
            {
                return path is null ? null : throw new FormatException($"{path}: string contains a lone surrogate U+{(int)s[j]:X4}; RFC 8785 requires well-formed Unicode.");
            }
        }

        return s;
    }
}
