using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Har.Drift;

/// <summary>Registers Har.Drift in a service collection.</summary>
public static class HarDriftServiceCollectionExtensions
{
    /// <summary>
    /// Adds the drift monitor: validated <see cref="DriftMonitorOptions"/> (checked at start), the
    /// <see cref="ReferenceProfile"/> loaded from <see cref="DriftMonitorOptions.ProfilePath"/> unless one is
    /// registered already, a <see cref="DriftScorer"/> and a singleton <see cref="DriftMonitor"/>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the options.</param>
    /// <returns>The options builder, for further configuration.</returns>
    public static OptionsBuilder<DriftMonitorOptions> AddHarDrift(this IServiceCollection services, Action<DriftMonitorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.AddOptions<DriftMonitorOptions>();
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        builder.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DriftMonitorOptions>, DriftMonitorOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp =>
        {
            var path = sp.GetRequiredService<IOptions<DriftMonitorOptions>>().Value.ProfilePath;
            if (string.IsNullOrEmpty(path))
            {
                throw new InvalidOperationException("No ReferenceProfile is registered and DriftMonitorOptions.ProfilePath is not set; set the path of a profile built with 'har drift profile', or register a ReferenceProfile.");
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
        return builder;
    }
}
