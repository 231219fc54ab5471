using Har.Drift;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Har.Drift in a service collection.</summary>
public static class HarDriftServiceCollectionExtensions
{
    /// <summary>
    /// Adds drift monitoring: validated <see cref="DriftMonitorOptions"/> (checked at start), the
    /// <see cref="ReferenceProfile"/> loaded from <see cref="DriftMonitorOptions.ProfilePath"/> unless one is registered
    /// already, a <see cref="DriftScorer"/>, a <see cref="DriftMonitor"/> (one stream) and a
    /// <see cref="DeviceDriftMonitor"/> (per device, bounded), all singletons. Registrations made before win.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the options.</param>
    /// <returns>The builder, for further configuration.</returns>
    public static HarDriftBuilder AddHarDrift(this IServiceCollection services, Action<DriftMonitorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = Register(services);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        return builder;
    }

    /// <summary>Adds drift monitoring (see <see cref="AddHarDrift(IServiceCollection, Action{DriftMonitorOptions}?)"/>) with the options bound from a configuration section, e.g. <c>builder.Configuration.GetSection("HarDrift")</c>.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section holding <see cref="DriftMonitorOptions"/> (e.g. <c>ProfilePath</c>, <c>WindowLength</c>, <c>Scoring:Alpha</c>).</param>
    /// <returns>The builder, for further configuration.</returns>
    public static HarDriftBuilder AddHarDrift(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = Register(services);
        services.Configure<DriftMonitorOptions>(configuration);
        return builder;
    }

    private static HarDriftBuilder Register(IServiceCollection services)
    {
        services.AddOptions<DriftMonitorOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DriftMonitorOptions>, DriftMonitorOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DriftMonitorOptions>, DriftStateOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp =>
        {
            var path = sp.GetRequiredService<IOptions<DriftMonitorOptions>>().Value.ProfilePath;
            if (string.IsNullOrEmpty(path))
            {
                throw new InvalidOperationException("No ReferenceProfile is registered and DriftMonitorOptions.ProfilePath is not set; set the path of a profile built with 'har drift profile' (or ReferenceProfile.Save), or register a ReferenceProfile.");
            }

            return ReferenceProfile.Load(path);
        });
        services.TryAddSingleton(sp => new DriftScorer(sp.GetRequiredService<ReferenceProfile>(), sp.GetRequiredService<IOptions<DriftMonitorOptions>>().Value.Scoring));
        services.TryAddSingleton(sp => new DriftMonitor(
            sp.GetRequiredService<ReferenceProfile>(),
            sp.GetRequiredService<IOptions<DriftMonitorOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<DriftMonitor>>()));
        services.TryAddSingleton(sp => new DeviceDriftMonitor(
            sp.GetRequiredService<ReferenceProfile>(),
            sp.GetRequiredService<IOptions<DriftMonitorOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<DeviceDriftMonitor>>()));
        return new HarDriftBuilder(services);
    }
}

/// <summary>Returned by <c>AddHarDrift</c>, so that Har.Drift's registration can be configured further.</summary>
public sealed class HarDriftBuilder
{
    internal HarDriftBuilder(IServiceCollection services) => Services = services;

    /// <summary>Gets the service collection.</summary>
    public IServiceCollection Services { get; }

    /// <summary>
    /// Starts the <see cref="DeviceDriftMonitor"/>'s timer (<see cref="DeviceDriftMonitor.Start"/>) when the host starts, so
    /// devices are scored every <see cref="DriftMonitorOptions.ScoreInterval"/> and idle ones evicted, without a call of
    /// yours. Without it (or a <c>Start()</c> of your own), observed windows are kept but never scored on their own, and no
    /// alarm is raised. Call it once; a second call adds nothing.
    /// </summary>
    /// <returns>This builder.</returns>
    public HarDriftBuilder StartScoring()
    {
        Services.TryAddEnumerable(ServiceDescriptor.Singleton<Microsoft.Extensions.Hosting.IHostedService, DriftScoringService>());
        return this;
    }
}
