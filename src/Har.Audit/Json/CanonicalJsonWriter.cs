using System.Buffers;
using System.Globalization;
using System.Text;

namespace Har.Audit;

/// <summary>
/// Writes RFC 8785 canonical JSON: no whitespace, strings with the minimal escapes, numbers in the
/// ECMAScript <c>Number.prototype.toString</c> layout. Callers emit object members in ordinal (UTF-16
/// code unit) order of their names; <see cref="CanonicalJson"/> sorts arbitrary input.
/// </summary>
internal sealed class CanonicalJsonWriter
{
    private static readonly byte[] HexDigits = "0123456789abcdef"u8.ToArray();
    private readonly IBufferWriter<byte> _out;
    private ulong _needComma; // one bit per nesting depth
    private int _depth;

    public CanonicalJsonWriter(IBufferWriter<byte> output) => _out = output;

    public void StartObject() => Open((byte)'{');

    public void EndObject() => Close((byte)'}');

    public void StartArray() => Open((byte)'[');

    public void EndArray() => Close((byte)']');

    /// <summary>Writes a member name (and the separator before it).</summary>
    public void Name(string name)
    {
        Separator();
        WriteStringLiteral(name);
        WriteByte((byte)':');
        _needComma &= ~(1UL << _depth); // the value that follows takes no comma
    }

    /// <summary>Writes a member name given as UTF-8 that needs no escaping (ASCII without quotes, backslashes or control characters).</summary>
    public void PlainName(ReadOnlySpan<byte> name)
    {
        Separator();
        var span = _out.GetSpan(name.Length + 3);
        span[0] = (byte)'"';
        name.CopyTo(span[1..]);
        span[name.Length + 1] = (byte)'"';
        span[name.Length + 2] = (byte)':';
        _out.Advance(name.Length + 3);
        _needComma &= ~(1UL << _depth);
    }

    public void String(string value)
    {
        Separator();
        WriteStringLiteral(value);
    }

    /// <summary>Writes a timestamp as an RFC 3339 UTC string (<see cref="RecordText.FormatTimestamp(DateTimeOffset)"/>) without an intermediate string.</summary>
    public void Timestamp(DateTimeOffset value)
    {
        Separator();
        Span<char> chars = stackalloc char[RecordText.MaxTimestampLength];
        var n = RecordText.FormatTimestamp(value, chars);
        var span = _out.GetSpan(n + 2);
        span[0] = (byte)'"';
        for (var i = 0; i < n; i++)
        {
            span[i + 1] = (byte)chars[i];
        }

        span[n + 1] = (byte)'"';
        _out.Advance(n + 2);
    }

    public void Bool(bool value)
    {
        Separator();
        Raw(value ? "true"u8 : "false"u8);
    }

    public void Null()
    {
        Separator();
        Raw("null"u8);
    }

    public void Number(long value)
    {
        if (value is > (1L << 53) or < -(1L << 53))
        {
            throw new FormatException($"Integer {value.ToString(CultureInfo.InvariantCulture)} is outside the I-JSON exact range ±2^53; RFC 8785 cannot represent it exactly.");
        }

        Separator();
        var span = _out.GetSpan(24);
        value.TryFormat(span, out var written, default, CultureInfo.InvariantCulture);
        _out.Advance(written);
    }

    public void Number(double value)
    {
        Separator();
        Span<char> chars = stackalloc char[32];
        var n = CanonicalJson.FormatNumber(value, chars);
        var span = _out.GetSpan(n);
        for (var i = 0; i < n; i++)
        {
            span[i] = (byte)chars[i];
        }

        _out.Advance(n);
    }

    /// <summary>Writes an already-canonical JSON value verbatim (e.g. a stored sub-document).</summary>
    public void RawValue(ReadOnlySpan<byte> canonicalJson)
    {
        Separator();
        Raw(canonicalJson);
    }

    private void Open(byte b)
    {
        Separator();
        WriteByte(b);
        _depth++;
        if (_depth >= 64)
        {
            throw new FormatException("JSON nesting deeper than 63 levels is not accepted.");
        }

        _needComma &= ~(1UL << _depth);
    }

    private void Close(byte b)
    {
        _depth--;
        WriteByte(b);
        _needComma |= 1UL << _depth;
    }

    private void Separator()
    {
        var bit = 1UL << _depth;
        if ((_needComma & bit) != 0)
        {
            WriteByte((byte)',');
        }

        _needComma |= bit;
    }

    private void WriteByte(byte b)
    {
        _out.GetSpan(1)[0] = b;
        _out.Advance(1);
    }

    private void Raw(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_out.GetSpan(bytes.Length));
        _out.Advance(bytes.Length);
    }

    private void WriteStringLiteral(string s)
    {
        // Printable ASCII without quotes or backslashes (most names and values) is copied as is.
        var chars = s.AsSpan();
        if (chars.IndexOfAnyExceptInRange((char)0x20, (char)0x7E) < 0 && chars.IndexOfAny('"', '\\') < 0)
        {
            var plain = _out.GetSpan(chars.Length + 2);
            plain[0] = (byte)'"';
            Ascii.FromUtf16(chars, plain[1..], out _);
            plain[chars.Length + 1] = (byte)'"';
            _out.Advance(chars.Length + 2);
            return;
        }

        // Worst case: every char becomes \u00XX (6 bytes) or 3 UTF-8 bytes; quotes add 2.
        var span = _out.GetSpan((s.Length * 6) + 2);
        var pos = 0;
        span[pos++] = (byte)'"';
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c < 0x80)
            {
                switch (c)
                {
                    case '"': span[pos++] = (byte)'\\'; span[pos++] = (byte)'"'; break;
                    case '\\': span[pos++] = (byte)'\\'; span[pos++] = (byte)'\\'; break;
                    case '\b': span[pos++] = (byte)'\\'; span[pos++] = (byte)'b'; break;
                    case '\f': span[pos++] = (byte)'\\'; span[pos++] = (byte)'f'; break;
                    case '\n': span[pos++] = (byte)'\\'; span[pos++] = (byte)'n'; break;
                    case '\r': span[pos++] = (byte)'\\'; span[pos++] = (byte)'r'; break;
                    case '\t': span[pos++] = (byte)'\\'; span[pos++] = (byte)'t'; break;
                    default:
                        if (c < 0x20)
                        {
                            span[pos++] = (byte)'\\';
                            span[pos++] = (byte)'u';
                            span[pos++] = (byte)'0';
                            span[pos++] = (byte)'0';
                            span[pos++] = HexDigits[c >> 4];
                            span[pos++] = HexDigits[c & 0xF];
                        }
                        else
                        {
                            span[pos++] = (byte)c;
                        }

                        break;
                }

                continue;
            }

            Rune rune;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                rune = new Rune(c, s[i + 1]);
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                throw new FormatException($"String contains a lone surrogate U+{(int)c:X4} at position {i}; RFC 8785 requires well-formed Unicode.");
            }
            else
            {
                rune = new Rune(c);
            }

            pos += rune.EncodeToUtf8(span[pos..]);
        }

        span[pos++] = (byte)'"';
        _out.Advance(pos);
    }
}
