using System.Security.Claims;
using System.Text.Json.Serialization;
using Har.Deployment;
using Har.Service.Endpoints.Schemas;
using Har.Service.Infrastructure;
using Har.Service.Security;

namespace Har.Service.Endpoints;

/// <summary>
/// <c>POST /v1/models/{version}/retire</c> and <c>/reinstate</c> (operators): a version taken out of service by an audited
/// decision (no rollout of it, no rollback to it), and taken back. The decision is an entry of the audit log, so every
/// replica sharing the log follows it.
/// </summary>
internal static class ModelRetirementEndpoints
{
    private const string Expected = "a JSON object {\"reason\": \"why\"} (required, at most 2,048 characters; recorded in the audit log)";

    public static void MapModelRetirementEndpoints(this IEndpointRouteBuilder app)
    {
        var models = app.MapGroup("/v1/models");
        models.MapPost("/{version}/retire", (string version, HttpRequest request, ModelRegistry registry, CancellationToken ct) => DecideAsync(version, request, registry, retire: true, ct))
            .RequireAuthorization(Roles.OperatorPolicy)
            .WithName("retireModel")
            .WithTags("Models")
            .WithSummary("Retire a version: no rollout of it and no rollback to it until it is reinstated")
            .WithDescription("Refused (409) for the current version, a running rollout's champion or candidate, and the version a promoted rollout can still roll back to. Retiring a retired version answers its retirement and records nothing. The version's files stay, verified as before.")
            .WithRequestBody(Expected, true, [typeof(ModelDecisionRequest)], "application/json")
            .Produces<ModelVersionResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 404, 409, 413, 415, 503);
        models.MapPost("/{version}/reinstate", (string version, HttpRequest request, ModelRegistry registry, CancellationToken ct) => DecideAsync(version, request, registry, retire: false, ct))
            .RequireAuthorization(Roles.OperatorPolicy)
            .WithName("reinstateModel")
            .WithTags("Models")
            .WithSummary("Take a retirement back: the version can be rolled out and rolled back to again")
            .WithDescription("A version that is not retired is answered as it is, and nothing is recorded.")
            .WithRequestBody(Expected, true, [typeof(ModelDecisionRequest)], "application/json")
            .Produces<ModelVersionResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 404, 413, 415, 503);
    }

    /// <summary>A version as listed: its identity and the retirement in force, or null.</summary>
    internal static object ToJson(RegisteredModel m, ModelRetirement? retirement) => new
    {
        version = m.Version,
        name = m.ModelName,
        sha256 = m.Sha256,
        parameters = m.Parameters,
        registered_at = m.RegisteredAt,
        deployment_id = m.DeploymentId,
        retired = retirement is null ? null : new
        {
            reason = retirement.Reason,
            by = retirement.Actor,
            at = retirement.RetiredAt,
            audit_index = retirement.AuditIndex,
        },
    };

    private static async Task<IResult> DecideAsync(string version, HttpRequest request, ModelRegistry registry, bool retire, CancellationToken ct)
    {
        var (body, error) = await ServiceJson.ReadAsync<DecisionBody>(request, Expected, ct);
        if (error is not null)
        {
            return error;
        }

        if (string.IsNullOrWhiteSpace(body!.Reason))
        {
            return Results.Problem(statusCode: 400, detail: $"'reason' is {(body.Reason is null ? "missing" : "blank")}; expected {Expected}.");
        }

        // The registry's own checks (version format, length, control characters) answer 400 through the host's handler;
        // an unknown version 404; a version in use 409 (ModelInUseException); an unwritable log 503.
        var actor = request.HttpContext.User.FindFirstValue(ClaimTypes.Name) ?? "anonymous";
        var model = registry.Get(version);
        if (retire)
        {
            registry.Retire(model.Version, body.Reason, actor);
        }
        else
        {
            registry.Reinstate(model.Version, body.Reason, actor);
        }

        return Results.Ok(ToJson(model, registry.GetRetirement(model.Version)));
    }

    private sealed record DecisionBody([property: JsonPropertyName("reason")] string? Reason);
}
