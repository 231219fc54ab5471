using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Har.Service.Endpoints;

/// <summary>
/// What <c>POST /v1/audit/events</c> accepts from an operator: an event type and an entity type that are short
/// lower-case names (<see cref="TypePattern"/>, at most <see cref="MaxTypeLength"/> characters), an entity id of at
/// most <see cref="MaxEntityIdLength"/> printable characters, a severity by name, and no <c>actor</c> or
/// <c>timestamp</c> (the service sets them from the key and its clock). The service's own history is audit events
/// too, and it reads them back as facts: <c>rollout.transition</c> and <c>rollout.rollback</c> are
/// <c>GET /v1/rollouts</c> and the delivery metrics, <c>deployment.completed</c> is a version's completed deployment
/// record, <c>rollout.incident</c> and <c>rollout.rollback.step</c> are incidents, <c>registry.*</c> anchors
/// registrations, <c>backup.*</c> backups, <c>http.*</c> the HTTP layer's own record. So the namespaces the packages,
/// the service and the CLI write are theirs: an event type whose first segment is one of
/// <see cref="ReservedNamespaces"/> is refused, and an operator's events live in a namespace of their own
/// (<c>ops.maintenance</c>, <c>change.ticket</c>).
/// </summary>
internal static partial class AuditEventRules
{
    /// <summary>Longest event type and entity type (characters).</summary>
    public const int MaxTypeLength = 64;

    /// <summary>Longest entity id (characters).</summary>
    public const int MaxEntityIdLength = 256;

    /// <summary>What an event type and an entity type look like.</summary>
    public const string TypePattern = "^[a-z][a-z0-9_.-]*$";

    /// <summary>The body, as problem details show it.</summary>
    public const string Expected = "{\"event_type\": \"ops.maintenance\", \"entity_type\": \"node\", \"entity_id\": \"…\", \"severity\": \"info\", \"action_details\": {…}}, each member once";

    /// <summary>
    /// The first segments (before the first '.') of the event types only the system writes, and the names under which
    /// queries find deployment and rollback records (<c>event_type=deployment</c>, <c>event_type=rollback</c>):
    /// <c>audit.log.repaired</c> (Har.Audit), <c>backup.created</c>/<c>restored</c>, <c>registry.*</c>,
    /// <c>rollout.*</c>, <c>deployment.completed</c> (Har.Deployment), <c>http.operation</c>/<c>refusals</c> (this
    /// service), <c>drift.report</c> (the CLI's demo); <c>model</c> is the registry's entity, whose history is
    /// <c>registry.*</c> and <c>deployment.*</c>, so <c>model.promoted</c> would read as one of its facts.
    /// </summary>
    public static readonly string[] ReservedNamespaces = ["audit", "backup", "deployment", "drift", "http", "model", "registry", "rollback", "rollout"];

    private static readonly string[] SeverityNames = ["debug", "info", "notice", "warning", "error", "critical"];

    /// <summary>What is wrong with an event's members (title and detail of a 400), or null when the record's own parser may judge the rest.</summary>
    public static (string Title, string Detail)? Problem(JsonObject body)
    {
        foreach (var member in (ReadOnlySpan<string>)["actor", "timestamp"])
        {
            if (body.ContainsKey(member))
            {
                return ("Invalid audit event", $"The body sets '{member}'; the service sets actor (the API key's name) and timestamp (its clock) itself, so a client cannot write history in another name or at another time: leave both out.");
            }
        }

        // Missing members and other kinds of values are the record parser's to name (AuditRecord.Parse).
        var eventType = Text(body, "event_type");
        if (eventType is not null && TypeName("event_type", eventType) is { } badType)
        {
            return ("Invalid audit event", badType);
        }

        if (Text(body, "entity_type") is { } entityType && TypeName("entity_type", entityType) is { } badEntityType)
        {
            return ("Invalid audit event", badEntityType);
        }

        if (Text(body, "entity_id") is { } entityId)
        {
            if (entityId.Length is 0 or > MaxEntityIdLength)
            {
                return ("Invalid audit event", $"entity_id has {entityId.Length} characters; expected 1 to {MaxEntityIdLength}.");
            }

            if (ClientText.Hidden(entityId) is { } hidden)
            {
                return ("Invalid audit event", $"entity_id holds {hidden}; expected printable text (no control or format characters, no line breaks).");
            }
        }

        if (Text(body, "severity") is { } severity && Array.IndexOf(SeverityNames, severity) < 0)
        {
            return ("Invalid audit event", $"severity is '{ClientText.Shown(severity, 32)}'; expected one of {string.Join(", ", SeverityNames)} (lower case).");
        }

        if (InexactNumber(body, "$") is { } inexact)
        {
            return ("Invalid audit event", inexact);
        }

        return eventType is not null && Reserved(eventType) is { } reserved ? ("Reserved event type", reserved) : null;
    }

    /// <summary>
    /// The first number of <paramref name="node"/> that a double cannot hold: audit records are canonical JSON (RFC 8785),
    /// whose numbers are IEEE 754 doubles, so <c>123456789012345678</c> was recorded, hashed and anchored as
    /// <c>123456789012345680</c> and <c>1E-400</c> as <c>0</c>, with a 201. A number is refused unless the double nearest to it
    /// has the same value (<c>1.10</c> is <c>1.1</c>; <c>-0</c> is <c>0</c>).
    /// </summary>
    internal static string? InexactNumber(JsonNode? node, string path)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (name, child) in o)
                {
                    if (InexactNumber(child, $"{path}.{name}") is { } problem)
                    {
                        return problem;
                    }
                }

                return null;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    if (InexactNumber(a[i], string.Create(CultureInfo.InvariantCulture, $"{path}[{i}]")) is { } problem)
                    {
                        return problem;
                    }
                }

                return null;
            case JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<JsonElement>(out var element):
                var literal = element.GetRawText();
                if (!double.TryParse(literal, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !double.IsFinite(d))
                {
                    return null; // not finite: the record's own parser names it
                }

                var nearest = d.ToString("R", CultureInfo.InvariantCulture);
                return ExactValue(literal) == ExactValue(nearest)
                    ? null
                    : $"{ClientText.Shown(path, 96)}: the number {ClientText.Shown(literal, 64)} cannot be recorded exactly: audit records are canonical JSON (RFC 8785), whose numbers are IEEE 754 doubles, and the nearest is {nearest}. Send it as a string (an id, an amount), or with at most 15 significant digits.";
            default:
                return null;
        }
    }

    /// <summary>A decimal literal's value as (negative, significant digits, power of ten); zero is (false, "", 0).</summary>
    private static (bool Negative, string Digits, long Exponent) ExactValue(string literal)
    {
        var negative = literal.StartsWith('-');
        var text = negative ? literal[1..] : literal;
        long exponent = 0;
        var e = text.IndexOfAny(['e', 'E']);
        if (e >= 0)
        {
            var power = text[(e + 1)..];
            exponent = long.TryParse(power, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p) ? Math.Clamp(p, -1_000_000, 1_000_000) : power.StartsWith('-') ? -1_000_000 : 1_000_000;
            text = text[..e];
        }

        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot >= 0)
        {
            exponent -= text.Length - dot - 1;
            text = string.Concat(text.AsSpan(0, dot), text.AsSpan(dot + 1));
        }

        var significant = text.TrimStart('0');
        if (significant.Length == 0)
        {
            return (false, "", 0);
        }

        var digits = significant.TrimEnd('0');
        return (negative, digits, exponent + significant.Length - digits.Length);
    }

    /// <summary>Why <paramref name="eventType"/> may not be appended through the API, or null when it may.</summary>
    public static string? Reserved(string eventType)
    {
        var dot = eventType.IndexOf('.', StringComparison.Ordinal);
        var first = dot < 0 ? eventType : eventType[..dot];
        return Array.IndexOf(ReservedNamespaces, first) < 0
            ? null
            : $"event_type '{eventType}' is in the namespace '{first}', which only the service writes (it reads those events back as its own history: rollouts, deployments, incidents, registrations, delivery metrics). "
              + $"Reserved: {string.Join(", ", ReservedNamespaces.Select(n => n + ".*"))} (and the names themselves). "
              + "Name an operator's event in a namespace of its own, e.g. 'ops.maintenance' or 'change.ticket'.";
    }

    private static string? Text(JsonObject body, string name) =>
        body[name] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    private static string? TypeName(string name, string value) =>
        value.Length is > 0 and <= MaxTypeLength && TypeSyntax().IsMatch(value)
            ? null
            : (value.Length > MaxTypeLength ? $"{name} has {value.Length} characters" : $"{name} '{ClientText.Shown(value, 32)}' is not a type name")
              + $"; expected 1 to {MaxTypeLength} characters matching {TypePattern} (lower-case letters, digits, '.', '_' and '-', starting with a letter), e.g. 'ops.maintenance'.";

    [GeneratedRegex(@"\A[a-z][a-z0-9_.-]*\z", RegexOptions.CultureInvariant)]
    private static partial Regex TypeSyntax();
}
