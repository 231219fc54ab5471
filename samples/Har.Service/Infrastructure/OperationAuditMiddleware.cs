using System.Security.Claims;
using System.Text.Json;
using Har.Audit;
using Har.Service.Security;

namespace Har.Service.Infrastructure;

/// <summary>
/// Writes one audit event per operation request that got past authentication, rate limiting and
/// authorization — model and rollout changes, backups, audit appends — with who (key name), what (method, path), the
/// result (status) and what the endpoint adds (<see cref="AddDetail"/>). One entry per request, so the rate limit that
/// bounds a key's requests bounds its entries. Feedback labels (they steer a rollout's accuracy gate) are operations
/// too, counted per key and audited once per interval by <see cref="FeedbackAuditSummary"/>. It runs after those middlewares, so a request they refuse never reaches it;
/// refusals that happen later (404, 405) are skipped too: all of them are counted by
/// <see cref="RefusalTracker"/> and summarized periodically, never audited one entry per request.
/// Predictions, reads, health and metrics are not operations and are not logged here. Every field is
/// bounded: an entry is at most a few hundred bytes whatever the request.
/// </summary>
internal sealed class OperationAuditMiddleware(RequestDelegate next, IServiceProvider services, TimeProvider time, ILogger<OperationAuditMiddleware> logger)
{
    /// <summary>Longest path (URI-escaped) written to the log; longer ones are cut and marked with "…".</summary>
    public const int MaxPathLength = 256;

    private const int MaxMethodLength = 16;

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
            if (!RefusalTracker.IsRefusal(context.Response.StatusCode))
            {
                if (IsFeedback(context.Request.Path))
                {
                    services.GetRequiredService<FeedbackAuditSummary>().Add(
                        context.User.FindFirstValue(ClaimTypes.Name) ?? "anonymous", context.Response.StatusCode, context.Features.Get<OperationDetails>()?.Values);
                }
                else
                {
                    await RecordAsync(context);
                }
            }
        }
    }

    internal static bool IsOperation(HttpRequest request) =>
        !HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method) && !HttpMethods.IsOptions(request.Method)
        && (request.Path.StartsWithSegments("/v1/models") || request.Path.StartsWithSegments("/v1/rollouts") || request.Path.StartsWithSegments("/v1/audit")
            || request.Path.StartsWithSegments("/v1/backups") || IsFeedback(request.Path));

    /// <summary>The feedback routes, audited per key and interval (<see cref="FeedbackAuditSummary"/>).</summary>
    internal static bool IsFeedback(PathString path) => path.StartsWithSegments("/v1/feedback") || IsStreamFeedback(path);

    /// <summary>
    /// Adds <paramref name="name"/> (a number or a short fixed word: entries stay bounded) to the details of the
    /// request's <c>http.operation</c> entry; the fixed members (method, path, status …) cannot be replaced.
    /// </summary>
    public static void AddDetail(HttpContext context, string name, object value)
    {
        var details = context.Features.Get<OperationDetails>();
        if (details is null)
        {
            context.Features.Set(details = new OperationDetails());
        }

        details.Values[name] = value;
    }

    /// <summary><c>/v1/streams/{streamId}/feedback</c> (its samples are predictions, not operations).</summary>
    private static bool IsStreamFeedback(PathString path) =>
        path.StartsWithSegments("/v1/streams", out var rest) && rest.Value is { } tail
        && tail.EndsWith("/feedback", StringComparison.Ordinal) && tail.IndexOf('/', 1) == tail.Length - "/feedback".Length;

    /// <summary>The path as ASCII (non-ASCII and control characters escaped), at most <see cref="MaxPathLength"/> characters.</summary>
    internal static string BoundedPath(PathString path)
    {
        var escaped = path.HasValue ? path.ToUriComponent() : "/";
        return escaped.Length <= MaxPathLength ? escaped : escaped[..(MaxPathLength - 1)] + "…";
    }

    private async Task RecordAsync(HttpContext context)
    {
        var status = context.Response.StatusCode;
        var actor = context.User.FindFirstValue(ClaimTypes.Name) ?? "anonymous";
        var method = context.Request.Method.Length <= MaxMethodLength ? context.Request.Method : context.Request.Method[..MaxMethodLength];
        var path = BoundedPath(context.Request.Path);
        var values = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["method"] = method,
            ["path"] = path,
            ["status"] = status,
            ["remote"] = context.Connection.RemoteIpAddress?.ToString() ?? "",
            ["trace_id"] = context.TraceIdentifier,
        };
        if (context.Features.Get<OperationDetails>() is { } added)
        {
            foreach (var (name, value) in added.Values)
            {
                values.TryAdd(name, value);
            }
        }

        var details = JsonSerializer.SerializeToElement(values);
        var record = new AuditEvent
        {
            EventType = "http.operation",
            EntityType = "endpoint",
            EntityId = $"{method} {path}",
            Severity = status >= 500 ? AuditSeverity.Error : status >= 400 ? AuditSeverity.Warning : AuditSeverity.Info,
            ActionDetails = details,
            Actor = actor,
            Timestamp = time.GetUtcNow(),
        };

        AuditLog log;
        try
        {
            // Resolved per record: the log may not have opened (a read-only disk at start) and open later; the
            // readiness check ('operations': the log's own state) sees that by itself.
            log = services.GetRequiredService<AuditLog>();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.OperationAuditFailed(logger, ex, record.EntityId);
            return;
        }

        try
        {
            await log.AppendAsync(record, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or UnauthorizedAccessException)
        {
            Log.OperationAuditFailed(logger, ex, record.EntityId);
        }
    }
}

/// <summary>What an endpoint adds to its request's <c>http.operation</c> audit entry (<see cref="OperationAuditMiddleware.AddDetail"/>).</summary>
internal sealed class OperationDetails
{
    public Dictionary<string, object> Values { get; } = new(StringComparer.Ordinal);
}
