using Har.Audit;
using Har.Deployment;
using Har.Drift;
using Har.Inference;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Har.Deployment: the model registry, the serving pipeline and the rollout controller.</summary>
public static class HarDeploymentServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="HarDeploymentOptions"/> (validated at start-up), a singleton <see cref="ModelRegistry"/>,
    /// a singleton <see cref="ServingPipeline"/> (the only way into the models: it loads each served version once, or
    /// serves it from the keyed <c>HarModel</c> of <c>AddHarInference().AddModel</c> when that file holds the same bytes)
    /// and its <see cref="FeedbackStore"/>
    /// and a singleton <see cref="RolloutController"/>, opened on first use. Composes with <c>AddHarAudit</c>
    /// (when an <see cref="AuditLog"/> is registered, every registration, refusal and rollout decision is
    /// appended to it), with a registered <see cref="TimeProvider"/> and <see cref="ILoggerFactory"/>, and
    /// with a registered <c>DeviceDriftMonitor</c> (<c>AddHarDrift</c>: it then receives every window the pipeline serves, with its prediction),
    /// with <see cref="IServingObserver"/>s, strategies, hooks and gates registered as services (or through the returned builder).
    /// Existing registrations win.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the options; <see cref="HarDeploymentOptions.RegistryPath"/> is required.</param>
    /// <returns>A builder for strategies, hooks and gates.</returns>
    public static HarDeploymentBuilder AddHarDeployment(this IServiceCollection services, Action<HarDeploymentOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<HarDeploymentOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HarDeploymentOptions>, HarDeploymentOptionsValidator>());
        services.TryAddSingleton(sp => new ModelRegistry(
            sp.GetRequiredService<IOptions<HarDeploymentOptions>>().Value.RegistryPath!,
            sp.GetService<AuditLog>(),
            sp.GetService<TimeProvider>() ?? TimeProvider.System));
        services.TryAddSingleton(sp =>
        {
            // Models the host added with AddHarInference().AddModel: a version with the same bytes is served from that keyed instance.
            var registrations = sp.GetServices<HarModelRegistration>().ToArray();
            ServingPipeline Open(ModelRegistry registry) => ServingPipeline.Open(
                registry,
                sp.GetRequiredService<IOptions<HarDeploymentOptions>>().Value.Serving,
                sp.GetService<DeviceDriftMonitor>(),
                sp.GetServices<IServingObserver>(),
                sp.GetService<ILoggerFactory>(),
                sp.GetService<TimeProvider>(),
                registrations.Length == 0 ? null : new SharedHarModels(sp, registrations));

            try
            {
                return Open(sp.GetRequiredService<ModelRegistry>());
            }
            catch (AuditLogUnavailableException) when (ReadOnlyAuditDirectory(sp) is { } directory)
            {
                // The audit log cannot be opened for writing (a full or read-only disk; a crash's unsealed tail it cannot
                // re-seal there). Serving needs no write: the current version is verified against its registration
                // through a read-only view of the same log, and served. Found from outside: a restart on a full disk
                // served nothing until space was freed. Operations (the controller, registrations) still wait for the
                // writable log, on the host's registry, and open once the disk is writable again.
                using var log = AuditLog.OpenReadOnly(directory);
                var pipeline = Open(new ModelRegistry(sp.GetRequiredService<IOptions<HarDeploymentOptions>>().Value.RegistryPath!, log, sp.GetService<TimeProvider>() ?? TimeProvider.System));
                Log.ServingFromReadOnlyLog(sp.GetService<ILoggerFactory>()?.CreateLogger<ServingPipeline>() ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<ServingPipeline>.Instance, directory);
                return pipeline;
            }
        });
        services.TryAddSingleton(sp => sp.GetRequiredService<ServingPipeline>().Feedback);
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<HarDeploymentOptions>>().Value.Rollouts;
            foreach (var strategy in sp.GetServices<IRolloutStrategy>())
            {
                o.Strategies.Add(strategy);
            }

            foreach (var hook in sp.GetServices<IRolloutHook>())
            {
                o.Hooks.Add(hook);
            }

            foreach (var gate in sp.GetServices<IAnalysisGate>())
            {
                o.Analysis.Gates.Add(gate);
            }

            // A DI factory is synchronous; opening reads the state file and loads the resident models.
            return RolloutController.OpenAsync(sp.GetRequiredService<ModelRegistry>(), sp.GetRequiredService<ServingPipeline>(), o, sp.GetService<ILoggerFactory>(), sp.GetService<TimeProvider>()).GetAwaiter().GetResult();
        });
        return new HarDeploymentBuilder(services);
    }

    /// <summary>The folder of the host's file audit log when it exists (not a PostgreSQL log): what a read-only view can open.</summary>
    private static string? ReadOnlyAuditDirectory(IServiceProvider sp) =>
        sp.GetService<IOptions<AuditLogOptions>>()?.Value is { ConnectionString: null or "", Directory: { Length: > 0 } directory }
        && File.Exists(Path.Combine(directory, "log.json"))
            ? directory
            : null;

    /// <summary>
    /// Registers Har.Deployment as <see cref="AddHarDeployment(IServiceCollection, Action{HarDeploymentOptions}?)"/> does,
    /// with the options bound from a configuration section (e.g. <c>Har:Deployment</c>: <c>RegistryPath</c>,
    /// <c>Serving:MaxStreams</c>, <c>Serving:Model:MaxBatchSize</c>, <c>Rollouts:BuiltInStrategies:AnalysisInterval</c>, …), validated at start-up.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The configuration section holding <see cref="HarDeploymentOptions"/>.</param>
    /// <returns>A builder for observers, strategies, hooks and gates.</returns>
    public static HarDeploymentBuilder AddHarDeployment(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = services.AddHarDeployment();
        services.AddOptions<HarDeploymentOptions>().Bind(configuration);
        return builder;
    }
}

/// <summary>Returned by <see cref="HarDeploymentServiceCollectionExtensions.AddHarDeployment(IServiceCollection, Action{HarDeploymentOptions}?)"/> so registrations chain.</summary>
public sealed class HarDeploymentBuilder
{
    internal HarDeploymentBuilder(IServiceCollection services) => Services = services;

    /// <summary>Gets the service collection.</summary>
    public IServiceCollection Services { get; }

    /// <summary>
    /// Runs the rollout controller's loop (<see cref="RolloutController.RunAsync"/>) as a hosted service for the host's
    /// lifetime: analyses fall due, steps advance, candidates are promoted or rolled back, without a call of yours.
    /// Without it (or a loop of your own), a started rollout stays at its first step. The controller opens once the
    /// host has started; an open that fails is logged and retried. Call it once; a second call adds nothing.
    /// </summary>
    /// <returns>This builder.</returns>
    public HarDeploymentBuilder RunRolloutLoop()
    {
        Services.TryAddEnumerable(ServiceDescriptor.Singleton<Microsoft.Extensions.Hosting.IHostedService, RolloutLoopService>());
        return this;
    }

    /// <summary>Adds a rollout strategy (a strategy with a built-in name replaces it).</summary>
    /// <param name="strategy">The strategy.</param>
    /// <returns>This builder.</returns>
    public HarDeploymentBuilder AddStrategy(IRolloutStrategy strategy)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        Services.AddSingleton(strategy);
        return this;
    }

    /// <summary>Adds a hook (pre-rollout, smoke test, pre-promotion or post-rollout).</summary>
    /// <param name="hook">The hook.</param>
    /// <returns>This builder.</returns>
    public HarDeploymentBuilder AddHook(IRolloutHook hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        Services.AddSingleton(hook);
        return this;
    }

    /// <summary>Adds an observer of every sample and prediction of the serving pipeline.</summary>
    /// <param name="observer">The observer.</param>
    /// <returns>This builder.</returns>
    public HarDeploymentBuilder AddObserver(IServingObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        Services.AddSingleton(observer);
        return this;
    }

    /// <summary>Adds an analysis gate evaluated at every interval after the built-in ones.</summary>
    /// <param name="gate">The gate.</param>
    /// <returns>This builder.</returns>
    public HarDeploymentBuilder AddGate(IAnalysisGate gate)
    {
        ArgumentNullException.ThrowIfNull(gate);
        Services.AddSingleton(gate);
        return this;
    }

    /// <summary>Configures the options further.</summary>
    /// <param name="configure">The configuration.</param>
    /// <returns>This builder.</returns>
    public HarDeploymentBuilder Configure(Action<HarDeploymentOptions> configure)
    {
        Services.Configure(configure);
        return this;
    }
}

internal sealed class HarDeploymentOptionsValidator : IValidateOptions<HarDeploymentOptions>
{
    public ValidateOptionsResult Validate(string? name, HarDeploymentOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.RegistryPath))
        {
            return ValidateOptionsResult.Fail("HarDeploymentOptions.RegistryPath is empty; expected the registry directory (it is created if missing).");
        }

        try
        {
            options.Rollouts.Validate();
            options.Serving.Validate();
        }
        catch (ArgumentException ex)
        {
            return ValidateOptionsResult.Fail($"HarDeploymentOptions.Rollouts is invalid: {ex.Message}");
        }

        return ValidateOptionsResult.Success;
    }
}
