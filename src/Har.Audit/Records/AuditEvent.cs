using System.Text.Json;

namespace Har.Audit;

/// <summary>How serious an audit event is.</summary>
public enum AuditSeverity
{
    /// <summary>Diagnostic detail (<c>debug</c>).</summary>
    Debug,

    /// <summary>Routine operation (<c>info</c>).</summary>
    Info,

    /// <summary>Normal but significant (<c>notice</c>).</summary>
    Notice,

    /// <summary>Something may need attention (<c>warning</c>).</summary>
    Warning,

    /// <summary>An operation failed (<c>error</c>).</summary>
    Error,

    /// <summary>Service or compliance is at risk (<c>critical</c>).</summary>
    Critical,
}

/// <summary>
/// A generic audit event (schema <c>audit-event.schema.json</c>): who (<see cref="Actor"/>) did what
/// (<see cref="EventType"/>, <see cref="ActionDetails"/>) to which entity, when, and how serious it was.
/// </summary>
public sealed class AuditEvent : AuditRecord
{
    internal static readonly string[] Fields = ["action_details", "actor", "entity_id", "entity_type", "event_type", "severity", "timestamp"];
    private static readonly string[] SeverityNames = ["debug", "info", "notice", "warning", "error", "critical"];

    /// <inheritdoc/>
    public override AuditRecordKind Kind => AuditRecordKind.Event;

    /// <summary>Gets what happened, e.g. <c>model.promoted</c> (<c>event_type</c>).</summary>
    public required string EventType { get; init; }

    /// <summary>Gets the kind of entity acted on, e.g. <c>model</c> (<c>entity_type</c>).</summary>
    public required string EntityType { get; init; }

    /// <summary>Gets the entity's identifier (<c>entity_id</c>).</summary>
    public required string EntityId { get; init; }

    /// <summary>Gets how serious the event is (<c>severity</c>).</summary>
    public required AuditSeverity Severity { get; init; }

    /// <summary>Gets the details of the action: any JSON object (<c>action_details</c>).</summary>
    public required JsonElement ActionDetails { get; init; }

    /// <summary>Gets who performed the action: a user, service or pipeline (<c>actor</c>).</summary>
    public required string Actor { get; init; }

    internal override string IndexEventType => EventType;

    internal override string IndexEntityType => EntityType;

    internal override string IndexEntityId => EntityId;

    internal override string IndexActor => Actor;

    internal static new AuditEvent Parse(ReadOnlySpan<byte> utf8Json) => (AuditEvent)Parse(AuditRecordKind.Event, utf8Json);

    internal static string SeverityName(AuditSeverity s) => (uint)s < (uint)SeverityNames.Length
        ? SeverityNames[(int)s]
        : throw new AuditRecordException("$.severity", $"expected one of: {string.Join(", ", SeverityNames)}; got {(int)s}");

    internal static AuditEvent Read(JsonElement root)
    {
        var f = new JsonFields(root, "$", Fields);
        var severity = f.String("severity");
        var index = Array.IndexOf(SeverityNames, severity);
        if (index < 0)
        {
            throw new AuditRecordException("$.severity", $"expected one of: {string.Join(", ", SeverityNames)}; got '{severity}'");
        }

        return new AuditEvent
        {
            ActionDetails = f.Object("action_details"),
            Actor = f.String("actor"),
            EntityId = f.String("entity_id"),
            EntityType = f.String("entity_type"),
            EventType = f.String("event_type"),
            Severity = (AuditSeverity)index,
            Timestamp = f.Timestamp("timestamp"),
        };
    }

    internal override void Validate()
    {
        RecordChecks.Object("$.action_details", ActionDetails);
        RecordChecks.Text("$.actor", Actor);
        RecordChecks.Text("$.entity_id", EntityId);
        RecordChecks.Text("$.entity_type", EntityType);
        RecordChecks.Text("$.event_type", EventType);
        _ = SeverityName(Severity);
    }

    internal override void WriteCanonical(CanonicalJsonWriter w)
    {
        w.StartObject();
        WriteObject(w, "action_details", ActionDetails);
        WriteText(w, "actor", Actor);
        WriteText(w, "entity_id", EntityId);
        WriteText(w, "entity_type", EntityType);
        WriteText(w, "event_type", EventType);
        WriteText(w, "severity", SeverityName(Severity));
        w.Name("timestamp");
        w.Timestamp(Timestamp);
        w.EndObject();
    }
}
