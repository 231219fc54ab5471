namespace Har.Service.Endpoints;

/// <summary>
/// What <c>POST /v1/audit/events</c> accepts from an operator. The service's own history is audit events too, and it
/// reads them back as facts: <c>rollout.transition</c> and <c>rollout.rollback</c> are <c>GET /v1/rollouts</c> and the
/// delivery metrics, <c>deployment.completed</c> is a version's completed deployment record, <c>rollout.incident</c> and
/// <c>rollout.rollback.step</c> are incidents, <c>registry.*</c> anchors registrations, <c>backup.*</c> backups,
/// <c>http.*</c> the HTTP layer's own record. So the namespaces the packages, the service and the CLI write are theirs:
/// an event type whose first segment is one of <see cref="ReservedNamespaces"/> is refused, and an operator's events
/// live in a namespace of their own (<c>ops.maintenance</c>, <c>change.ticket</c>).
/// </summary>
internal static class AuditEventRules
{
    /// <summary>
    /// The first segments (before the first '.') of the event types only the system writes, and the names under which
    /// queries find deployment and rollback records (<c>event_type=deployment</c>, <c>event_type=rollback</c>):
    /// <c>audit.log.repaired</c> (Har.Audit), <c>backup.created</c>/<c>restored</c>, <c>registry.*</c>,
    /// <c>rollout.*</c>, <c>deployment.completed</c> (Har.Deployment), <c>http.operation</c>/<c>refusals</c> (this
    /// service), <c>drift.report</c> (the CLI's demo); <c>model</c> is the registry's entity, whose history is
    /// <c>registry.*</c> and <c>deployment.*</c>, so <c>model.promoted</c> would read as one of its facts.
    /// </summary>
    public static readonly string[] ReservedNamespaces = ["audit", "backup", "deployment", "drift", "http", "model", "registry", "rollback", "rollout"];

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
}
