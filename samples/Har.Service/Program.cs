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

// Registry, serving pipeline (windowing, routing, batching, observers: metrics, rollout analysis, drift) and
// rollout controller (the control plane), seeded with the bundled models: see Bootstrap.AddServing.
builder.AddServing(options, dataDirectory, modelsDirectory);

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

/// <summary>Ready when the controller is open (the serving versions are loaded and warmed up) and the audit log is writable.</summary>
internal sealed class ReadinessCheck(IServiceProvider services) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var controller = services.GetRequiredService<RolloutController>();
            var log = services.GetRequiredService<AuditLog>();
            var pipeline = services.GetRequiredService<ServingPipeline>();
            return Task.FromResult(controller.Fault is { } fault
                ? HealthCheckResult.Degraded($"serving {pipeline.Plan}; the rollout controller's loop is failing and retrying: {fault}")
                : HealthCheckResult.Healthy($"serving {pipeline.Plan}; audit log at {log.Count} entries"));
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or ModelCardException or ModelIntegrityException or OptionsValidationException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(ex.Message));
        }
    }
}
