using Har.Audit;
using Har.Deployment;
using Har.Drift;
using Har.Inference;
using Har.Service;
using Har.Service.Endpoints;
using Har.Service.Infrastructure;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Prometheus;

// Har.Service composes the four packages: it holds wiring, security and HTTP, no domain logic.
// Configuration (appsettings.json) sits beside the executable; relative data paths are from the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Logging.ClearProviders();
builder.Logging.AddJsonConsole(o => o.IncludeScopes = true);
builder.Logging.AddFilter("Microsoft.AspNetCore.DataProtection", LogLevel.Error);

// The exception handler logs every exception at Error, client errors included; UseServiceErrors logs the real (5xx) ones.
builder.Logging.AddFilter("Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware", LogLevel.None);

var options = builder.Configuration.GetSection(ServiceOptions.Section).Get<ServiceOptions>() ?? new ServiceOptions();
builder.Services.AddOptions<ServiceOptions>().Bind(builder.Configuration.GetSection(ServiceOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
var dataDirectory = Path.GetFullPath(options.DataDirectory);
var modelsDirectory = builder.Configuration["Har:ModelsDirectory"] ?? Path.Combine(AppContext.BaseDirectory, "models");
Directory.CreateDirectory(dataDirectory);
using (var bootLoggerFactory = LoggerFactory.Create(l => l.AddJsonConsole()))
{
    builder.AddServiceSecurity(options, ApiKeyBootstrap.Resolve(options, dataDirectory, bootLoggerFactory.CreateLogger("Har.Service")));
}

builder.AddServiceLimits(options).AddServiceProblemDetails();
builder.Services.AddSingleton(TimeProvider.System);

// Audit log (one writer: this process), with a signing key generated on first start outside the log folder.
var signingKey = Bootstrap.EnsureSigningKey(dataDirectory);
builder.Services.AddHarAudit(o =>
{
    o.Directory = options.AuditDirectory ?? Path.Combine(dataDirectory, "audit");
    o.Origin = Bootstrap.Origin;
    o.SigningKeyPath = signingKey;
}).AddCheckpointSigning(); // a signed checkpoint every minute the log grew, and at shutdown

// Registry + rollout controller (router, analysis, automatic rollback), seeded with the bundled models.
builder.Services.AddHarDeployment(o =>
{
    o.RegistryPath = Path.Combine(dataDirectory, "registry");
    o.Rollouts.Canary.AnalysisInterval = options.RolloutAnalysisInterval;
    o.Rollouts.BlueGreen.AnalysisInterval = options.RolloutAnalysisInterval;
    o.Rollouts.ModelOptions = () => new HarModelOptions { UseGlobalThreadPool = false, IntraOpThreads = 1 };
});

// Drift monitoring of the ingested streams against the bundled (or configured) reference profile.
var profilePath = options.DriftProfilePath ?? Path.Combine(modelsDirectory, "hapt-train-profile.json");
if (File.Exists(profilePath))
{
    builder.Services.AddHarDrift(o =>
    {
        o.ProfilePath = profilePath;
        o.WindowLength = options.DriftWindowFrames;
        o.ScoreInterval = options.DriftScoreInterval;
        o.MonitorName = "streams";

        // One monitor pools the frames of every ingested device: the per-channel distribution tests are valid on
        // the pool, but the physics consistency checks (and their per-device history) need one device's
        // continuous stream, and frames of different devices back to back would read as impossible turns.
        o.Scoring.ConsistencyChecks = false;
    });
}

builder.Services.AddSingleton(sp =>
{
    var registry = sp.GetRequiredService<ModelRegistry>();
    var current = registry.CurrentVersion ?? throw new InvalidOperationException("The model registry has no current version.");
    return new StreamWindower(ModelCard.Load(registry.Get(current).ModelPath), new StreamWindowerOptions { MaxStreams = 10_000, IdleTimeout = TimeSpan.FromMinutes(5) }, sp.GetRequiredService<TimeProvider>());
});
builder.Services.AddSingleton(sp => new StreamPredictionPipeline(sp.GetRequiredService<RolloutController>(), sp.GetRequiredService<StreamWindower>(), sp.GetService<DriftMonitor>()));
builder.Services.AddHostedService<ControllerLoop>();

builder.Services.AddHealthChecks()
    .AddCheck<ReadinessCheck>("models-and-log", tags: ["ready"])
    .AddCheck<AuditLogHealthCheck>("audit", failureStatus: HealthStatus.Degraded, tags: ["ready"]);

var app = builder.Build();

// Seed before anything resolves the controller (it loads the current version on open).
Bootstrap.SeedRegistry(app.Services.GetRequiredService<ModelRegistry>(), modelsDirectory);
app.Services.GetService<DriftMonitor>()?.Start();

app.UseServiceErrors();
app.UseRouting();
app.UseCors(HostingExtensions.CorsPolicy);
app.UseAuthentication();
app.UseMiddleware<OperationAuditMiddleware>();
app.UseRateLimiter();
app.UseAuthorization();
app.UseHttpMetrics();

app.MapHealthChecks("/health", new HealthCheckOptions { Predicate = _ => false });
app.MapHealthChecks("/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready") });
app.MapMetrics("/metrics");
app.MapPredictEndpoints();
app.MapOperationsEndpoints();
app.MapAuditEndpoints();

app.Run();

/// <summary>Runs the rollout controller's reconcile loop (analysis intervals, promotion, automatic rollback).</summary>
internal sealed class ControllerLoop(RolloutController controller) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => controller.RunAsync(stoppingToken);
}

/// <summary>Ready when the controller is open (the serving versions are loaded and warmed up) and the audit log is writable.</summary>
internal sealed class ReadinessCheck(IServiceProvider services) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var controller = services.GetRequiredService<RolloutController>();
            var log = services.GetRequiredService<AuditLog>();
            _ = services.GetRequiredService<StreamPredictionPipeline>();
            return Task.FromResult(HealthCheckResult.Healthy($"serving {controller.Registry.CurrentVersion}; audit log at {log.Count} entries"));
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or ModelCardException or ModelIntegrityException or OptionsValidationException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(ex.Message));
        }
    }
}
