using System.Security.Claims;
using System.Text.Json;
using Har.Audit;

namespace Har.Service.Infrastructure;

/// <summary>
/// Writes one audit event per operation request — model and rollout changes, audit appends — with who
/// (key name, or anonymous), what (method, route) and the result (status), including refused ones (401/403/4xx).
/// Predictions, reads, health and metrics are not operations and are not logged here.
/// </summary>
internal sealed class OperationAuditMiddleware(RequestDelegate next, AuditLog log, TimeProvider time, ILogger<OperationAuditMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (!IsOperation(context.Request))
        {
            await next(context);
            return;
        }

        try
        {
            await next(context);
        }
        finally
        {
            await RecordAsync(context);
        }
    }

    internal static bool IsOperation(HttpRequest request) =>
        !HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method) && !HttpMethods.IsOptions(request.Method)
        && (request.Path.StartsWithSegments("/v1/models") || request.Path.StartsWithSegments("/v1/rollouts") || request.Path.StartsWithSegments("/v1/audit"));

    private async Task RecordAsync(HttpContext context)
    {
        var status = context.Response.StatusCode;
        var actor = context.User.FindFirstValue(ClaimTypes.Name) ?? "anonymous";
        var details = JsonSerializer.SerializeToElement(new Dictionary<string, object>
        {
            ["method"] = context.Request.Method,
            ["path"] = context.Request.Path.Value ?? "",
            ["status"] = status,
            ["remote"] = context.Connection.RemoteIpAddress?.ToString() ?? "",
            ["trace_id"] = context.TraceIdentifier,
        });
        var record = new AuditEvent
        {
            EventType = "http.operation",
            EntityType = "endpoint",
            EntityId = $"{context.Request.Method} {Truncate(context.Request.Path.Value ?? "/", 200)}",
            Severity = status >= 500 ? AuditSeverity.Error : status >= 400 ? AuditSeverity.Warning : AuditSeverity.Info,
            ActionDetails = details,
            Actor = actor,
            Timestamp = time.GetUtcNow(),
        };

        try
        {
            await log.AppendAsync(record, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException)
        {
            Log.OperationAuditFailed(logger, ex, record.EntityId);
        }
    }

    private static string Truncate(string value, int max) => value.Length <= max ? value : value[..max];
}
