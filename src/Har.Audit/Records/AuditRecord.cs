using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Har.Audit;

/// <summary>The three record types of the audit log.</summary>
public enum AuditRecordKind
{
    /// <summary>A generic audit event (<see cref="AuditEvent"/>); stored with kind <c>event</c>.</summary>
    Event,

    /// <summary>A model deployment (<see cref="DeploymentRecord"/>); stored with kind <c>deployment</c>.</summary>
    Deployment,

    /// <summary>A rollback (<see cref="RollbackRecord"/>); stored with kind <c>rollback</c>.</summary>
    Rollback,
}

/// <summary>
/// A typed audit record with a published JSON schema (<see cref="AuditSchemas"/>). Records serialise to
/// RFC 8785 canonical JSON; parsing is strict: unknown, duplicate or missing required members are
/// rejected with an <see cref="AuditRecordException"/> naming the member's JSON path.
/// </summary>
public abstract class AuditRecord
{
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 63 };

    private protected AuditRecord()
    {
    }

    /// <summary>Gets which of the three record types this is.</summary>
    public abstract AuditRecordKind Kind { get; }

    /// <summary>Gets when the recorded action happened (serialised as RFC 3339 UTC).</summary>
    public required DateTimeOffset Timestamp { get; init; }

    /// <summary>The event type the log indexes this record under (<c>deployment</c>, <c>rollback</c>, or the event's own type).</summary>
    internal abstract string IndexEventType { get; }

    /// <summary>The entity type the log indexes this record under.</summary>
    internal abstract string IndexEntityType { get; }

    /// <summary>The entity id the log indexes this record under.</summary>
    internal abstract string IndexEntityId { get; }

    /// <summary>The actor the log indexes this record under.</summary>
    internal abstract string IndexActor { get; }

    /// <summary>Parses a record, telling its type from its identifying member (<c>deployment_id</c>, <c>rollback_id</c> or <c>event_type</c>).</summary>
    /// <param name="utf8Json">The record's JSON (UTF-8).</param>
    /// <returns>The typed record.</returns>
    /// <exception cref="AuditRecordException">The JSON does not match the record's schema.</exception>
    public static AuditRecord Parse(ReadOnlySpan<byte> utf8Json)
    {
        using var doc = ParseDocument(utf8Json.ToArray());
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new AuditRecordException("$", $"expected an object, got {JsonFields.Describe(root)}");
        }

        if (root.TryGetProperty("deployment_id", out _))
        {
            return DeploymentRecord.Read(root);
        }

        if (root.TryGetProperty("rollback_id", out _))
        {
            return RollbackRecord.Read(root);
        }

        if (root.TryGetProperty("event_type", out _))
        {
            return AuditEvent.Read(root);
        }

        throw new AuditRecordException("$", "cannot tell the record type: expected a deployment record (deployment_id), a rollback record (rollback_id) or an audit event (event_type)");
    }

    /// <summary>Parses a record of a known type.</summary>
    /// <param name="kind">The expected record type.</param>
    /// <param name="utf8Json">The record's JSON (UTF-8).</param>
    /// <returns>The typed record.</returns>
    /// <exception cref="AuditRecordException">The JSON does not match the schema of <paramref name="kind"/>.</exception>
    public static AuditRecord Parse(AuditRecordKind kind, ReadOnlySpan<byte> utf8Json)
    {
        using var doc = ParseDocument(utf8Json.ToArray());
        return Read(kind, doc.RootElement);
    }

    /// <summary>Serialises the record as RFC 8785 canonical JSON (UTF-8), after checking it against its schema.</summary>
    /// <returns>The canonical bytes.</returns>
    /// <exception cref="AuditRecordException">A required member is missing or a value is out of range.</exception>
    public byte[] ToCanonicalJson()
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        WriteValidated(buffer);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The SHA-256 of <see cref="ToCanonicalJson"/>, as lowercase hex.</summary>
    /// <returns>64 lowercase hex digits.</returns>
    public string ComputeSha256() => Convert.ToHexStringLower(SHA256.HashData(ToCanonicalJson()));

    /// <summary>Returns the canonical JSON text of the record.</summary>
    /// <returns>The canonical JSON.</returns>
    public override string ToString() => System.Text.Encoding.UTF8.GetString(ToCanonicalJson());

    internal static string KindName(AuditRecordKind kind) => kind switch
    {
        AuditRecordKind.Event => "event",
        AuditRecordKind.Deployment => "deployment",
        AuditRecordKind.Rollback => "rollback",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Expected Event, Deployment or Rollback."),
    };

    internal static bool TryParseKind(string name, out AuditRecordKind kind)
    {
        switch (name)
        {
            case "event": kind = AuditRecordKind.Event; return true;
            case "deployment": kind = AuditRecordKind.Deployment; return true;
            case "rollback": kind = AuditRecordKind.Rollback; return true;
            default: kind = default; return false;
        }
    }

    internal static AuditRecord Read(AuditRecordKind kind, JsonElement root) => kind switch
    {
        AuditRecordKind.Event => AuditEvent.Read(root),
        AuditRecordKind.Deployment => DeploymentRecord.Read(root),
        AuditRecordKind.Rollback => RollbackRecord.Read(root),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Expected Event, Deployment or Rollback."),
    };

    /// <summary>Checks the record against its schema's value rules (same messages as parsing), then writes its canonical JSON.</summary>
    internal void WriteValidated(ArrayBufferWriter<byte> buffer)
    {
        Validate();
        try
        {
            WriteCanonical(new CanonicalJsonWriter(buffer));
        }
        catch (FormatException ex) when (ex is not AuditRecordException)
        {
            // Free-form objects (action_details, evidence) that are not I-JSON, or lone surrogates in text.
            throw new AuditRecordException($"$: the {KindName(Kind)} record cannot be written as canonical JSON: {ex.Message}", ex);
        }
    }

    /// <summary>Applies the schema's value rules to a record built in code.</summary>
    internal abstract void Validate();

    internal abstract void WriteCanonical(CanonicalJsonWriter w);

    private static JsonDocument ParseDocument(ReadOnlyMemory<byte> utf8Json)
    {
        try
        {
            return JsonDocument.Parse(utf8Json, DocumentOptions);
        }
        catch (JsonException ex)
        {
            throw new AuditRecordException($"$: not valid JSON ({ex.Message})", ex);
        }
    }

    private protected static void WriteText(CanonicalJsonWriter w, string name, string? value)
    {
        w.Name(name);
        if (value is null)
        {
            w.Null();
        }
        else
        {
            w.String(value);
        }
    }

    private protected static void WriteObject(CanonicalJsonWriter w, string name, JsonElement value)
    {
        w.Name(name);
        if (value.ValueKind == JsonValueKind.Undefined)
        {
            w.Null();
        }
        else
        {
            CanonicalJson.Write(w, value, "$", name);
        }
    }
}
