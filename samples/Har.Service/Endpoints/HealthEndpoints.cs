using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Har.Service.Endpoints;

/// <summary>
/// <c>GET /health</c> (liveness) and <c>GET /ready</c> (readiness), both JSON with every check's name, status,
/// description and duration. <c>/health</c> answers 200 while the process runs (a liveness probe must not restart a
/// pod because its disk is read-only) and shows every check; <c>/ready</c> runs the checks tagged <c>ready</c> and
/// answers 503 only when one is Unhealthy (predictions cannot be served): Degraded (operations refused, predictions
/// served) stays 200 so the pod keeps receiving traffic.
/// </summary>
internal static class HealthEndpoints
{
    public const string ReadyTag = "ready";

    /// <summary>The OpenAPI tag of health, readiness and metrics.</summary>
    public const string Tag = "Health and metrics";

    public static void MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", async (HealthCheckService health, Infrastructure.InternalPaths paths, HttpContext context, CancellationToken ct) =>
        {
            var report = await health.CheckHealthAsync(ct);
            return Write(context, paths, report, StatusCodes.Status200OK);
        })
        .WithName("getHealth")
        .WithTags(Tag)
        .WithSummary("Liveness, with every check")
        .WithDescription("200 while the process runs; the body shows each check (serving, operations) so people and dashboards see what is degraded. Never rate limited.")
        .Produces<HealthResponse>(StatusCodes.Status200OK);

        app.MapGet("/ready", async (HealthCheckService health, Infrastructure.InternalPaths paths, HttpContext context, CancellationToken ct) =>
        {
            var report = await health.CheckHealthAsync(r => r.Tags.Contains(ReadyTag), ct);
            return Write(context, paths, report, report.Status == HealthStatus.Unhealthy ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK);
        })
        .WithName("getReadiness")
        .WithTags(Tag)
        .WithSummary("Readiness")
        .WithDescription("503 when predictions cannot be served (a check is Unhealthy); Degraded (200) when operations are refused because the audit log cannot be written, or a check reports a problem that does not stop predictions. Never rate limited.")
        .Produces<HealthResponse>(StatusCodes.Status200OK)
        .Produces<HealthResponse>(StatusCodes.Status503ServiceUnavailable);
    }

    private static IResult Write(HttpContext context, Infrastructure.InternalPaths paths, HealthReport report, int status)
    {
        context.Response.Headers.CacheControl = "no-store, no-cache";
        var checks = new Dictionary<string, HealthCheckEntry>(StringComparer.Ordinal);
        foreach (var (name, entry) in report.Entries)
        {
            checks[name] = new HealthCheckEntry(
                name,
                entry.Status.ToString(),
                entry.Description is null ? null : paths.Scrub(entry.Description),
                Math.Round(entry.Duration.TotalMilliseconds, 3),
                entry.Data.Count == 0 ? null : entry.Data.ToDictionary(d => d.Key, d => d.Value is string text ? paths.Scrub(text) : d.Value));
        }

        return Results.Json(new HealthResponse(report.Status.ToString(), Math.Round(report.TotalDuration.TotalMilliseconds, 3), checks), statusCode: status);
    }

    /// <summary>The body of <c>/health</c> and <c>/ready</c>.</summary>
    internal sealed record HealthResponse(
        [property: JsonPropertyName("status"), EnumDataType(typeof(HealthStatus))] string Status,
        [property: JsonPropertyName("total_duration_ms")] double TotalDurationMs,
        [property: JsonPropertyName("checks")] IReadOnlyDictionary<string, HealthCheckEntry> Checks);

    /// <summary>One check: its name, status (Healthy, Degraded, Unhealthy), what it found, how long it took and its data.</summary>
    internal sealed record HealthCheckEntry(
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("status"), EnumDataType(typeof(HealthStatus))] string Status,
        [property: JsonPropertyName("description")] string? Description,
        [property: JsonPropertyName("duration_ms")] double DurationMs,
        [property: JsonPropertyName("data")] IReadOnlyDictionary<string, object>? Data);
}
