using System.Text.Json;

namespace Har.Audit;

/// <summary>
/// A rollback (schema <c>rollback-record.schema.json</c>): which model went from which version to
/// which, what triggered it, the evidence, who performed it, and the incident it belongs to.
/// </summary>
/// <param name="rollbackId">The rollback's identifier (<c>rollback_id</c>).</param>
/// <param name="model">The model's name (<c>model</c>).</param>
/// <param name="fromVersion">The version rolled back from (<c>from_version</c>).</param>
/// <param name="toVersion">The version rolled back to (<c>to_version</c>).</param>
/// <param name="trigger">What triggered it, e.g. <c>error_rate &gt; 5%</c> or <c>manual</c> (<c>trigger</c>).</param>
/// <param name="evidence">The evidence behind the decision: any JSON object (<c>evidence</c>).</param>
/// <param name="operator">Who performed the rollback: a user or the rollout controller (<c>operator</c>).</param>
/// <param name="incident">The incident this rollback belongs to, if one was opened (<c>incident</c>, optional).</param>
public sealed class RollbackRecord(string rollbackId, string model, string fromVersion, string toVersion, string trigger, JsonElement evidence, string @operator, IncidentReference? incident = null) : AuditRecord
{
    internal static readonly string[] Fields = ["evidence", "from_version", "incident", "model", "operator", "rollback_id", "timestamp", "to_version", "trigger"];
    internal static readonly string[] IncidentFields = ["id", "url"];

    /// <inheritdoc/>
    public override AuditRecordKind Kind => AuditRecordKind.Rollback;

    /// <summary>Gets the rollback's identifier (<c>rollback_id</c>).</summary>
    public string RollbackId { get; } = rollbackId;

    /// <summary>Gets the model's name (<c>model</c>).</summary>
    public string Model { get; } = model;

    /// <summary>Gets the version rolled back from (<c>from_version</c>).</summary>
    public string FromVersion { get; } = fromVersion;

    /// <summary>Gets the version rolled back to (<c>to_version</c>).</summary>
    public string ToVersion { get; } = toVersion;

    /// <summary>Gets what triggered it, e.g. <c>error_rate &gt; 5%</c> or <c>manual</c> (<c>trigger</c>).</summary>
    public string Trigger { get; } = trigger;

    /// <summary>Gets the evidence behind the decision: any JSON object (<c>evidence</c>).</summary>
    public JsonElement Evidence { get; } = evidence;

    /// <summary>Gets who performed the rollback: a user or the rollout controller (<c>operator</c>).</summary>
    public string Operator { get; } = @operator;

    /// <summary>Gets the incident this rollback belongs to, if one was opened (<c>incident</c>, optional).</summary>
    public IncidentReference? Incident { get; } = incident;

    internal override string IndexEventType => "rollback";

    internal override string IndexEntityType => "model";

    internal override string IndexEntityId => Model;

    internal override string IndexActor => Operator;

    internal static new RollbackRecord Parse(ReadOnlySpan<byte> utf8Json) => (RollbackRecord)Parse(AuditRecordKind.Rollback, utf8Json);

    internal static RollbackRecord Read(JsonElement root)
    {
        var f = new JsonFields(root, "$", Fields);
        var evidence = f.Object("evidence");
        var fromVersion = f.String("from_version");
        var incident = f.OptionalNested("incident", IncidentFields, static i => new IncidentReference(i.String("id"), i.OptionalString("url")));
        var model = f.String("model");
        var @operator = f.String("operator");
        var rollbackId = f.String("rollback_id");
        var timestamp = f.Timestamp("timestamp");
        var toVersion = f.String("to_version");
        var trigger = f.String("trigger");
        return new RollbackRecord(rollbackId, model, fromVersion, toVersion, trigger, evidence, @operator, incident) { Timestamp = timestamp };
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
/// <param name="id">The incident's identifier in the incident tracker (<c>id</c>).</param>
/// <param name="url">A link to the incident report, if any (<c>url</c>, optional).</param>
public sealed class IncidentReference(string id, string? url = null)
{
    /// <summary>Gets the incident's identifier in the incident tracker (<c>id</c>).</summary>
    public string Id { get; } = id;

    /// <summary>Gets a link to the incident report, if any (<c>url</c>, optional).</summary>
    public string? Url { get; } = url;
}
