using System.Globalization;
using System.Text.Json;

namespace Har.Audit;

/// <summary>
/// The value rules of the record schemas, applied to records built in code before they are written.
/// Messages are the ones the strict parser (<see cref="JsonFields"/>) gives for the same JSON, so a
/// record is rejected the same way whether it arrives as JSON or as an object.
/// </summary>
internal static class RecordChecks
{
    public static void Text(string path, string? value)
    {
        if (value is null)
        {
            throw new AuditRecordException(path, "expected a non-empty string, got null");
        }

        if (value.Length == 0)
        {
            throw new AuditRecordException(path, "expected a non-empty string, got an empty one");
        }
    }

    public static void Sha256(string path, string? value)
    {
        Text(path, value);
        if (!IsSha256(value!))
        {
            throw new AuditRecordException(path, ShaMessage(value!));
        }
    }

    public static bool IsSha256(string s) => s.Length == 64 && s.All(static c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));

    public static string ShaMessage(string value) => $"expected 64 lowercase hex digits (a SHA-256), got '{value}'";

    public static void Integer(string path, long value, long min, long max)
    {
        if (value < min || value > max)
        {
            throw new AuditRecordException(path, IntegerRangeMessage(value, min, max));
        }
    }

    public static string IntegerRangeMessage(long value, long min, long max) =>
        $"expected an integer in [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}], got {value.ToString(CultureInfo.InvariantCulture)}";

    public static void Number(string path, double value, double min, double max)
    {
        if (!double.IsFinite(value))
        {
            throw new AuditRecordException(path, string.Create(CultureInfo.InvariantCulture, $"expected a finite number, got {value}"));
        }

        if (value < min || value > max)
        {
            throw new AuditRecordException(path, NumberRangeMessage(value, min, max));
        }
    }

    public static string NumberRangeMessage(double value, double min, double max) =>
        string.Create(CultureInfo.InvariantCulture, $"expected a number in [{min}, {max}], got {value}");

    public static void Object(string path, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new AuditRecordException(path, $"expected an object, got {(value.ValueKind == JsonValueKind.Undefined ? "null" : JsonFields.Describe(value))}");
        }
    }

    public static T Nested<T>(string path, T? value)
        where T : class => value ?? throw new AuditRecordException(path, "expected an object, got null");
}
