using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using System.Text.Json.Serialization;
using Har.Deployment;
using Har.Drift;
using Har.Inference;
using Har.Service.Endpoints.Schemas;
using Har.Service.Infrastructure;
using Har.Service.Security;
using Microsoft.Extensions.Options;

namespace Har.Service.Endpoints;

/// <summary>Models (registry), rollouts (controller) and drift (monitor) endpoints.</summary>
internal static class OperationsEndpoints
{
    public static void MapOperationsEndpoints(this IEndpointRouteBuilder app)
    {
        var models = app.MapGroup("/v1/models");
        models.MapGet("", ListModels).RequireAuthorization(Roles.PredictPolicy).AddEndpointFilter<ActorNames>()
            .WithName("listModels")
            .WithTags(ModelsTag)
            .WithSummary("The registered versions, in version order")
            .WithPagedQuery(new QueryParameter("retired", "true: only retired versions; false: only versions that are not retired.", ["true", "false"]))
            .Produces<ModelListResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400);
        models.MapGet("/{version}", (string version, ModelRegistry registry, Har.Audit.AuditLog log) =>
        {
            // Cached: the identity is immutable and the hashes were verified at registration, load, promotion
            // and on the registry's schedule; a read never re-hashes the file or loads the model.
            var model = registry.Get(version);
            var verification = registry.GetVerification(model.Version);
            return Results.Ok(new
            {
                model = ToJson(model, registry),
                current = registry.CurrentVersion == model.Version,
                verified = verification.IsValid,
                verified_at = verification.VerifiedAt,
                problems = verification.Problems,

                // The deployment record as completed at promotion (approvers, smoke test, replicas, promoted at), or null.
                deployment = CompletedDeployment(log, model),

                // The card as registered (the ONNX metadata the registry wrote beside the model, anchored in the log):
                // a client learns the channels, their order and units, the window and the labels from it.
                card = Card(model),
            });
        }).RequireAuthorization(Roles.PredictPolicy).AddEndpointFilter<ActorNames>()
            .WithName("getModel")
            .WithTags(ModelsTag)
            .WithSummary("One version: its card, verification and completed deployment record")
            .Produces<ModelDetailResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 404, 503);
        models.MapPost("", RegisterAsync).RequireAuthorization(Roles.OperatorPolicy)
            .WithName("registerModel")
            .WithTags(ModelsTag)
            .WithSummary("Register a model version")
            .WithRequestBody("The .onnx file (its model card in the ONNX metadata; every tensor inside the file), at most Har:Service:MaxModelUploadBytes; deployment details as query parameters (approved_by, run_id, target).", true, [], "application/octet-stream")
            .WithQueryParameters([.. RegistrationParameters.Select(p => new QueryParameter(p.Name, $"Optional: {p.Meaning}; printable text, written into the version's immutable deployment record.", MaxLength: p.MaxLength))])
            .Produces<ModelVersionResponse>(StatusCodes.Status201Created)
            .ProducesProblems(400, 409, 413, 415, 422, 503);

        var rollouts = app.MapGroup("/v1/rollouts");
        rollouts.MapPost("", StartAsync).RequireAuthorization(Roles.OperatorPolicy)
            .WithName("startRollout")
            .WithTags(RolloutsTag)
            .WithSummary("Start a rollout of a registered version")
            .WithRequestBody(StartExpected + " (strategy: recreate, blue-green, canary or shadow; canary by default).", true, [typeof(RolloutStartRequest)], "application/json")
            .Produces<RolloutStatusResponse>(StatusCodes.Status202Accepted)
            .WithResponseHeader(StatusCodes.Status202Accepted, "Har-Backup-Id", "With Har:Service:Backup:BeforeRollout: the backup taken before the rollout.")
            .ProducesProblems(400, 404, 409, 413, 415, 422, 503);
        rollouts.MapGet("/current", (RolloutController controller) =>
            controller.Status is { } status
                ? Results.Ok(ToJson(status, controller))
                : Results.Problem(statusCode: 404, detail: "There has been no rollout on this registry.")).RequireAuthorization(Roles.PredictPolicy).AddEndpointFilter<ActorNames>()
            .WithName("getCurrentRollout")
            .WithTags(RolloutsTag)
            .WithSummary("The current rollout's full state and last analysis")
            .Produces<RolloutStatusResponse>(StatusCodes.Status200OK)
            .ProducesProblems(404);
        rollouts.MapPost("/current/{action}", CommandAsync).RequireAuthorization(Roles.OperatorPolicy)
            .WithName("commandRollout")
            .WithTags(RolloutsTag)
            .WithSummary("Approve, promote, pause, resume, abort or roll back the current rollout")
            .WithDescription("action is approve, promote, pause, resume, abort or rollback (lower case, by name). rollback takes the body of POST /v1/rollouts/rollback and answers as it does; the others answer the rollout's state.")
            .WithRequestBody("Optional: " + CommandExpected + " (the expectations make the command conditional: 409 when the rollout is elsewhere); rollback also takes to, summary, cause and actions.", false, [typeof(RolloutCommandRequest), typeof(RollbackRequest)], "application/json")
            .Produces<RolloutStatusResponse>(StatusCodes.Status200OK)
            .ProducesAlternative<RollbackResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 409, 413, 415, 503);

        app.MapGet("/v1/drift", (IServiceProvider sp, string? device) =>
        {
            var monitor = sp.GetService<DeviceDriftMonitor>();
            if (monitor is null)
            {
                // A state of the service, not a failure: there is nothing to score against.
                return Results.Ok(new
                {
                    enabled = false,
                    detail = "Drift monitoring is off: no reference profile is configured (Har:Service:DriftProfilePath, or hapt-train-profile.json beside the models).",
                });
            }

            // Per device (the physics checks need one device's own stream); output drift over all devices' predictions.
            var options = sp.GetRequiredService<IOptions<DriftMonitorOptions>>().Value;
            var report = device is { Length: > 0 } ? monitor.GetLatest(device) : sp.GetService<Infrastructure.DriftLoop>()?.Latest;
            bool? monitored = device is { Length: > 0 } ? monitor.IsMonitored(device) : null;
            return Results.Ok(new
            {
                enabled = true,
                devices = monitor.DeviceCount,
                capacity = options.MaxDevices,
                monitored,
                detail = monitored == false
                    ? $"Device '{device}' has no drift monitor: it sent no window yet, sent none for {options.DeviceIdleTimeout} (idle), or came while all {options.MaxDevices} monitors (Har:Service:DriftMaxDevices) were held by devices that streamed within {options.MinimumIdleForEviction} or alarm. It is monitored from its first window after a monitor frees; har_drift_unmonitored_observations_total counts the predictions of devices waiting for one."
                    : null,
                device = report?.Device,
                scored = report is not null,
                report = report is null ? null : DriftJson(report),
                outputs = monitor.LatestOutputs is { } o ? OutputsJson(o) : null,
            });
        }).RequireAuthorization(Roles.PredictPolicy)
            .WithName("getDrift")
            .WithTags(DriftTag)
            .WithSummary("The drift report (per device with ?device=) and the pooled output drift")
            .WithQueryParameters(new QueryParameter("device", "A device (stream id): its latest report and whether it has a monitor; without it, the latest report over all devices.", MaxLength: RequestBodies.MaxStreamIdLength))
            .Produces<DriftResponse>(StatusCodes.Status200OK);

        app.MapGet("/v1/drift/alarms", ListAlarms).RequireAuthorization(Roles.PredictPolicy)
            .WithName("listDriftAlarms")
            .WithTags(DriftTag)
            .WithSummary("The live devices whose drift alarm is raised, in device-id order")
            .WithPagedQuery(new QueryParameter("cause", "Only alarms that name this cause.", AlarmCauses))
            .Produces<DriftAlarmsResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400);
    }

    private const string ModelsTag = "Models";
    private const string RolloutsTag = "Rollouts";
    private const string DriftTag = "Drift";
    private const string StartExpected = "{\"candidate\": \"1.1.0\", \"strategy\": \"canary\", \"reason\": \"…\"}";
    private const string CommandExpected = "{\"reason\": \"…\", \"expected_phase\": \"Progressing\", \"expected_revision\": 3}";

    /// <summary>The causes an alarm can name (what the <c>cause</c> filter accepts).</summary>
    private static readonly string[] AlarmCauses = [.. Enum.GetNames<DriftCause>().Where(n => n != nameof(DriftCause.None))];

    /// <summary>
    /// <c>GET /v1/drift/alarms</c>: the live devices whose drift alarm is raised (which devices the
    /// <c>har_drift_devices_alarmed</c> gauge counts, and why), in device-id order, page_size per page; next_page is the
    /// last device of the page (the next page starts after it, so a device that alarms meanwhile never shifts the pages).
    /// Filter: <c>cause</c>, a <see cref="DriftCause"/> name.
    /// </summary>
    private static IResult ListAlarms(HttpRequest request, IServiceProvider sp, string? cause, string? page, string? page_size)
    {
        var (query, error) = ListQuery.Parse(request, "cause");
        if (error is not null)
        {
            return error;
        }

        var (causeText, causeError) = query!.OneOf("cause", AlarmCauses);
        if (causeError is not null)
        {
            return causeError;
        }

        DriftCause? only = causeText is null ? null : Enum.Parse<DriftCause>(causeText);

        if (sp.GetService<DeviceDriftMonitor>() is not { } monitor)
        {
            return Results.Ok(new { enabled = false, devices = 0, alarmed = Array.Empty<object>(), next_page = (string?)null });
        }

        var all = monitor.GetAlarmed()
            .Where(r => only is null || r.Alarm!.Cause == only)
            .Where(r => query.Page is not { } after || string.CompareOrdinal(r.Device, after) > 0)
            .OrderBy(r => r.Device, StringComparer.Ordinal)
            .ToList();
        var items = all.Take(query.PageSize).ToArray();
        return Results.Ok(new
        {
            enabled = true,
            devices = monitor.DeviceCount,
            alarmed = items.Select(r => new { device = r.Device, alarm = AlarmJson(r.Alarm!) }).ToArray(),
            next_page = items.Length < all.Count ? items[^1].Device : null,
        });
    }

    /// <summary>
    /// <c>GET /v1/models</c>: the registered versions in version order, page_size per page; next_page is the last version
    /// of the page (the next page starts after it), so a version registered meanwhile never shifts the pages.
    /// </summary>
    private static IResult ListModels(HttpRequest request, ModelRegistry registry, string? page, string? page_size)
    {
        var (query, error) = ListQuery.Parse(request, "retired");
        if (error is not null)
        {
            return error;
        }

        var (retiredFilter, badFilter) = query!.OneOf("retired", ["true", "false"]);
        if (badFilter is not null)
        {
            return badFilter;
        }

        var registered = registry.List();
        var retirements = registry.GetRetirements(); // one read of the log's new entries for the whole page (in a fleet, one query)
        var all = registered.Select((m, position) => (Model: m, Retirement: retirements.GetValueOrDefault(m.Version), Position: position))
            .Where(v => retiredFilter is null || (v.Retirement is not null) == (retiredFilter == "true"))
            .ToList();
        var start = 0;
        if (query.Page is { } after)
        {
            // The versions after the cursor's in version order: a cursor whose version left the filtered list between two
            // pages (retired or reinstated meanwhile) still continues where it was.
            var cursor = -1;
            for (var k = 0; k < registered.Count && cursor < 0; k++)
            {
                cursor = registered[k].Version == after ? k : -1;
            }

            if (cursor < 0)
            {
                return ListQuery.Bad("page names no registered version; pass the previous response's next_page, or leave it out for the first page.");
            }

            start = all.FindIndex(v => v.Position > cursor);
            start = start < 0 ? all.Count : start;
        }

        var items = all.Skip(start).Take(query.PageSize).ToArray();
        return Results.Ok(new
        {
            current = registry.CurrentVersion,
            versions = items.Select(v => ModelRetirementEndpoints.ToJson(v.Model, v.Retirement)).ToArray(),
            next_page = start + items.Length < all.Count ? items[^1].Model.Version : null,
        });
    }

    /// <summary>
    /// The deployment details <c>POST /v1/models</c> takes as query parameters, and their longest values: they are
    /// written into the version's immutable deployment record, anchored in the audit log.
    /// </summary>
    private static readonly (string Name, int MaxLength, string Meaning)[] RegistrationParameters =
    [
        ("approved_by", 256, "who approved the version"),
        ("run_id", 128, "the experiment-tracking run that produced it"),
        ("target", 64, "the target environment, default har-service"),
    ];

    /// <summary>
    /// Each registration parameter once, non-empty, within its bound, as printable text (no control, format or
    /// line-separator characters), and no other parameter: what is written in the record is what was meant, a
    /// misspelt parameter is not silently dropped, and a repeated one is not joined with commas ("prod,staging").
    /// </summary>
    private static IResult? CheckRegistrationQuery(HttpRequest request)
    {
        var accepted = string.Join(", ", RegistrationParameters.Select(p => $"{p.Name} ({p.Meaning}; at most {p.MaxLength} characters)"));
        var unknown = request.Query.Keys.Where(k => !RegistrationParameters.Any(p => string.Equals(p.Name, k, StringComparison.OrdinalIgnoreCase))).ToArray();
        if (unknown.Length > 0)
        {
            return ListQuery.Bad($"Unknown query parameter{(unknown.Length == 1 ? "" : "s")} {string.Join(", ", unknown.Take(5).Select(k => $"'{ClientText.Shown(k, 32)}'"))}; POST /v1/models accepts {accepted}.");
        }

        foreach (var (name, maxLength, _) in RegistrationParameters)
        {
            if (!request.Query.TryGetValue(name, out var values))
            {
                continue;
            }

            var value = values.Count == 1 ? values[0] ?? "" : "";
            var problem = values.Count > 1 ? $"Query parameter '{name}' is given {values.Count} times; give it once."
                : value.Length == 0 ? $"{name} is empty; give a value or leave the parameter out."
                : value.Length > maxLength ? $"{name} has {value.Length} characters; at most {maxLength} are accepted."
                : ClientText.Hidden(value) is { } hidden ? $"{name} holds {hidden}; expected printable text, as it is written into the immutable deployment record."
                : null;
            if (problem is not null)
            {
                return ListQuery.Bad(problem);
            }
        }

        return null;
    }

    private static async Task<IResult> RegisterAsync(HttpRequest request, ModelRegistry registry, Microsoft.Extensions.Options.IOptions<ServiceOptions> options, CancellationToken ct)
    {
        // A model is larger than any prediction body: uploads (operators only) have their own limit, so raising it does
        // not raise the one every anonymous prediction body is held to (a 7.6 MB model was 413 at the shared 4 MiB).
        if (request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = options.Value.MaxModelUploadBytes;
        }

        // Before the upload is stored: nothing is written for a request that would be refused.
        if (CheckRegistrationQuery(request) is { } badQuery)
        {
            return badQuery;
        }

        if (request.ContentType is not { } type || !type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase))
        {
            return Results.Problem(statusCode: 415, detail: "Send the .onnx file as application/octet-stream (deployment details as query parameters: approved_by, run_id, target).");
        }

        // A private folder per upload, so error messages name "upload.onnx" and never a path of this machine.
        var folder = Directory.CreateTempSubdirectory("har-upload-");
        var temp = Path.Combine(folder.FullName, "upload.onnx");
        try
        {
            // Errors while receiving the body (too large, client gone) are the request's, mapped by the host's handler.
            long received;
            await using (var file = File.Create(temp))
            {
                await request.Body.CopyToAsync(file, ct);
                received = file.Length;
            }

            // curl -T or --data-binary @file with a misspelt file name sends nothing: say so, rather than that
            // "upload.onnx" (a name the client never sent) holds no graph.
            return received == 0
                ? Results.Problem(statusCode: 400, title: "Empty upload", detail: "The body is empty (0 bytes); send the .onnx file itself as application/octet-stream (curl --data-binary @model.onnx).")
                : Register(request, registry, temp);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static IResult Register(HttpRequest request, ModelRegistry registry, string temp)
    {
        try
        {
            var model = registry.Register(temp, new ModelRegistrationOptions
            {
                Deployer = request.HttpContext.User.FindFirstValue(ClaimTypes.Name),
                Method = "HTTP API",
                ApprovedBy = request.Query["approved_by"].ToString() is { Length: > 0 } a ? a : null,
                RunId = request.Query["run_id"].ToString() is { Length: > 0 } r ? r : null,
                EnvironmentTarget = request.Query["target"].ToString() is { Length: > 0 } t ? t : "har-service",
                MakeCurrentIfNone = true,
            });
            return Results.Created($"/v1/models/{model.Version}", ToJson(model, registry));
        }
        catch (ModelVersionConflictException conflict)
        {
            return Results.Problem(statusCode: 409, title: "Version already registered", detail: conflict.Message);
        }
        catch (ModelCardException card)
        {
            return Results.Problem(statusCode: 422, title: "Invalid model", detail: card.Message);
        }
        catch (ModelRegistryUnavailableException unavailable)
        {
            request.HttpContext.Response.Headers.RetryAfter = "5";
            return Results.Problem(statusCode: 503, title: "Operations unavailable", detail: unavailable.Message);
        }
        catch (IOException)
        {
            // The registry's own storage failed (full or read-only volume); the registration was undone.
            request.HttpContext.Response.Headers.RetryAfter = "5";
            return Results.Problem(statusCode: 503, title: "Registry storage unavailable", detail: "The model could not be written to the registry; nothing was registered. Retry when the registry volume is writable.");
        }
    }

    private static async Task<IResult> StartAsync(HttpRequest request, RolloutController controller, CancellationToken ct)
    {
        var (body, error) = await ServiceJson.ReadAsync<StartRequest>(request, StartExpected, ct);
        if (error is not null)
        {
            return error;
        }

        if (body!.Candidate is not { Length: > 0 } candidate)
        {
            return Results.Problem(statusCode: 400, detail: $"'candidate' is missing; expected {StartExpected}.");
        }

        // Found from outside: " " got the library's "The value cannot be an empty string or composed entirely of
        // whitespace.", which names no member.
        if (string.IsNullOrWhiteSpace(candidate))
        {
            return Results.Problem(statusCode: 400, detail: $"'candidate' is blank; expected a registered version such as 1.1.0: {StartExpected}.");
        }

        var strategy = body.Strategy ?? "canary";
        if (!controller.StrategyNames.Contains(strategy))
        {
            return Results.Problem(statusCode: 400, detail: $"Strategy '{strategy}' is not known; expected one of {string.Join(", ", controller.StrategyNames)}.");
        }

        // Backup before deploy (Har:Service:Backup:BeforeRollout): a failed backup refuses the start, nothing changed.
        var settings = request.HttpContext.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<ServiceOptions>>().Value;
        if (settings.Backup.BeforeRollout)
        {
            var backups = request.HttpContext.RequestServices.GetRequiredService<Infrastructure.Backups>();
            var backup = await backups.TakeAsync(Actor(request), $"before rollout of {candidate}", ct);
            request.HttpContext.Response.Headers["Har-Backup-Id"] = backup.BackupId;
        }

        var status = await controller.ExecuteAsync(RolloutCommand.Start(candidate, strategy, Actor(request), body.Reason ?? "started through the HTTP API"), ct);
        return Results.Accepted("/v1/rollouts/current", ToJson(status, controller));
    }

    private static async Task<IResult> CommandAsync([AllowedValues("approve", "promote", "pause", "resume", "abort", "rollback")] string action, HttpRequest request, RolloutController controller, CancellationToken ct)
    {
        if (action == "rollback")
        {
            // The same body as POST /v1/rollouts/rollback: a target ('to') and the incident report's fields.
            return await RollbackEndpoints.RollbackAsync(request, controller, ct);
        }

        // Exact names only: Enum.TryParse would also take "1" (= pause), "pause,abort" or " Pause".
        RolloutCommandKind? parsedKind = action switch
        {
            "approve" => RolloutCommandKind.Approve,
            "promote" => RolloutCommandKind.Promote,
            "pause" => RolloutCommandKind.Pause,
            "resume" => RolloutCommandKind.Resume,
            "abort" => RolloutCommandKind.Abort,
            "rollback" => RolloutCommandKind.Rollback,
            _ => null,
        };
        if (parsedKind is not { } kind)
        {
            return Results.Problem(statusCode: 400, title: "Unknown rollout action", detail: $"Unknown rollout action '{(action.Length > 32 ? action[..32] + "…" : action)}'; expected approve, promote, pause, resume, abort or rollback (lower case, by name).");
        }

        // The body is optional; when there is one it must be the JSON command.
        CommandRequest? body = null;
        if (request.ContentLength is > 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count > 0))
        {
            var (parsed, error) = await ServiceJson.ReadAsync<CommandRequest>(request, CommandExpected, ct);
            if (error is not null)
            {
                return error;
            }

            body = parsed;
        }

        var (expected, badPhase) = RollbackEndpoints.ExpectedPhase(body?.ExpectedPhase);
        if (badPhase is not null)
        {
            return badPhase;
        }

        var command = RolloutCommand.Create(kind, Actor(request), body?.Reason ?? $"{action} through the HTTP API") with
        {
            ExpectedPhase = expected,
            ExpectedRevision = body?.ExpectedRevision,
        };
        var status = await controller.ExecuteAsync(command, ct);
        return Results.Ok(ToJson(status, controller));
    }

    /// <summary>The latest <c>deployment.completed</c> entry of a version (the registration's record completed at promotion), or null.</summary>
    private static object? CompletedDeployment(Har.Audit.AuditLog log, RegisteredModel model)
    {
        Har.Audit.AuditEntry? latest = null;
        string? token = null;
        do
        {
            // Written by the rollout (entity: the rollout id) whose promotion completed it: one per promoted rollout.
            var page = log.Query(new Har.Audit.AuditQuery { EventType = "deployment.completed", PageSize = 100, PageToken = token });
            foreach (var entry in page.Entries)
            {
                if (entry.Record is Har.Audit.AuditEvent candidate && candidate.ActionDetails.TryGetProperty("version", out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String && v.GetString() == model.Version)
                {
                    latest = entry;
                }
            }

            token = page.NextPageToken;
        }
        while (token is not null);

        return latest?.Record is Har.Audit.AuditEvent e
            ? new { audit_index = latest.Index, details = System.Text.Json.Nodes.JsonNode.Parse(e.ActionDetails.GetRawText()) }
            : null;
    }

    /// <summary>
    /// The version's model card as the registry recorded it at registration (<c>config.json</c> beside <c>model.onnx</c>:
    /// the ONNX metadata, each value a string), or null when the version's folder holds none or it is not a card.
    /// </summary>
    private static Dictionary<string, string>? Card(RegisteredModel model)
    {
        var path = Path.Combine(Path.GetDirectoryName(model.ModelPath)!, "config.json");
        try
        {
            using var file = File.OpenRead(path);
            return System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(file);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static string Actor(HttpRequest request) => request.HttpContext.User.FindFirstValue(ClaimTypes.Name) ?? "anonymous";

    private static object ToJson(RegisteredModel m, ModelRegistry registry) => ModelRetirementEndpoints.ToJson(m, registry.GetRetirement(m.Version));

    private static object ToJson(RolloutStatus s, RolloutController controller) => new
    {
        rollout_id = s.RolloutId,
        phase = s.Phase.ToString(),
        revision = s.Revision,
        strategy = s.Strategy,
        champion = s.Champion,
        candidate = s.Candidate,
        step_index = s.StepIndex,
        steps = s.Steps.Select(step => new { kind = step.Kind.ToString(), percent = step.Percent, interval_seconds = step.Interval.TotalSeconds, required_passes = step.RequiredPasses }).ToArray(),
        candidate_percent = s.CandidatePercent,
        shadow_percent = s.ShadowPercent,
        consecutive_passes = s.ConsecutivePasses,
        failures = s.Failures,
        promoted = s.Promoted,
        started_by = s.StartedBy,
        started_at = s.StartedAt,
        updated_at = s.UpdatedAt,
        next_analysis_at = s.NextAnalysisAt,
        analyses_run = s.AnalysesRun,
        message = s.Message,
        current_version = controller.Registry.CurrentVersion,
        leader = controller.IsLeader, // whether this replica drives rollouts (always true in one process)
        last_analysis = s.LastAnalysis is { } a ? new
        {
            verdict = a.Verdict.ToString(),
            start = a.Start,
            end = a.End,
            gates = a.Gates.Select(g => new { gate = g.Gate, verdict = g.Verdict.ToString(), message = g.Message, evidence = FiniteOrNull(g.Evidence) }).ToArray(),
        } : null,
    };

    /// <summary>Gate evidence for JSON: a ratio over an empty baseline is infinite or NaN, which JSON cannot hold; it is sent as null.</summary>
    private static Dictionary<string, double?> FiniteOrNull(IReadOnlyDictionary<string, double> evidence)
    {
        var json = new Dictionary<string, double?>(evidence.Count, StringComparer.Ordinal);
        foreach (var (name, value) in evidence)
        {
            json[name] = double.IsFinite(value) ? value : null;
        }

        return json;
    }

    private static object DriftJson(DriftReport r) => new
    {
        reference_hash = r.ReferenceHash,
        correction = r.Correction.ToString(),
        alpha = r.Alpha,
        any_drifted = r.AnyDrifted,
        channels = r.Channels.Select(c => new
        {
            channel = c.Channel,
            verdict = c.Verdict.ToString(),
            score = c.Score,
            n = c.N,
            n_eff = c.EffectiveN,
            ks = c.Ks,
            psi = c.Psi,
        }).ToArray(),
        findings = r.Findings,
        alarm = r.Alarm is { } a ? AlarmJson(a) : null,
        @unchecked = r.Unchecked,
    };

    /// <summary>The pooled output drift of all devices, with the model's estimated accuracy (CBPE) against its reference accuracy.</summary>
    private static object OutputsJson(OutputVerdict o) => new
    {
        summary = o.ToString(),
        verdict = o.Verdict.ToString(),
        predictions = o.Predictions,
        estimated_accuracy = o.EstimatedAccuracy,
        estimated_accuracy_margin = o.EstimatedAccuracyMargin,
        reference_accuracy = o.ReferenceAccuracy,
        estimate_reliable = o.EstimateReliable,
        named_faults = o.NamedFaults.Select(f => new { cause = f.Cause.ToString(), channels = f.Channels, description = f.Description, reference_accuracy = f.ReferenceAccuracy, margin = f.Margin, predictions = f.Predictions }).ToArray(),
        unmatched_causes = o.UnmatchedCauses,
        unmatched_predictions = o.UnmatchedPredictions,
    };

    private static object AlarmJson(DriftAlarm a) => new
    {
        raised = a.Raised,
        cause = a.Cause.ToString(),
        channels = a.Channels,
        diagnosis = a.Diagnosis,
    };

    private sealed record StartRequest(
        [property: JsonPropertyName("candidate")] string? Candidate,
        [property: JsonPropertyName("strategy")] string? Strategy,
        [property: JsonPropertyName("reason")] string? Reason);

    private sealed record CommandRequest(
        [property: JsonPropertyName("reason")] string? Reason,
        [property: JsonPropertyName("expected_phase")] string? ExpectedPhase,
        [property: JsonPropertyName("expected_revision")] long? ExpectedRevision);
}
