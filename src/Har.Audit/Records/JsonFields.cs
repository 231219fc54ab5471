using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Har.Audit;

/// <summary>Strict typed reading of one JSON object: rejects unknown, duplicate and missing members with their path.</summary>
internal sealed class JsonFields
{
    private readonly Dictionary<string, JsonElement> _members = new(StringComparer.Ordinal);

    public JsonFields(JsonElement element, string path, string[] known)
    {
        Path = path;
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new AuditRecordException(path, $"expected an object, got {Describe(element)}");
        }

        foreach (var p in element.EnumerateObject())
        {
            var name = CanonicalJson.DecodeString(JsonMarshal.GetRawUtf8PropertyName(p), path);
            if (Array.IndexOf(known, name) < 0)
            {
                throw new AuditRecordException(path + "." + name, $"unknown field; expected only: {string.Join(", ", known)}");
            }

            if (!_members.TryAdd(name, p.Value))
            {
                throw new AuditRecordException(path + "." + name, "duplicate field");
            }
        }
    }

    public string Path { get; }

    public static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString(),
    };

    public JsonElement Required(string name)
    {
        if (!_members.TryGetValue(name, out var value))
        {
            throw new AuditRecordException(Path + "." + name, "required field is missing");
        }

        return value;
    }

    public bool Has(string name) => _members.TryGetValue(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public string String(string name)
    {
        var e = Required(name);
        if (e.ValueKind != JsonValueKind.String)
        {
            throw new AuditRecordException(Path + "." + name, $"expected a non-empty string, got {Describe(e)}");
        }

        var s = CanonicalJson.DecodeString(JsonMarshal.GetRawUtf8Value(e)[1..^1], Path + "." + name);
        if (s.Length == 0)
        {
            throw new AuditRecordException(Path + "." + name, "expected a non-empty string, got an empty one");
        }

        return s;
    }

    public string? OptionalString(string name) => Has(name) ? String(name) : null;

    public string Sha256(string name)
    {
        var s = String(name);
        if (!RecordChecks.IsSha256(s))
        {
            throw new AuditRecordException(Path + "." + name, RecordChecks.ShaMessage(s));
        }

        return s;
    }

    public long Integer(string name, long min, long max)
    {
        var e = Required(name);
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out var d) || d != Math.Floor(d) || Math.Abs(d) > 9007199254740992d)
        {
            throw new AuditRecordException(Path + "." + name, $"expected an integer, got {(e.ValueKind == JsonValueKind.Number ? e.GetRawText() : Describe(e))}");
        }

        var v = (long)d;
        if (v < min || v > max)
        {
            throw new AuditRecordException(Path + "." + name, RecordChecks.IntegerRangeMessage(v, min, max));
        }

        return v;
    }

    public double Number(string name, double min, double max)
    {
        var e = Required(name);
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out var d) || !double.IsFinite(d))
        {
            throw new AuditRecordException(Path + "." + name, $"expected a finite number, got {Describe(e)}");
        }

        if (d < min || d > max)
        {
            throw new AuditRecordException(Path + "." + name, RecordChecks.NumberRangeMessage(d, min, max));
        }

        return d;
    }

    public bool Bool(string name)
    {
        var e = Required(name);
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new AuditRecordException(Path + "." + name, $"expected a boolean, got {Describe(e)}"),
        };
    }

    public JsonElement Object(string name)
    {
        var e = Required(name);
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new AuditRecordException(Path + "." + name, $"expected an object, got {Describe(e)}");
        }

        return e.Clone();
    }

    public DateTimeOffset Timestamp(string name)
    {
        var s = String(name);
        if (!RecordText.TryParseTimestamp(s, out var t))
        {
            throw new AuditRecordException(Path + "." + name, $"expected an RFC 3339 date-time with a zone (e.g. 2026-01-15T10:30:00Z), got '{s}'");
        }

        return t;
    }

    public T Nested<T>(string name, string[] known, Func<JsonFields, T> read) => read(new JsonFields(Required(name), Path + "." + name, known));

    public T? OptionalNested<T>(string name, string[] known, Func<JsonFields, T> read)
        where T : class => Has(name) ? read(new JsonFields(Required(name), Path + "." + name, known)) : null;
}

/// <summary>Text conventions shared by the records.</summary>
internal static class RecordText
{
    private static readonly string[] Formats = ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK"];

    public static bool TryParseTimestamp(string s, out DateTimeOffset value)
    {
        if (TryParseUtcFast(s, out value))
        {
            return true;
        }

        value = default;
        var zoned = s.EndsWith('Z') || (s.Length > 6 && (s[^6] is '+' or '-') && s[^3] == ':');
        var dot = s.IndexOf('.', StringComparison.Ordinal);
        var fractionOk = dot < 0 || (dot + 1 < s.Length && char.IsAsciiDigit(s[dot + 1]));
        return zoned && fractionOk && DateTimeOffset.TryParseExact(s, Formats, CultureInfo.InvariantCulture, DateTimeStyles.None, out value);
    }

    /// <summary>The longest timestamp <see cref="FormatTimestamp(DateTimeOffset, Span{char})"/> writes.</summary>
    public const int MaxTimestampLength = 28;

    /// <summary>UTC, seconds always, fractional digits only as many as needed (e.g. <c>2026-01-16T07:00:00.25Z</c>).</summary>
    public static string FormatTimestamp(DateTimeOffset t)
    {
        Span<char> span = stackalloc char[MaxTimestampLength];
        return new string(span[..FormatTimestamp(t, span)]);
    }

    /// <summary>As <see cref="FormatTimestamp(DateTimeOffset)"/>, into <paramref name="span"/> (at least <see cref="MaxTimestampLength"/> chars); returns the length.</summary>
    public static int FormatTimestamp(DateTimeOffset t, Span<char> span)
    {
        var d = t.UtcDateTime;
        var f = (int)(d.Ticks % TimeSpan.TicksPerSecond);
        var n = 7;
        while (n > 0 && f % 10 == 0)
        {
            f /= 10;
            n--;
        }

        Write(span, 0, d.Year, 4);
        span[4] = '-';
        Write(span, 5, d.Month, 2);
        span[7] = '-';
        Write(span, 8, d.Day, 2);
        span[10] = 'T';
        Write(span, 11, d.Hour, 2);
        span[13] = ':';
        Write(span, 14, d.Minute, 2);
        span[16] = ':';
        Write(span, 17, d.Second, 2);
        var pos = 19;
        if (n > 0)
        {
            span[pos++] = '.';
            Write(span, pos, f, n);
            pos += n;
        }

        span[pos++] = 'Z';
        return pos;
    }

    private static void Write(Span<char> span, int at, int value, int width)
    {
        for (var i = width - 1; i >= 0; i--)
        {
            span[at + i] = (char)('0' + (value % 10));
            value /= 10;
        }
    }

    /// <summary>The canonical shape <c>yyyy-MM-ddTHH:mm:ss[.f{1,7}]Z</c> without the general parser.</summary>
    private static bool TryParseUtcFast(string s, out DateTimeOffset value)
    {
        value = default;
        if (s.Length < 20 || s.Length > 28 || s[^1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        {
            return false;
        }

        if (!Digits(s, 0, 4, out var year) || !Digits(s, 5, 2, out var month) || !Digits(s, 8, 2, out var day)
            || !Digits(s, 11, 2, out var hour) || !Digits(s, 14, 2, out var minute) || !Digits(s, 17, 2, out var second))
        {
            return false;
        }

        long ticks = 0;
        if (s.Length > 20)
        {
            var n = s.Length - 21;
            if (s[19] != '.' || n < 1 || n > 7 || !Digits(s, 20, n, out var fraction))
            {
                return false;
            }

            ticks = fraction;
            for (var i = n; i < 7; i++)
            {
                ticks *= 10;
            }
        }
        else if (s[19] != 'Z')
        {
            return false;
        }

        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        value = new DateTimeOffset(new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).AddTicks(ticks));
        return true;
    }

    private static bool Digits(string s, int at, int count, out int value)
    {
        value = 0;
        for (var i = at; i < at + count; i++)
        {
            var c = s[i];
            if (c is < '0' or > '9')
            {
                return false;
            }

            value = (value * 10) + (c - '0');
        }

        return true;
    }

    public static void RequireText(string? value, string name)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new AuditRecordException("$." + name, "expected a non-empty string");
        }
    }
}
