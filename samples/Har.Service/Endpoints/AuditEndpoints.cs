using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Audit;
using Har.Service.Security;

namespace Har.Service.Endpoints;

/// <summary><c>/v1/audit/…</c>: append events, query them, checkpoints and offline proofs (Har.Audit).</summary>
internal static class AuditEndpoints
{
    private const int DefaultPageSize = 50;

    public static void MapAuditEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/audit");

        group.MapPost("/events", AppendAsync).RequireAuthorization(Roles.OperatorPolicy);
        group.MapGet("/events", Query).RequireAuthorization(Roles.AuditorPolicy);
        group.MapGet("/events/{index:long}", Get).RequireAuthorization(Roles.AuditorPolicy);
        group.MapGet("/checkpoint", Checkpoint).RequireAuthorization(Roles.AuditorPolicy);
        group.MapGet("/proof/{index:long}", Proof).RequireAuthorization(Roles.AuditorPolicy);
    }

    private static async Task<IResult> AppendAsync(HttpRequest request, AuditLog log, TimeProvider time, CancellationToken ct)
    {
        if (!request.HasJsonContentType())
        {
            return Results.Problem(statusCode: 415, detail: "Send the audit event as application/json.");
        }

        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, ct);

        // What is recorded must be what was sent: the JSON parser would replace invalid UTF-8 with U+FFFD.
        if (!System.Text.Unicode.Utf8.IsValid(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)))
        {
            return Results.Problem(statusCode: 400, title: "Invalid text in JSON", detail: "The audit event is not valid UTF-8 (invalid or overlong bytes, or an encoded surrogate); send it as valid UTF-8 JSON.");
        }

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

        if (log.LatestCheckpoint is null || log.LatestCheckpoint.TreeSize <= index)
        {
            log.CreateCheckpoint();
        }

        return Results.Text(log.ExportProof(index).ToJson(), "application/json");
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
