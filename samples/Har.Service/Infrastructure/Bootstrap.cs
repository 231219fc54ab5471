using Har.Audit;
using Har.Deployment;
using Har.Inference;

namespace Har.Service.Infrastructure;

/// <summary>First-start defaults (a checkpoint signing key, the bundled models in the registry) and the wiring of the serving path.</summary>
internal static class Bootstrap
{
    /// <summary>
    /// Registers Har.Deployment (registry, the one serving pipeline, the rollout controller and its loop) and,
    /// when a reference profile exists, Har.Drift's monitor, which the pipeline feeds with every frame it serves
    /// (stream ingest and whole windows alike).
    /// </summary>
    public static WebApplicationBuilder AddServing(this WebApplicationBuilder builder, ServiceOptions options, string dataDirectory, string modelsDirectory)
    {
        builder.Services.AddHarDeployment(o =>
        {
            o.RegistryPath = Path.Combine(dataDirectory, "registry");
            o.Rollouts.Canary.AnalysisInterval = options.RolloutAnalysisInterval;
            o.Rollouts.BlueGreen.AnalysisInterval = options.RolloutAnalysisInterval;
            o.Serving.Model.UseGlobalThreadPool = false;
            o.Serving.Model.IntraOpThreads = 1;
            o.Serving.MaxStreams = 10_000;
            o.Serving.StreamIdleTimeout = TimeSpan.FromMinutes(5);
        });

        var profilePath = options.DriftProfilePath ?? Path.Combine(modelsDirectory, "hapt-train-profile.json");
        if (File.Exists(profilePath))
        {
            builder.Services.AddHarDrift(o =>
            {
                o.ProfilePath = profilePath;
                o.WindowLength = options.DriftWindowFrames;
                o.ScoreInterval = options.DriftScoreInterval;
                o.MonitorName = "streams";

            });

            // The pipeline feeds the per-device monitor (physics checks on each device's own stream; output drift pooled).
            builder.Services.AddSingleton<DriftLoop>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<DriftLoop>());
        }

        builder.Services.AddHostedService<ControllerLoop>();
        return builder;
    }

    /// <summary>The registry's versions in semantic-version order (oldest first).</summary>
    private static SemanticVersion SortKey(string modelPath) => SemanticVersion.Parse(ModelCard.Load(modelPath).ModelVersion);

    public const string Origin = "har.local/har-service";

    /// <summary>The signing key file (outside the log directory), generated once.</summary>
    public static string EnsureSigningKey(string dataDirectory)
    {
        var keys = Path.Combine(dataDirectory, "keys");
        var path = Path.Combine(keys, "audit.key");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(keys);
            using var key = AuditSigningKey.Generate(Origin);
            key.Save(path);
            File.WriteAllText(Path.Combine(keys, "audit.vkey"), key.VerifierKey + "\n");
        }

        return path;
    }

    /// <summary>Registers the bundled models when the registry is empty: the first (1.0.0) becomes current.</summary>
    public static void SeedRegistry(ModelRegistry registry, string modelsDirectory)
    {
        if (registry.List().Count > 0 || !Directory.Exists(modelsDirectory))
        {
            return;
        }

        // Oldest version first, so the first registered (and current) model is the champion.
        var files = Directory.GetFiles(modelsDirectory, "*.onnx")
            .Select(f => (File: f, Version: SortKey(f)))
            .OrderBy(x => x.Version)
            .Select(x => x.File);
        foreach (var file in files)
        {
            registry.Register(file, new ModelRegistrationOptions
            {
                Deployer = "har-service",
                Method = "bundled with the service",
                MakeCurrentIfNone = true,
            });
        }
    }
}

/// <summary>Starts the per-device drift monitor's scoring timer (the serving pipeline feeds it every served window).</summary>
internal sealed class DriftLoop(Har.Drift.DeviceDriftMonitor monitor) : IHostedService
{
    private Har.Drift.DriftReport? _latest;

    /// <summary>Gets the most recent report of any device (what <c>GET /v1/drift</c> shows without <c>?device=</c>).</summary>
    public Har.Drift.DriftReport? Latest => Volatile.Read(ref _latest);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        monitor.Scored += (_, report) => Volatile.Write(ref _latest, report);
        monitor.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Runs the rollout controller's reconcile loop (analysis intervals, promotion, automatic rollback); the loop outlives any failure of a reconciliation.</summary>
internal sealed class ControllerLoop(RolloutController controller) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => controller.RunAsync(stoppingToken);
}
