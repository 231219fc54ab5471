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
        if (s.Length != 64 || !s.All(static c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')))
        {
            throw new AuditRecordException(Path + "." + name, $"expected 64 lowercase hex digits (a SHA-256), got '{s}'");
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
            throw new AuditRecordException(Path + "." + name, $"expected an integer in [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}], got {v.ToString(CultureInfo.InvariantCulture)}");
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
            throw new AuditRecordException(Path + "." + name, string.Create(CultureInfo.InvariantCulture, $"expected a number in [{min}, {max}], got {d}"));
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
        value = default;
        var zoned = s.EndsWith('Z') || (s.Length > 6 && (s[^6] is '+' or '-') && s[^3] == ':');
        return zoned && DateTimeOffset.TryParseExact(s, Formats, CultureInfo.InvariantCulture, DateTimeStyles.None, out value);
    }

    /// <summary>UTC, seconds always, fractional digits only as many as needed.</summary>
    public static string FormatTimestamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);

    public static void RequireText(string? value, string name)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new AuditRecordException("$." + name, "expected a non-empty string");
        }
    }
}
