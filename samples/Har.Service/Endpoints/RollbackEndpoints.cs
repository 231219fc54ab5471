using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Serialization;
using Har.Audit;
using Har.Deployment;
using Har.Service.Endpoints.Schemas;
using Har.Service.Infrastructure;
using Har.Service.Security;

namespace Har.Service.Endpoints;

/// <summary>
/// Rollback with a chosen target and an incident report (<c>POST /v1/rollouts/rollback</c>, also what
/// <c>POST /v1/rollouts/current/rollback</c> accepts), and incident reports by id (<c>GET</c>/<c>PUT /v1/incidents/{id}</c>):
/// the controller records the six steps and the report in the audit log; these routes read them back from it.
/// </summary>
internal static class RollbackEndpoints
{
    private const string RollbackExpected = "{\"to\": \"1.0.0\", \"reason\": \"…\", \"summary\": \"…\", \"cause\": \"…\", \"actions\": \"…\", \"expected_phase\": \"Progressing\", \"expected_revision\": 3} (every member optional)";
    private const string IncidentsTag = "Incidents";
    private const string IncidentExpected = "{\"summary\": \"…\", \"cause\": \"…\", \"actions\": \"…\", \"reason\": \"…\"} (at least one of summary, cause, actions)";

    public static void MapRollbackEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/rollouts/rollback", RollbackAsync)
            .RequireAuthorization(Roles.OperatorPolicy)
            .WithName("rollbackRollout")
            .WithTags("Rollouts")
            .WithRequestBody("Optional, every member too: " + RollbackExpected, false, [typeof(Schemas.RollbackRequest)], "application/json")
            .Produces<RollbackResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 409, 413, 415, 503)
            .WithSummary("Roll the current rollout back")
            .WithDescription("To its champion, or to an earlier registered version that verifies against the audit log ('to'). Six steps are audited: detect, identify, verify, execute, verify success, log; summary, cause and actions start the incident report.");
        var incidents = app.MapGroup("/v1/incidents");
        incidents.MapGet("/{id}", GetIncident)
            .RequireAuthorization(Roles.PredictPolicy)
            .AddEndpointFilter<ActorNames>()
            .WithName("getIncident")
            .WithTags(IncidentsTag)
            .Produces<IncidentResponse>(StatusCodes.Status200OK)
            .ProducesProblems(404, 503)
            .WithSummary("An incident report and its rollback steps")
            .WithDescription("The latest revision of the report (id, cause, evidence, timeline, time to restore, summary, cause, actions) and the six rollback steps as audited.");
        incidents.MapPut("/{id}", UpdateIncidentAsync)
            .RequireAuthorization(Roles.OperatorPolicy)
            .WithName("updateIncident")
            .WithTags(IncidentsTag)
            .WithRequestBody(IncidentExpected, true, [typeof(IncidentUpdateRequest)], "application/json")
            .Produces<IncidentUpdateResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 404, 409, 413, 415, 503)
            .WithSummary("Complete an incident report")
            .WithDescription("Sets summary, cause and/or actions; each update is a new audit record (records stay immutable; the latest revision is the report).");
    }

    /// <summary><c>POST /v1/rollouts/rollback</c> and <c>POST /v1/rollouts/current/rollback</c>: the body is optional.</summary>
    public static async Task<IResult> RollbackAsync(HttpRequest request, RolloutController controller, CancellationToken ct)
    {
        RollbackRequest? body = null;
        if (request.ContentLength is > 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count > 0))
        {
            var (parsed, error) = await ServiceJson.ReadAsync<RollbackRequest>(request, RollbackExpected, ct);
            if (error is not null)
            {
                return error;
            }

            body = parsed;
        }

        var (expected, badPhase) = ExpectedPhase(body?.ExpectedPhase);
        if (badPhase is not null)
        {
            return badPhase;
        }

        var command = RolloutCommand.Create(RolloutCommandKind.Rollback, Actor(request), body?.Reason ?? "rollback through the HTTP API") with
        {
            ExpectedPhase = expected,
            ExpectedRevision = body?.ExpectedRevision,
            RollbackTo = body?.To is { Length: > 0 } to ? to : null,
            IncidentSummary = body?.Summary,
            IncidentCause = body?.Cause,
            IncidentActions = body?.Actions,
        };
        var status = await controller.ExecuteAsync(command, ct);
        var incident = $"incident-{status.RolloutId}";
        return Results.Ok(new
        {
            rollout_id = status.RolloutId,
            phase = status.Phase.ToString(),
            revision = status.Revision,
            current_version = controller.Registry.CurrentVersion,
            message = status.Message,
            incident_id = incident,
            incident_url = $"/v1/incidents/{incident}",
        });
    }

    /// <summary>
    /// A command's <c>expected_phase</c>: one phase by its name (case-insensitive), or a 400 listing the names.
    /// <see cref="Enum.TryParse{TEnum}(string?, bool, out TEnum)"/> also takes a number ("1" is Progressing), a
    /// comma-separated combination ("Progressing,Paused" is AwaitingApproval) and surrounding spaces, so a guard
    /// meant to refuse a stale command could name a phase the operator never wrote.
    /// </summary>
    internal static (RolloutPhase? Phase, IResult? Error) ExpectedPhase(string? text)
    {
        if (text is null)
        {
            return (null, null);
        }

        foreach (var name in Enum.GetNames<RolloutPhase>())
        {
            if (string.Equals(name, text, StringComparison.OrdinalIgnoreCase))
            {
                return (Enum.Parse<RolloutPhase>(name), null);
            }
        }

        return (null, Results.Problem(
            statusCode: 400,
            title: "Invalid expected phase",
            detail: $"expected_phase '{ClientText.Shown(text, 32)}' is not a rollout phase; expected one phase by name: {string.Join(", ", Enum.GetNames<RolloutPhase>())} (case-insensitive; no numbers, combinations or spaces)."));
    }

    private static Task<IResult> GetIncident(string id, IServiceProvider services)
    {
        if (RolloutIdOf(id) is not { } rolloutId)
        {
            return Task.FromResult(NotAnIncident(id));
        }

        return AuditEndpoints.WithLog(services, log =>
        {
            // An id that names no rollout is a 404 from the rollout history (kept up to date, no scan); a rollout's steps
            // and reports are read from the log once and then only from where the last read ended (IncidentEntries).
            // Both were two scans of the whole log's index per request, anonymous by default: 11 ms a request at 313,000
            // entries, growing with the log, so a few connections asking for made-up incidents kept a core busy.
            if (!RolloutHistoryEndpoints.Exists(log, rolloutId))
            {
                return Task.FromResult(NoIncident(id));
            }

            // The incident is logged once the log step's own report (a report after step 6) is there; an operator's
            // report added while step 5 is still verifying does not make it so, and does not carry the verification.
            var (steps, reports) = IncidentEntries(log, rolloutId);
            if (reports.Count == 0 && steps.Count == 0)
            {
                return Task.FromResult(NoIncident(id));
            }

            var logStep = steps.FindLast(s => s.Event.ActionDetails.TryGetProperty("name", out var n) && n.GetString() == "log");
            // A log without rollback steps (written before they were recorded) holds only logged reports.
            var logged = steps.Count == 0 ? reports.Count > 0 : logStep.Event is not null && reports.Exists(r => r.Index > logStep.Index);
            return Task.FromResult(Results.Ok(new
            {
                incident_id = id,
                rollout_id = rolloutId,
                state = logged ? "logged" : "verifying",
                revisions = reports.Count,
                report = reports.Count == 0 ? (JsonElement?)null : reports[^1].Event.ActionDetails,
                steps = steps.Select(s => new
                {
                    step = s.Event.ActionDetails.TryGetProperty("step", out var n) ? n.GetInt32() : 0,
                    name = s.Event.ActionDetails.TryGetProperty("name", out var name) ? name.GetString() : null,
                    at = s.Event.Timestamp,
                    severity = s.Event.Severity.ToString().ToLowerInvariant(),
                    actor = s.Event.Actor,
                    audit_index = s.Index,
                    details = s.Event.ActionDetails,
                }).ToArray(),
            }));
        });
    }

    private static async Task<IResult> UpdateIncidentAsync(string id, HttpRequest request, RolloutController controller, CancellationToken ct)
    {
        if (RolloutIdOf(id) is not { } rolloutId)
        {
            return NotAnIncident(id);
        }

        // An id that names no rollout is a 404, as for GET (found from outside: the controller's 409 "not a rolled-back
        // rollout" answered a PUT of an incident that GET said does not exist).
        var known = await AuditEndpoints.WithLog(request.HttpContext.RequestServices, log =>
            Task.FromResult(RolloutHistoryEndpoints.Exists(log, rolloutId) ? Known : NoIncident(id)));
        if (!ReferenceEquals(known, Known))
        {
            return known;
        }

        var (body, error) = await ServiceJson.ReadAsync<IncidentRequest>(request, IncidentExpected, ct);
        if (error is not null)
        {
            return error;
        }

        if (body!.Summary is null && body.Cause is null && body.Actions is null)
        {
            return Results.Problem(statusCode: 400, detail: $"The body sets nothing; expected {IncidentExpected}.");
        }

        await controller.ExecuteAsync(
            RolloutCommand.Create(RolloutCommandKind.Incident, Actor(request), body.Reason ?? "incident report through the HTTP API") with
            {
                RolloutId = rolloutId,
                IncidentSummary = body.Summary,
                IncidentCause = body.Cause,
                IncidentActions = body.Actions,
            },
            ct);
        return Results.Ok(new { incident_id = id, rollout_id = rolloutId, incident_url = $"/v1/incidents/{id}" });
    }

    private static readonly Lock IncidentsLock = new();
    private static readonly Dictionary<string, IncidentIndex> Incidents = new(StringComparer.Ordinal);
    private static AuditLog? _incidentsLog;

    /// <summary>
    /// A rollout's rollback steps and incident reports as of one length of the log: what an earlier call read, and the
    /// entries appended since (both read up to the same length, so a report is never seen without the step before it).
    /// One entry per rollout of the log (the caller checked that it exists), so the cache is bounded by the rollouts.
    /// </summary>
    private static (List<(long Index, AuditEvent Event)> Steps, List<(long Index, AuditEvent Event)> Reports) IncidentEntries(AuditLog log, string rolloutId)
    {
        IncidentIndex index;
        lock (IncidentsLock)
        {
            if (!ReferenceEquals(_incidentsLog, log))
            {
                Incidents.Clear();
                _incidentsLog = log;
            }

            if (!Incidents.TryGetValue(rolloutId, out index!))
            {
                Incidents[rolloutId] = index = new IncidentIndex();
            }
        }

        lock (index)
        {
            var count = log.Count;
            if (index.Scanned > count)
            {
                index.Scanned = 0; // another log behind the same object (never in the service): read it again
                index.Steps.Clear();
                index.Reports.Clear();
            }

            if (index.Scanned < count)
            {
                index.Steps.AddRange(Read(log, rolloutId, "rollout.rollback.step", index.Scanned, count));
                index.Reports.AddRange(Read(log, rolloutId, "rollout.incident", index.Scanned, count));
                index.Scanned = count;
            }

            return ([.. index.Steps], [.. index.Reports]);
        }
    }

    private sealed class IncidentIndex
    {
        public long Scanned { get; set; }

        public List<(long Index, AuditEvent Event)> Steps { get; } = [];

        public List<(long Index, AuditEvent Event)> Reports { get; } = [];
    }

    /// <summary>The events of one type of a rollout among the entries [<paramref name="from"/>, <paramref name="to"/>).</summary>
    private static List<(long Index, AuditEvent Event)> Read(AuditLog log, string rolloutId, string eventType, long from, long to)
    {
        var found = new List<(long, AuditEvent)>();
        string? token = from == 0 ? null : from.ToString(System.Globalization.CultureInfo.InvariantCulture);
        do
        {
            var page = log.Query(new AuditQuery { EntityId = rolloutId, EventType = eventType, Kind = AuditRecordKind.Event, PageSize = 1000, PageToken = token });
            foreach (var entry in page.Entries)
            {
                if (entry.Index < to && entry.Record is AuditEvent e)
                {
                    found.Add((entry.Index, e));
                }
            }

            token = page.NextPageToken;
            if (page.Entries.Count > 0 && page.Entries[^1].Index >= to)
            {
                break; // the rest was appended after this read's length
            }
        }
        while (token is not null);
        return found;
    }

    private static string? RolloutIdOf(string id) =>
        id.StartsWith("incident-", StringComparison.Ordinal) && id.Length > "incident-".Length && id.Length <= 200 ? id["incident-".Length..] : null;

    /// <summary>What <see cref="UpdateIncidentAsync"/>'s look-up answers for an id the log knows.</summary>
    private static readonly IResult Known = Results.Empty;

    private static IResult NoIncident(string id) =>
        Results.Problem(statusCode: 404, detail: $"No incident '{Clip(id)}' in the audit log; an incident id is 'incident-' followed by the id of a rolled-back rollout (GET /v1/rollouts?outcome=rolled_back).");

    private static IResult NotAnIncident(string id) =>
        Results.Problem(statusCode: 404, detail: $"'{Clip(id)}' is not an incident id; expected 'incident-' followed by a rollout id, as the rollback response's incident_id.");

    private static string Clip(string s) => s.Length <= 64 ? s : s[..64] + "…";

    private static string Actor(HttpRequest request) => request.HttpContext.User.FindFirstValue(ClaimTypes.Name) ?? "anonymous";

    private sealed record RollbackRequest(
        [property: JsonPropertyName("to")] string? To,
        [property: JsonPropertyName("reason")] string? Reason,
        [property: JsonPropertyName("summary")] string? Summary,
        [property: JsonPropertyName("cause")] string? Cause,
        [property: JsonPropertyName("actions")] string? Actions,
        [property: JsonPropertyName("expected_phase")] string? ExpectedPhase,
        [property: JsonPropertyName("expected_revision")] long? ExpectedRevision);

    private sealed record IncidentRequest(
        [property: JsonPropertyName("summary")] string? Summary,
        [property: JsonPropertyName("cause")] string? Cause,
        [property: JsonPropertyName("actions")] string? Actions,
        [property: JsonPropertyName("reason")] string? Reason);
}
