using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Audit;
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
    private const int DefaultPageSize = 50;

    public static void MapAuditEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/audit");

        group.MapPost("/events", HandleAppend).RequireAuthorization(Roles.OperatorPolicy);
        group.MapGet("/events", HandleQuery).RequireAuthorization(Roles.AuditorPolicy);
        group.MapGet("/events/{index:long}", HandleGet).RequireAuthorization(Roles.AuditorPolicy);
        group.MapGet("/checkpoint", HandleCheckpoint).RequireAuthorization(Roles.AuditorPolicy);
        group.MapGet("/proof/{index:long}", HandleProof).RequireAuthorization(Roles.AuditorPolicy);
    }

    private static Task<IResult> HandleAppend(HttpRequest request, IServiceProvider services, TimeProvider time, CancellationToken ct) =>
        WithLog(services, log => log.State == AuditLogState.Writable ? AppendAsync(request, log, time, ct) : Task.FromResult(Unavailable(log.State.ToString())));

    private static async Task<IResult> AppendAsync(HttpRequest request, AuditLog log, TimeProvider time, CancellationToken ct)
    {
        if (!request.HasJsonContentType())
        {
            return Results.Problem(statusCode: 415, detail: "Send the audit event as application/json.");
        }

        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, ct);

        // The actor and timestamp are the server's: a client cannot write history in someone else's name.
        JsonObject body;
        try
        {
            body = JsonNode.Parse(buffer.ToArray()) as JsonObject
                ?? throw new AuditRecordException("$: expected a JSON object with event_type, entity_type, entity_id, severity and action_details.");
        }
        catch (JsonException ex)
        {
            return Results.Problem(statusCode: 400, title: "Malformed JSON", detail: ex.Message);
        }

        body["actor"] = request.HttpContext.User.Identity?.Name ?? "anonymous";
        body["timestamp"] = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture);
        AuditEvent record;
        try
        {
            record = AuditEvent.Parse(JsonSerializer.SerializeToUtf8Bytes(body));
        }
        catch (AuditRecordException ex)
        {
            return Results.Problem(statusCode: 400, title: "Invalid audit event", detail: ex.Message);
        }

        var ack = await log.AppendAsync(record, ct);
        return Results.Created($"/v1/audit/events/{ack.Index}", new { index = ack.Index, leaf_hash = Convert.ToHexStringLower(ack.LeafHash.Span) });
    }

    private static Task<IResult> HandleQuery(
        IServiceProvider services,
        string? event_type,
        string? entity_type,
        string? entity_id,
        string? actor,
        DateTimeOffset? from,
        DateTimeOffset? to,
        string? page,
        int? page_size) =>
        WithLog(services, log => Task.FromResult(Query(log, event_type, entity_type, entity_id, actor, from, to, page, page_size)));

    private static IResult Query(
        AuditLog log,
        string? event_type,
        string? entity_type,
        string? entity_id,
        string? actor,
        DateTimeOffset? from,
        DateTimeOffset? to,
        string? page,
        int? page_size)
    {
        var size = page_size ?? DefaultPageSize;
        if (size is < 1 or > 1000)
        {
            return Results.Problem(statusCode: 400, detail: $"page_size is {size}; expected 1 to 1000.");
        }

        AuditPage result;
        try
        {
            result = log.Query(new AuditQuery
            {
                EventType = event_type,
                EntityType = entity_type,
                EntityId = entity_id,
                Actor = actor,
                From = from,
                To = to,
                PageToken = page,
                PageSize = size,
            });
        }
        catch (ArgumentException ex)
        {
            return Results.Problem(statusCode: 400, detail: ex.Message);
        }

        return Results.Ok(new
        {
            entries = result.Entries.Select(ToJson).ToArray(),
            next_page = result.NextPageToken,
        });
    }

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
    private static async Task<IResult> WithLog(IServiceProvider services, Func<AuditLog, Task<IResult>> action)
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

    private static IResult Unavailable(string detail) => Results.Problem(
        statusCode: StatusCodes.Status503ServiceUnavailable,
        title: "Audit log unavailable",
        detail: "The audit log cannot record or serve this now (read-only or full disk); it recovers on its own. Retry later.",
        extensions: new Dictionary<string, object?> { ["reason"] = Redact(detail) });

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
}
