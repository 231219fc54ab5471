using Har.Inference;
using Har.Service;
using Har.Service.Infrastructure;
using Har.Service.Security;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Prometheus;

var builder = WebApplication.CreateBuilder(args);
builder.Logging.ClearProviders();
builder.Logging.AddJsonConsole(o => o.IncludeScopes = true);

var options = builder.Configuration.GetSection(ServiceOptions.Section).Get<ServiceOptions>() ?? new ServiceOptions();
var dataDirectory = Path.GetFullPath(Path.Combine(builder.Environment.ContentRootPath, options.DataDirectory));
using (var bootLoggerFactory = LoggerFactory.Create(l => l.AddJsonConsole()))
{
    var keys = ApiKeyBootstrap.Resolve(options, dataDirectory, bootLoggerFactory.CreateLogger("Har.Service"));
    builder.AddServiceSecurity(options, keys);
}

builder.AddServiceLimits(options).AddServiceProblemDetails();

var modelsDir = builder.Configuration["Har:ModelsDirectory"] ?? Path.Combine(AppContext.BaseDirectory, "models");
var cards = Directory.Exists(modelsDir)
    ? Directory.GetFiles(modelsDir, "*.onnx").Order(StringComparer.Ordinal).Select(ModelCard.Load).ToArray()
    : [];
builder.Services.AddHealthChecks()
    .AddCheck("models", () => cards.Length > 0 ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy($"no model in {modelsDir}"), tags: ["ready"]);

var app = builder.Build();

app.UseServiceErrors();
app.UseRouting();
app.UseCors(HostingExtensions.CorsPolicy);
app.UseAuthentication();
app.UseRateLimiter();
app.UseAuthorization();
app.UseHttpMetrics();

app.MapHealthChecks("/health", new HealthCheckOptions { Predicate = _ => false });
app.MapHealthChecks("/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready") });
app.MapMetrics("/metrics");

app.MapGet("/v1/models", () => Results.Ok(cards.Select(c => new
{
    name = c.ModelName,
    version = c.ModelVersion,
    labels = c.Labels,
    window_length = c.WindowLength,
    stride = c.Stride,
    sample_rate_hz = c.SampleRateHz,
    parameters = c.Parameters,
    metrics = new { accuracy = c.Metrics.Accuracy, macro_f1 = c.Metrics.MacroF1, n_windows = c.Metrics.Windows },
}))).RequireAuthorization(Roles.PredictPolicy);

app.Run();
