using Har.Audit;
using Har.Deployment;
using Har.Service;
using Har.Service.Endpoints;
using Har.Service.Infrastructure;
using Har.Service.Security;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Prometheus;

// Har.Service composes the four packages: it holds wiring, security and HTTP, no domain logic.
// Configuration (appsettings.json) sits beside the executable; relative data paths are from the working directory.
// --list-routes: print the routes the service maps (method, pattern; JSON) and exit, without opening any storage.
var listRoutes = args.Contains(ServiceOpenApi.ListRoutesSwitch);
args = [.. args.Where(a => a != ServiceOpenApi.ListRoutesSwitch)];
// prometheus-net republishes every System.Diagnostics.Metrics meter on /metrics by default. The Har packages already export
// their prometheus-net collectors there; their meters (for OpenTelemetry) would appear a second time, as gauges named
// har_inference_har_inference_requests_total and the like. Other meters (ASP.NET Core, Kestrel, the runtime) stay.
Metrics.ConfigureMeterAdapter(o => o.InstrumentFilterPredicate = HostingExtensions.RepublishOnMetricsEndpoint);
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Logging.ClearProviders();
builder.Logging.AddJsonConsole(o =>
{
    o.IncludeScopes = true;
    HostingExtensions.StampLines(o);
});
builder.Logging.AddFilter("Microsoft.AspNetCore.DataProtection", LogLevel.Error);

// The exception handler logs every exception at Error, client errors included; UseServiceErrors logs the real (5xx) ones.
builder.Logging.AddFilter("Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware", LogLevel.None);

var options = builder.Configuration.GetSection(ServiceOptions.Section).Get<ServiceOptions>() ?? new ServiceOptions();
builder.Services.AddOptions<ServiceOptions>().Bind(builder.Configuration.GetSection(ServiceOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
var dataDirectory = Path.GetFullPath(options.DataDirectory);
var modelsDirectory = builder.Configuration["Har:ModelsDirectory"] ?? Path.Combine(AppContext.BaseDirectory, "models");
if (!listRoutes)
{
    Directory.CreateDirectory(dataDirectory);
}

Microsoft.AspNetCore.Builder.ForwardedHeadersOptions? forwarded;
string? generatedKeyFile = null;
using (var bootLoggerFactory = LoggerFactory.Create(l => l.AddJsonConsole(HostingExtensions.StampLines)))
{
    var bootLogger = bootLoggerFactory.CreateLogger("Har.Service");
    List<ApiKeyEntry> keys;
    try
    {
        // Checked before anything is written (found from outside: a webhook of an unknown type was refused after the
        // operator key file had been generated).
        forwarded = HostingExtensions.ForwardedHeaders(options);
        WebhookOptions.Validate(options.Webhooks);
        PredictionBodies.Validate(options);

        // --list-routes needs no key: it must not generate (and write) an operator key where it happens to run.
        keys = listRoutes ? [] : ApiKeyBootstrap.Resolve(options, dataDirectory, bootLogger, out generatedKeyFile);
    }
    catch (InvalidOperationException ex)
    {
        // A configuration mistake: say what is wrong and stop (exit code 2), no stack trace.
        Log.CannotStart(bootLogger, ex.Message);
        return 2;
    }

    builder.AddServiceSecurity(options, keys);
}

builder.AddServiceLimits(options).AddServiceProblemDetails(
[
    (dataDirectory, "<data>"),
    (options.Backup.Directory ?? "", "<backups>"),
    (options.AuditDirectory ?? "", "<audit>"),
    (modelsDirectory, "<models>"),
    (AppContext.BaseDirectory, "<app>"),
    (Path.GetTempPath(), "<temp>"),
    (Environment.CurrentDirectory, "<cwd>"),
]);
builder.Services.AddSingleton(TimeProvider.System);

// Audit log: a folder owned by this process, or PostgreSQL shared by every replica when ConnectionStrings:Har is set;
// with a signing key generated on first start outside the log folder.
var signingKeyGenerated = false;
var signingKey = listRoutes ? Path.Combine(dataDirectory, "keys", "audit.key") : Bootstrap.EnsureSigningKey(dataDirectory, out signingKeyGenerated);
builder.Services.AddHarAudit(o =>
{
    // One or the other (the library refuses both): set, the fleet's log in PostgreSQL (ConnectionStrings__Har); else the folder.
    o.ConnectionString = builder.Configuration.GetConnectionString("Har");
    o.Directory = string.IsNullOrWhiteSpace(o.ConnectionString) ? options.AuditDirectory ?? Path.Combine(dataDirectory, "audit") : string.Empty;
    o.Origin = Bootstrap.Origin;
    o.SigningKeyPath = signingKey;
}).AddCheckpointSigning(); // a signed checkpoint every minute the log grew, and at shutdown

// Registry, serving pipeline (windowing, routing, batching, observers: metrics, rollout analysis, drift) and
// rollout controller (the control plane), seeded with the bundled models: see Bootstrap.AddServing.
builder.AddServing(options, dataDirectory, modelsDirectory);
builder.Services.AddHostedService<StreamMaintenance>();
builder.Services.AddHostedService<NativeMemoryTrim>();
builder.Services.AddHostedService<ControllerLoop>();
builder.Services.AddSingleton<RefusalTracker>();
builder.Services.AddSingleton<WindowBudget>();
builder.Services.AddSingleton<StreamQuota>();
builder.Services.AddSingleton<CapacityShares>();
builder.Services.AddHostedService<RefusalSummaryService>();
builder.Services.AddSingleton<FeedbackAuditSummary>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<FeedbackAuditSummary>());
builder.Services.AddHostedService<DeliveryMetrics>();

// Backups (POST /v1/backups, and before each rollout with Har:Service:Backup:BeforeRollout): registry, rollout state and audit log in one verified archive.
var backupDirectory = Path.GetFullPath(options.Backup.Directory ?? Path.Combine(dataDirectory, "backups"));
BackupMetrics.Initialize(options.Backup, backupDirectory);
builder.Services.AddSingleton(sp => new Backups(
    sp.GetRequiredService<ModelRegistry>(), sp.GetRequiredService<AuditLog>(), sp, options.Backup, backupDirectory, signingKey));

// Readiness: 503 only when predictions cannot be served; an audit log that cannot be written makes it
// Degraded (still 200: predictions keep flowing) and says that operations are unavailable (issue 17, point 4).
// 'operations' is the audit log's own state (AuditLog.State, quarantine, checkpoint signer): no probe writes.
builder.Services.AddHealthChecks()
    .AddCheck<ServingReadinessCheck>("serving", tags: [HealthEndpoints.ReadyTag])
    .AddCheck<AuditLogHealthCheck>("operations", failureStatus: HealthStatus.Degraded, tags: [HealthEndpoints.ReadyTag], timeout: TimeSpan.FromSeconds(3)); // a fleet's database that does not answer: Degraded within 3 s, not a /ready that hangs
builder.AddServiceOpenApi();

var app = builder.Build();
if (listRoutes)
{
    app.MapServiceEndpoints();
    ServiceOpenApi.PrintRoutes(app);
    return 0;
}

if (app.Services.GetRequiredService<ConnectionLimits>() is { OpenFileLimit: { } openFiles } connections && connections.Capacity < options.MaxConnections)
{
    Log.ConnectionCapacityLowered(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Har.Service"), connections.Capacity, options.MaxConnections, openFiles, ConnectionLimits.Reserved(openFiles));
}

// Seed before anything resolves the controller (it loads the current version on open).
// A disk that cannot be written (the audit log cannot open) must not stop the start: the process comes up,
// /ready says what is missing, and the services open once the disk is writable (issue 17, point 4).
try
{
    var registry = app.Services.GetRequiredService<ModelRegistry>();
    // Checked when the registry and its log share the data folder (the default layout): with Har:Service:AuditDirectory
    // elsewhere the operator gave them separate lifetimes, and a fleet's registry lives in PostgreSQL.
    if (builder.Configuration.GetConnectionString("Har") is null && options.AuditDirectory is null && Bootstrap.LostRegistry(registry, Path.Combine(dataDirectory, "registry"), app.Services.GetRequiredService<AuditLog>()) is { } lost)
    {
        // Seeding would register the bundled models into an empty registry beside a log that records others, and
        // serve them as if nothing had happened (found from outside: registry/ deleted while the service was stopped).
        Log.CannotStart(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Har.Service"), lost);
        await StopAsync(app);
        return 2;
    }

    // A signing key generated now beside a log signed by another key: the key was lost, not new (found from outside: the
    // service generated a key and signed on with it, and the log's verifiers rejected every checkpoint after).
    var auditLog = app.Services.GetRequiredService<AuditLog>();
    var startLogger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Har.Service");
    try
    {
        if (Bootstrap.LostSigningKey(auditLog, signingKey, signingKeyGenerated) is { } lostKey)
        {
            // "Nothing was generated or changed": the operator key file generated by this start goes too (found from
            // outside, restoring an archive taken without its signing key: the refused start left a new api-keys.json).
            if (generatedKeyFile is not null)
            {
                File.Delete(generatedKeyFile);
            }

            Log.CannotStart(startLogger, lostKey);
            await StopAsync(app);
            return 2;
        }

        if (await Bootstrap.RecordSigningKeyChangeAsync(auditLog, signingKey, CancellationToken.None) is { } keyChange)
        {
            Log.SigningKeyChanged(startLogger, keyChange);
        }
    }
    catch (AuditLogUnavailableException ex)
    {
        // A fleet's database that does not answer yet: predictions need none, so the start goes on unchecked.
        Log.SigningKeyUnchecked(startLogger, ex);
    }

    Bootstrap.SeedRegistry(registry, modelsDirectory, startLogger);

    // Open the pipeline now: a configuration it cannot serve with (a drift profile of other channels than the model's,
    // a ContextFrames below the model's) stops the start with its reason instead of leaving a service that answers 500.
    try
    {
        app.Services.GetRequiredService<ServingPipeline>();
    }
    catch (ArgumentException ex)
    {
        Log.CannotStart(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Har.Service"), ex.Message);
        await StopAsync(app);
        return 2;
    }
    catch (Exception ex) when (ex is not OutOfMemoryException)
    {
        // Anything else (a disk, a damaged model or pointer) is reported by /ready and by the loops that need the
        // pipeline, which retry or stop the service with its cause, as they did before this check.
    }
}
catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
{
    var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Har.Service");
    if (ex is IOException && ex.Message.Contains("is open in another process", StringComparison.Ordinal))
    {
        // Another service owns this data folder: waiting would leave a process that answers nothing (every health
        // check and request queued behind the lock) and looks like a disk fault.
        Log.CannotStart(logger, $"the data folder '{dataDirectory}' is in use by another Har.Service (its audit log's lock is held): stop that one, or give this one its own Har:Service:DataDirectory. {ex.Message}");
        await StopAsync(app);
        return 2;
    }

    Log.StartingDegraded(logger, ex);
}

// Order matters for the audit log: every refusal (401 for invalid credentials, 401/403 from authorization, 429 from
// the rate limiter, 404/405 from routing) is counted by the outermost middleware; only requests that passed authentication,
// rate limiting and authorization reach the audit middleware (issue 17, point 2).
// Behind trusted proxies (Har:Service:TrustedProxies) the client is the address their X-Forwarded-For names, for
// every per-client limit, the refusal summary and the audit log; first, so everything after sees it.
if (forwarded is not null)
{
    app.UseForwardedHeaders(forwarded);
}

app.UseMiddleware<RefusalCountingMiddleware>();
app.UseServiceErrors();
app.UseMiddleware<RequestTargetValidationMiddleware>();
app.UseMethodsBeforeRouting();
app.UseRouting();
app.UseHttpMethodsOnly();
app.UseHttpMetrics(HostingExtensions.HttpMetricsOptions);
app.UseErrorStatusForMetrics();
app.UseCors(HostingExtensions.CorsPolicy);
app.UseAuthentication();
app.UseRateLimiter();
app.UseCredentialsOrNone();
app.UseAuthorization();
app.UsePredictionBodiesAndSlots();
app.UseMiddleware<OperationAuditMiddleware>();

app.MapServiceEndpoints();
HostingExtensions.CreateHttpSeries(app);

try
{
    app.Run();
}
catch (OperationCanceledException) when (Environment.ExitCode != 0)
{
    // A background service failed while the host was starting (ControllerLoop: a damaged registry pointer, an
    // unreadable rollout state), which cancels Kestrel's bind: the failure is logged with its cause; exit with its code
    // instead of an unhandled exception (SIGABRT and a core dump).
}

return Environment.ExitCode; // 1 when a background service failed and stopped the host (ControllerLoop), not a clean 0

// The console logger writes from a queue: a start refused with an exit code must flush it first, or the line saying why
// is lost (found in CI: a refusal's exit code 2 came with its log line missing).
static async Task StopAsync(WebApplication app) => await app.DisposeAsync();

/// <summary>Every route of the service (also what <c>--list-routes</c> prints and the OpenAPI document describes).</summary>
internal static class ServiceRoutes
{
    public static void MapServiceEndpoints(this WebApplication app)
    {
        app.MapHealthEndpoints();
        app.MapMetrics("/metrics").WithMetadata(new HttpMethodMetadata(["GET"])); // a scrape is a GET: others are 405, not a scrape
        app.MapServiceOpenApi();
        app.MapPredictEndpoints();
        app.MapOperationsEndpoints();
        app.MapModelRetirementEndpoints();
        app.MapRolloutHistoryEndpoints();
        app.MapRollbackEndpoints();
        app.MapAuditEndpoints();
        app.MapFeedbackEndpoints();
        app.MapBackupEndpoints();
    }
}

/// <summary>Runs the rollout controller's reconcile loop (analysis intervals, promotion, automatic rollback).</summary>
internal sealed class ControllerLoop(IServiceProvider services, TimeProvider time, ILogger<ControllerLoop> logger) : BackgroundService
{
    /// <summary>Resolves the controller when it can be opened (its registry and audit log need a writable disk), retrying every 5 s.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            RolloutController? controller = null;
            while (controller is null)
            {
                try
                {
                    controller = services.GetRequiredService<RolloutController>();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    Log.ControllerUnavailable(logger, ex);
                    await Task.Delay(TimeSpan.FromSeconds(5), time, stoppingToken);
                }
            }

            await controller.RunAsync(stoppingToken);
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            // The host stops on a failed background service; it must not look like a clean exit to its supervisor.
            Log.ControllerFailed(logger, ex);
            Environment.ExitCode = 1;
            throw;
        }
    }
}
