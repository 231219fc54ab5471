using System.Text.Json;

namespace Har.Audit;

/// <summary>
/// A rollback (schema <c>rollback-record.schema.json</c>): which model went from which version to
/// which, what triggered it, the evidence, who performed it, and the incident it belongs to.
/// </summary>
public sealed class RollbackRecord : AuditRecord
{
    internal static readonly string[] Fields = ["evidence", "from_version", "incident", "model", "operator", "rollback_id", "timestamp", "to_version", "trigger"];
    internal static readonly string[] IncidentFields = ["id", "url"];

    /// <inheritdoc/>
    public override AuditRecordKind Kind => AuditRecordKind.Rollback;

    /// <summary>Gets the rollback's identifier (<c>rollback_id</c>).</summary>
    public required string RollbackId { get; init; }

    /// <summary>Gets the model's name (<c>model</c>).</summary>
    public required string Model { get; init; }

    /// <summary>Gets the version rolled back from (<c>from_version</c>).</summary>
    public required string FromVersion { get; init; }

    /// <summary>Gets the version rolled back to (<c>to_version</c>).</summary>
    public required string ToVersion { get; init; }

    /// <summary>Gets what triggered it, e.g. <c>error_rate &gt; 5%</c> or <c>manual</c> (<c>trigger</c>).</summary>
    public required string Trigger { get; init; }

    /// <summary>Gets the evidence behind the decision: any JSON object (<c>evidence</c>).</summary>
    public required JsonElement Evidence { get; init; }

    /// <summary>Gets who performed the rollback: a user or the rollout controller (<c>operator</c>).</summary>
    public required string Operator { get; init; }

    /// <summary>Gets the incident this rollback belongs to, if one was opened (<c>incident</c>, optional).</summary>
    public IncidentReference? Incident { get; init; }

    internal override string IndexEventType => "rollback";

    internal override string IndexEntityType => "model";

    internal override string IndexEntityId => Model;

    internal override string IndexActor => Operator;

    /// <summary>Parses a rollback record strictly.</summary>
    /// <param name="utf8Json">The JSON (UTF-8).</param>
    /// <returns>The record.</returns>
    /// <exception cref="AuditRecordException">The JSON does not match the schema.</exception>
    public static new RollbackRecord Parse(ReadOnlySpan<byte> utf8Json) => (RollbackRecord)Parse(AuditRecordKind.Rollback, utf8Json);

    internal static RollbackRecord Read(JsonElement root)
    {
        var f = new JsonFields(root, "$", Fields);
        return new RollbackRecord
        {
            Evidence = f.Object("evidence"),
            FromVersion = f.String("from_version"),
            Incident = f.OptionalNested("incident", IncidentFields, static i => new IncidentReference { Id = i.String("id"), Url = i.OptionalString("url") }),
            Model = f.String("model"),
            Operator = f.String("operator"),
            RollbackId = f.String("rollback_id"),
            Timestamp = f.Timestamp("timestamp"),
            ToVersion = f.String("to_version"),
            Trigger = f.String("trigger"),
        };
    }

    internal override void Validate()
    {
        RecordChecks.Object("$.evidence", Evidence);
        RecordChecks.Text("$.from_version", FromVersion);
        if (Incident is not null)
        {
            RecordChecks.Text("$.incident.id", Incident.Id);
            if (Incident.Url is not null)
            {
                RecordChecks.Text("$.incident.url", Incident.Url);
            }
        }

        RecordChecks.Text("$.model", Model);
        RecordChecks.Text("$.operator", Operator);
        RecordChecks.Text("$.rollback_id", RollbackId);
        RecordChecks.Text("$.to_version", ToVersion);
        RecordChecks.Text("$.trigger", Trigger);
    }

    internal override void WriteCanonical(CanonicalJsonWriter w)
    {
        w.StartObject();
        WriteObject(w, "evidence", Evidence);
        WriteText(w, "from_version", FromVersion);
        if (Incident is not null)
        {
            w.Name("incident");
            w.StartObject();
            WriteText(w, "id", Incident.Id);
            if (Incident.Url is not null)
            {
                WriteText(w, "url", Incident.Url);
            }

            w.EndObject();
        }

        WriteText(w, "model", Model);
        WriteText(w, "operator", Operator);
        WriteText(w, "rollback_id", RollbackId);
        w.Name("timestamp");
        w.Timestamp(Timestamp);
        WriteText(w, "to_version", ToVersion);
        WriteText(w, "trigger", Trigger);
        w.EndObject();
    }
}

/// <summary>A reference to an incident report (<c>incident</c> of a rollback record).</summary>
public sealed class IncidentReference
{
    /// <summary>Gets the incident's identifier in the incident tracker (<c>id</c>).</summary>
    public required string Id { get; init; }

    /// <summary>Gets a link to the incident report, if any (<c>url</c>, optional).</summary>
    public string? Url { get; init; }
}
