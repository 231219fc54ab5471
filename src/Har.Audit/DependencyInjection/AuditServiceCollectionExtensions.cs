using Har.Audit;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Har audit log.</summary>
public static class AuditServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="AuditLogOptions"/> (validated at start-up) and a singleton <see cref="AuditLog"/>
    /// opened from them on first use and disposed with the container. Existing registrations win.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the options; <see cref="AuditLogOptions.Directory"/> is required.</param>
    /// <returns>A builder for further configuration.</returns>
    public static HarAuditBuilder AddHarAudit(this IServiceCollection services, Action<AuditLogOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<AuditLogOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AuditLogOptions>, AuditLogOptionsValidator>());
        services.TryAddSingleton(sp => AuditLog.Open(
            sp.GetRequiredService<IOptions<AuditLogOptions>>().Value,
            sp.GetService<ILoggerFactory>()?.CreateLogger<AuditLog>(),
            sp.GetService<TimeProvider>() ?? TimeProvider.System));
        return new HarAuditBuilder(services);
    }
}

/// <summary>Returned by <see cref="AuditServiceCollectionExtensions.AddHarAudit"/> so configuration calls chain.</summary>
public sealed class HarAuditBuilder
{
    internal HarAuditBuilder(IServiceCollection services) => Services = services;

    /// <summary>Gets the service collection.</summary>
    public IServiceCollection Services { get; }

    /// <summary>Configures the options further.</summary>
    /// <param name="configure">The configuration.</param>
    /// <returns>This builder.</returns>
    public HarAuditBuilder Configure(Action<AuditLogOptions> configure)
    {
        Services.Configure(configure);
        return this;
    }
}
