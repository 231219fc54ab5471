using System.Security.Claims;
using System.Text.Json.Serialization;
using Har.Deployment;
using Har.Service.Endpoints.Schemas;
using Har.Service.Infrastructure;
using Har.Service.Security;

namespace Har.Service.Endpoints;

/// <summary>Backups: take one now, list them, download one (operators only: an archive holds every model and, by default, the signing key).</summary>
internal static class BackupEndpoints
{
    /// <summary>The OpenAPI tag of the backup routes.</summary>
    public const string Tag = "Backups";

    public static void MapBackupEndpoints(this IEndpointRouteBuilder app)
    {
        var backups = app.MapGroup("/v1/backups").RequireAuthorization(Roles.OperatorPolicy);
        backups.MapPost("", CreateAsync)
            .WithName("createBackup")
            .WithTags(Tag)
            .WithSummary("Take a backup now")
            .WithRequestBody("Optional: {\"reason\": \"…\"} (recorded in the audit log and the manifest; at most 8,192 characters).", false, [typeof(BackupRequest)], "application/json")
            .Produces<Stream>(StatusCodes.Status201Created, "application/gzip")
            .Produces<BackupResponse>(StatusCodes.Status201Created)
            .WithResponseHeader(StatusCodes.Status201Created, SummaryHeader, "With Accept: application/gzip (the archive is the body): the backup's summary, base64 of its JSON (at most 20 pruned names).")
            .ProducesProblems(400, 413, 415, 503)
            .WithDescription("Takes a backup while the service serves. Answers its summary (application/json), or with Accept: application/gzip the archive itself with the summary (base64 JSON) in the Har-Backup-Summary header: behind a load balancer, no second request has to find the replica that holds the archive.");
        backups.MapGet("", (Backups service) => Results.Ok(new
        {
            backups = DeploymentBackup.List(service.Directory).Select(f => new
            {
                backup_id = f.Name[..^".tar.gz".Length],
                bytes = f.Length,
                written_at = new DateTimeOffset(f.LastWriteTimeUtc, TimeSpan.Zero),
            }).ToArray(),
        }))
            .WithName("listBackups")
            .WithTags(Tag)
            .WithSummary("The backup archives, newest first")
            .Produces<BackupListResponse>(StatusCodes.Status200OK);
        backups.MapGet("/{id}", (string id, Backups service) =>
        {
            // Only an archive of the listing: the id never becomes a path by itself.
            var file = DeploymentBackup.List(service.Directory).FirstOrDefault(f => f.Name == id + ".tar.gz");
            return file is null
                ? Results.Problem(statusCode: 404, detail: $"No backup '{(id.Length > 64 ? id[..64] + "…" : id)}'; GET /v1/backups lists them.")
                : Results.File(file.FullName, "application/gzip", file.Name);
        })
            .WithName("downloadBackup")
            .WithTags(Tag)
            .WithSummary("Download a backup archive")
            .Produces<Stream>(StatusCodes.Status200OK, "application/gzip")
            .ProducesProblems(404);
    }

    private static async Task<IResult> CreateAsync(HttpRequest request, Backups service, CancellationToken ct)
    {
        CreateRequest? body = null;
        if (request.ContentLength is > 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count > 0))
        {
            var (parsed, error) = await ServiceJson.ReadAsync<CreateRequest>(request, "{\"reason\": \"…\"}", ct);
            if (error is not null)
            {
                return error;
            }

            body = parsed;
        }

        // Bounded as the rollout routes' texts: the reason goes into the audit log and the archive's manifest (found
        // from outside: 100,000 characters were taken, and beyond 1 MiB the refusal named the audit record, not reason).
        if (body?.Reason is { Length: > RolloutTexts.MaxLength } reason)
        {
            return Results.Problem(statusCode: 400, detail: string.Create(System.Globalization.CultureInfo.InvariantCulture, $"reason has {reason.Length:N0} characters; expected at most {RolloutTexts.MaxLength:N0} (it is recorded in the audit log and the backup's manifest). Nothing was backed up."));
        }

        var actor = request.HttpContext.User.FindFirstValue(ClaimTypes.Name) ?? "anonymous";
        var result = await service.TakeAsync(actor, body?.Reason ?? "taken through the HTTP API", ct);
        if (!WantsArchive(request))
        {
            return Results.Created($"/v1/backups/{result.BackupId}", ToJson(result));
        }

        // The archive itself in the answer: behind a load balancer the GET that would fetch it can reach another replica,
        // which does not hold it (archives are written to the data folder of the replica that took them).
        var response = request.HttpContext.Response;
        response.StatusCode = StatusCodes.Status201Created;
        response.Headers.Location = $"/v1/backups/{result.BackupId}";
        response.Headers[SummaryHeader] = Convert.ToBase64String(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(ToJson(result, MaxPrunedInHeader)));
        response.ContentType = "application/gzip";
        response.ContentLength = new FileInfo(result.ArchivePath).Length;
        await response.SendFileAsync(result.ArchivePath, ct);
        return Results.Empty;
    }

    /// <summary>The header that carries the backup's summary (base64 of the JSON answer) when the archive is the body.</summary>
    internal const string SummaryHeader = "Har-Backup-Summary";

    /// <summary>Whether the client asked for the archive itself (<c>Accept: application/gzip</c>) rather than its summary.</summary>
    private static bool WantsArchive(HttpRequest request) =>
        request.GetTypedHeaders().Accept.Any(a => a.MediaType.Equals("application/gzip", StringComparison.OrdinalIgnoreCase) && a.Quality is not 0);

    /// <summary>
    /// The backup's summary, the JSON answer and (base64) the <see cref="SummaryHeader"/>; at most
    /// <paramref name="maxPruned"/> pruned names (the header's <see cref="MaxPrunedInHeader"/> keeps it under a proxy's limit
    /// on response headers, nginx: 4 or 8 KB by default, whatever Keep pruned), and their total.
    /// </summary>
    internal static object ToJson(DeploymentBackupResult r, int maxPruned = int.MaxValue) => new
    {
        backup_id = r.BackupId,
        sha256 = r.Sha256,
        bytes = r.Bytes,
        audit_entries = r.AuditEntries,
        files = r.Files,
        labelled_windows = r.LabelledWindows,
        current_version = r.CurrentVersion,
        versions = r.Versions,
        pruned = r.Pruned.Take(maxPruned).ToArray(),
        pruned_total = r.Pruned.Count,
    };

    private const int MaxPrunedInHeader = 20;

    private sealed record CreateRequest([property: JsonPropertyName("reason")] string? Reason);
}
