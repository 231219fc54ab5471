using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Audit;
using Har.Service.Endpoints.Schemas;
using Har.Service.Infrastructure;
using Har.Service.Security;

namespace Har.Service.Endpoints;

/// <summary>
/// <c>/v1/audit/…</c>: append events, query them, checkpoints and offline proofs (Har.Audit). The log is resolved per
/// request, so a log that cannot be opened (read-only or full disk, damaged entries) is a clear 503/500 here while
/// the rest of the service keeps serving: 503 + Retry-After while it is unavailable (it recovers on its own),
/// 500 "Audit log damaged" naming the entry when stored bytes fail their checks (never a 400: the client did nothing wrong).
/// </summary>
internal static class AuditEndpoints
{
    /// <summary>The OpenAPI tag of the audit routes.</summary>
    public const string Tag = "Audit log";

    public static void MapAuditEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/audit");

        group.MapPost("/events", HandleAppend).RequireAuthorization(Roles.OperatorPolicy)
            .WithName("appendAuditEvent")
            .WithTags(Tag)
            .WithSummary("Append an operator's event to the audit log")
            .WithRequestBody(AuditEventRules.Expected + " (actor and timestamp are set by the service). UTF-8, or the charset the Content-Type declares.", true, [typeof(AuditEventRequest)], "application/json")
            .Produces<AuditAppendResponse>(StatusCodes.Status201Created)
            .ProducesProblems(400, 413, 415, 503);
        group.MapGet("/events", HandleQuery).RequireAuthorization(Roles.AuditorPolicy)
            .WithName("queryAuditEvents")
            .WithTags(Tag)
            .WithSummary("Query the audit log")
            .WithDescription("Entries in log order, filtered (all filters optional, combined with AND); a page also ends once it holds about 8 MiB of records, with its next_page.")
            .WithPagedQuery(
                new QueryParameter("event_type", "Exactly this event type (deployment records: deployment, rollback records: rollback)."),
                new QueryParameter("entity_type", "Exactly this entity type (deployment records: model)."),
                new QueryParameter("entity_id", "Exactly this entity id."),
                new QueryParameter("actor", "Exactly this actor (an API key's name)."),
                new QueryParameter("kind", "Only records of this kind.", KindNames),
                new QueryParameter("severity", "Only events of exactly this severity (not with min_severity).", SeverityNames),
                new QueryParameter("min_severity", "Only events of this severity or a more serious one (not with severity).", SeverityNames),
                new QueryParameter("from", "From this time on (inclusive): ISO 8601, e.g. 2026-12-03T10:00:00Z, with an offset (no offset means UTC), or a date (midnight UTC); before to."),
                new QueryParameter("to", "Before this time (exclusive): ISO 8601 as from."))
            .Produces<AuditEventsResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 503);
        group.MapGet("/events/{index:long}", HandleGet).RequireAuthorization(Roles.AuditorPolicy)
            .WithName("getAuditEvent")
            .WithTags(Tag)
            .WithSummary("One audit entry")
            .Produces<AuditEntryResponse>(StatusCodes.Status200OK)
            .ProducesProblems(404, 503);
        group.MapGet("/checkpoint", HandleCheckpoint).RequireAuthorization(Roles.AuditorPolicy)
            .WithName("getAuditCheckpoint")
            .WithTags(Tag)
            .WithSummary("The latest signed checkpoint (a signed note)")
            .Produces<string>(StatusCodes.Status200OK, "text/plain")
            .ProducesProblems(404, 503);
        group.MapGet("/proof/{index:long}", HandleProof).RequireAuthorization(Roles.AuditorPolicy)
            .WithName("getAuditProof")
            .WithTags(Tag)
            .WithSummary("An offline inclusion proof of one entry")
            .Produces<AuditProofResponse>(StatusCodes.Status200OK)
            .ProducesProblems(404, 503);
    }

    private static Task<IResult> HandleAppend(HttpRequest request, IServiceProvider services, TimeProvider time, CancellationToken ct) =>
        WithLog(services, log => log.State == AuditLogState.Writable ? AppendAsync(request, log, time, ct) : Task.FromResult<IResult>(Unavailable(log.State.ToString())));

    private static async Task<IResult> AppendAsync(HttpRequest request, AuditLog log, TimeProvider time, CancellationToken ct)
    {
        // The media type and charset as on every JSON route: a body in another charset is decoded (found from outside:
        // charset=bogus was taken, and a UTF-16 body declared as such was refused as invalid UTF-8).
        var (utf8, unsupported) = await ServiceJson.ReadUtf8Async(request, AuditEventRules.Expected, ct);
        if (unsupported is not null)
        {
            return unsupported;
        }

        // What is recorded must be what was sent: the JSON parser would replace invalid UTF-8 with U+FFFD.
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
        {
            return Results.Problem(statusCode: 400, title: "Invalid text in JSON", detail: "The audit event is not valid UTF-8 (invalid or overlong bytes, or an encoded surrogate); send it as valid UTF-8 JSON.");
        }

        // One value per member (a duplicate would be recorded as only one of them), anywhere in the event.
        JsonObject? body;
        try
        {
            body = JsonNode.Parse(utf8, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject;
        }
        catch (JsonException ex)
        {
            return Results.Problem(statusCode: 400, title: "Malformed JSON", detail: $"{ex.Message}{ServiceJson.DecodedAs(request)} Expected {AuditEventRules.Expected}.");
        }

        if (body is null)
        {
            return Results.Problem(statusCode: 400, title: "Invalid audit event", detail: $"The body is not a JSON object; expected {AuditEventRules.Expected}.");
        }

        // The actor and timestamp are the server's (a client cannot write history in someone else's name or at another
        // time); the identifiers are bounded printable names; the service's own namespaces are its own (AuditEventRules).
        if (AuditEventRules.Problem(body) is { } problem)
        {
            return Results.Problem(statusCode: 400, title: problem.Title, detail: problem.Detail);
        }

        body["actor"] = request.HttpContext.User.Identity?.Name ?? "anonymous";
        body["timestamp"] = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture);
        AuditEvent record;
        try
        {
            record = (AuditEvent)AuditRecord.Parse(AuditRecordKind.Event, JsonSerializer.SerializeToUtf8Bytes(body));
        }
        catch (AuditRecordException ex)
        {
            return Results.Problem(statusCode: 400, title: "Invalid audit event", detail: ex.Message);
        }

        var ack = await log.AppendAsync(record, ct);
        return Results.Created($"/v1/audit/events/{ack.Index}", new { index = ack.Index, leaf_hash = Convert.ToHexStringLower(ack.LeafHash.Span) });
    }

    private static readonly string[] QueryFilters = ["event_type", "entity_type", "entity_id", "actor", "kind", "severity", "min_severity", "from", "to"];
    private static readonly string[] SeverityNames = ["debug", "info", "notice", "warning", "error", "critical"];
    private static readonly string[] KindNames = ["deployment", "rollback", "event"];
    private static readonly AuditRecordKind[] Kinds = [AuditRecordKind.Deployment, AuditRecordKind.Rollback, AuditRecordKind.Event];

    /// <summary>
    /// <c>GET /v1/audit/events</c>: filters (all optional, combined with AND) event_type, entity_type, entity_id, actor,
    /// kind (deployment, rollback, event), severity (exactly) or min_severity (at least; only events have one),
    /// from (inclusive) and to (exclusive) as ISO 8601 times; pages of page_size entries in index order, next_page.
    /// The parameters are declared for the OpenAPI document; <see cref="ListQuery"/> validates them with clear 400s.
    /// </summary>
    private static Task<IResult> HandleQuery(
        HttpRequest request,
        IServiceProvider services,
        string? event_type,
        string? entity_type,
        string? entity_id,
        string? actor,
        string? kind,
        string? severity,
        string? min_severity,
        string? from,
        string? to,
        string? page,
        string? page_size)
    {
        var (query, error) = ParseQuery(request);
        return error is not null ? Task.FromResult(error) : WithLog(services, log => Task.FromResult(Query(log, query!)));
    }

    /// <summary>The audit query of a request, or a 400 that says which parameter is wrong and what is expected.</summary>
    private static (AuditQuery? Query, IResult? Error) ParseQuery(HttpRequest request)
    {
        var (list, error) = ListQuery.Parse(request, QueryFilters);
        if (error is not null)
        {
            return (null, error);
        }

        var (eventType, e1) = list!.Text("event_type");
        var (entityType, e2) = list.Text("entity_type");
        var (entityId, e3) = list.Text("entity_id");
        var (actor, e4) = list.Text("actor");
        var (kindText, e5) = list.Text("kind");
        var (severityText, e6) = list.Text("severity");
        var (minimumText, e7) = list.Text("min_severity");
        var (from, e8) = list.Time("from");
        var (to, e9) = list.Time("to");
        if ((e1 ?? e2 ?? e3 ?? e4 ?? e5 ?? e6 ?? e7 ?? e8 ?? e9) is { } bad)
        {
            return (null, bad);
        }

        if (from is { } f && to is { } t && f >= t)
        {
            return (null, ListQuery.Bad($"from ({f:O}) is not before to ({t:O}); from is inclusive and to exclusive, so from must be earlier."));
        }

        // Exact names, as every enum filter of the API takes them (severity, outcome, cause): the lower-case names the
        // docs give and the audit records store (found from outside: kind=DEPLOYMENT was taken, severity=DEBUG was not).
        AuditRecordKind? recordKind = null;
        if (kindText is not null)
        {
            var k = Array.IndexOf(KindNames, kindText);
            if (k < 0)
            {
                return (null, ListQuery.Bad($"kind is '{Bounded(kindText)}'; expected deployment, rollback or event (lower case)."));
            }

            recordKind = Kinds[k];
        }

        if (severityText is not null && minimumText is not null)
        {
            return (null, ListQuery.Bad("Give severity (exactly this severity) or min_severity (this one or more serious), not both."));
        }

        AuditSeverity? exact = null, minimum = null;
        foreach (var (name, text) in new[] { ("severity", severityText), ("min_severity", minimumText) })
        {
            if (text is null)
            {
                continue;
            }

            var i = Array.IndexOf(SeverityNames, text);
            if (i < 0)
            {
                return (null, ListQuery.Bad($"{name} is '{Bounded(text)}'; expected one of {string.Join(", ", SeverityNames)} (lower case)."));
            }

            if (name == "severity")
            {
                exact = (AuditSeverity)i;
            }
            else
            {
                minimum = (AuditSeverity)i;
            }
        }

        return (new AuditQuery
        {
            EventType = eventType,
            EntityType = entityType,
            EntityId = entityId,
            Actor = actor,
            Kind = recordKind,
            Severity = exact,
            MinimumSeverity = minimum,
            From = from,
            To = to,
            PageToken = list.Page,
            PageSize = list.PageSize,
        }, null);
    }

    /// <summary>The most record bytes one page holds: past it the page ends early, with its next_page.</summary>
    internal const long MaxPageBytes = 8L << 20;

    /// <summary>The most entries read from the log at a time while a page is filled.</summary>
    private const int ReadChunk = 8;

    /// <summary>The largest record the service's log takes (AuditLogOptions.MaxRecordBytes' default): how much of the page one entry may fill.</summary>
    private const long RecordBytesEstimate = 1L << 20;

    private static IResult Query(AuditLog log, AuditQuery query)
    {
        // A page is bounded by bytes as well as by entries: 1,000 records of up to 1 MiB each made one answer of about
        // 1 GB, and a few concurrent auditor queries exhausted the heap (found from outside: 500 OutOfMemoryException,
        // RSS at the pod's 2 GiB limit). The log is read a few entries at a time, and the page ends once it holds
        // MaxPageBytes of records (at least one entry), with next_page where it stopped.
        var entries = new List<JsonObject>();
        long bytes = 0;
        var token = query.PageToken;
        string? next;
        try
        {
            while (true)
            {
                // As many entries as fit in what is left of the page's bytes, were each the largest a record may be
                // (at least one): a page ends at most one record past its bound.
                var fit = (int)Math.Clamp((MaxPageBytes - bytes) / RecordBytesEstimate, 1, ReadChunk);
                var chunk = log.Query(Copy(query, token, Math.Min(fit, query.PageSize - entries.Count)));
                next = chunk.NextPageToken;
                foreach (var entry in chunk.Entries)
                {
                    entries.Add(ToJson(entry));
                    bytes += entry.CanonicalJson.Length;
                }

                if (next is null || entries.Count >= query.PageSize || bytes >= MaxPageBytes)
                {
                    break;
                }

                token = next;
            }
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            return ListQuery.Bad("page is not a cursor this log issued; pass the previous response's next_page, or leave it out for the first page.");
        }

        return Results.Ok(new
        {
            entries,
            next_page = next,
        });
    }

    private static AuditQuery Copy(AuditQuery q, string? pageToken, int pageSize) => new()
    {
        EventType = q.EventType,
        EntityType = q.EntityType,
        EntityId = q.EntityId,
        Actor = q.Actor,
        Kind = q.Kind,
        Severity = q.Severity,
        MinimumSeverity = q.MinimumSeverity,
        From = q.From,
        To = q.To,
        PageToken = pageToken,
        PageSize = pageSize,
    };

    private static string Bounded(string text) => text.Length <= 32 ? text : text[..32] + "…";

    private static Task<IResult> HandleGet(IServiceProvider services, long index) => WithLog(services, log => Task.FromResult(Get(log, index)));

    private static Task<IResult> HandleCheckpoint(IServiceProvider services) => WithLog(services, log => Task.FromResult(Checkpoint(log)));

    private static Task<IResult> HandleProof(IServiceProvider services, long index) => WithLog(services, log => Task.FromResult(Proof(log, index)));

    private static IResult Get(AuditLog log, long index)
    {
        if (index < 0 || index >= log.Count)
        {
            return Results.Problem(statusCode: 404, detail: $"No entry {index}; the log has {log.Count} entries (0 to {log.Count - 1}).");
        }

        return Results.Ok(ToJson(log.Get(index)));
    }

    private static IResult Checkpoint(AuditLog log) =>
        log.LatestCheckpoint is { } checkpoint
            ? Results.Text(checkpoint.NoteText, "text/plain; charset=utf-8")
            : Results.Problem(statusCode: 404, detail: "The log has no signed checkpoint yet.");

    private static IResult Proof(AuditLog log, long index)
    {
        if (index < 0 || index >= log.Count)
        {
            return Results.Problem(statusCode: 404, detail: $"No entry {index}; the log has {log.Count} entries.");
        }

        // Checkpoints are signed in the background every minute the log grew; a proof of a newer entry signs one now
        // (CreateCheckpoint verifies the entries it adds first, so nothing damaged is ever signed).
        if (log.LatestCheckpoint is null || log.LatestCheckpoint.TreeSize <= index)
        {
            log.CreateCheckpoint();
        }

        return Results.Text(log.ExportProof(index).ToJson(), "application/json");
    }

    /// <summary>Runs <paramref name="action"/> with the log, mapping the log's own failures to problem details.</summary>
    internal static async Task<IResult> WithLog(IServiceProvider services, Func<AuditLog, Task<IResult>> action)
    {
        try
        {
            var log = services.GetRequiredService<AuditLog>();
            return await action(log);
        }
        catch (AuditLogUnavailableException ex)
        {
            return Unavailable(ex.Message);
        }
        catch (AuditLogCorruptedException ex)
        {
            return Damaged(ex.Message);
        }
        catch (InvalidDataException ex)
        {
            return Damaged(ex.Message);
        }
    }

    private static RetryAfterResult Unavailable(string detail) => new(Results.Problem(
        statusCode: StatusCodes.Status503ServiceUnavailable,
        title: "Audit log unavailable",
        detail: "The audit log cannot record or serve this now (a read-only or full disk, or a fleet database that does not answer); it recovers on its own. Retry after the number of seconds in Retry-After.",
        extensions: new Dictionary<string, object?> { ["reason"] = Redact(detail) }), seconds: 5);

    private static IResult Damaged(string detail) => Results.Problem(
        statusCode: StatusCodes.Status500InternalServerError,
        title: "Audit log damaged",
        detail: Redact(detail) + " The operator must verify the log (`har audit verify`) and restore or repair it (`har audit repair`).");

    /// <summary>Keeps file-system paths out of responses.</summary>
    private static string Redact(string message)
    {
        var start = message.IndexOf('\'');
        while (start >= 0)
        {
            var end = message.IndexOf('\'', start + 1);
            if (end < 0)
            {
                break;
            }

            if (message.AsSpan(start + 1, end - start - 1).Contains('/'))
            {
                message = string.Concat(message.AsSpan(0, start), "<path>", message.AsSpan(end + 1));
                end = start + "<path>".Length - 1;
            }

            start = message.IndexOf('\'', end + 1);
        }

        return message;
    }

    private static JsonObject ToJson(AuditEntry e) => new()
    {
        ["index"] = e.Index,
        ["kind"] = e.Kind.ToString(),
        ["event_type"] = e.EventType,
        ["entity_type"] = e.EntityType,
        ["entity_id"] = e.EntityId,
        ["actor"] = e.Actor,
        ["timestamp"] = e.Timestamp.ToString("O", CultureInfo.InvariantCulture),
        ["leaf_hash"] = Convert.ToHexStringLower(e.LeafHash.Span),
        ["record"] = JsonNode.Parse(e.Record.ToCanonicalJson()),
    };

    /// <summary>A result with a <c>Retry-After</c> header (seconds): the log probes the disk every few seconds and recovers on its own.</summary>
    private sealed class RetryAfterResult(IResult inner, int seconds) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
