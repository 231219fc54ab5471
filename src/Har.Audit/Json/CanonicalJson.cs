using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Har.Audit;

/// <summary>
/// RFC 8785 JSON Canonicalization Scheme (JCS): members sorted by the UTF-16 code units of their
/// names, no insignificant whitespace, minimal string escapes, numbers as ECMAScript prints them.
/// Input must be I-JSON: no duplicate member names, no lone surrogates, every number a finite IEEE-754 double.
/// </summary>
public static class CanonicalJson
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

    /// <summary>Writes a value; the JSON path (for error messages) is only built when something is wrong or a container is entered.</summary>
    private static void Write(CanonicalJsonWriter w, JsonElement element, string parent, string? member, int arrayIndex)
    {
        string Path() => member is not null ? parent + "." + member : arrayIndex >= 0 ? parent + "[" + arrayIndex.ToString(CultureInfo.InvariantCulture) + "]" : parent;

        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var path = Path();
                var count = 0;
                foreach (var _ in element.EnumerateObject())
                {
                    count++;
                }

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
                break;
            case JsonValueKind.Array:
                var arrayPath = Path();
                w.StartArray();
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    Write(w, item, arrayPath, null, index++);
                }

                w.EndArray();
                break;
            case JsonValueKind.String:
                var raw = JsonMarshal.GetRawUtf8Value(element);
                w.String(TryDecodeString(raw[1..^1]) ?? throw new FormatException($"{Path()}: string contains a lone surrogate; RFC 8785 requires well-formed Unicode."));
                break;
            case JsonValueKind.Number:
                var text = JsonMarshal.GetRawUtf8Value(element);
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !double.IsFinite(d))
                {
                    throw new FormatException($"{Path()}: number {Encoding.UTF8.GetString(text)} is not a finite IEEE-754 double (RFC 8785 §3.2.2.3).");
                }

                w.Number(d);
                break;
            case JsonValueKind.True:
                w.Bool(true);
                break;
            case JsonValueKind.False:
                w.Bool(false);
                break;
            case JsonValueKind.Null:
                w.Null();
                break;
            default:
                throw new FormatException($"{Path()}: unexpected JSON value kind {element.ValueKind}.");
        }
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
