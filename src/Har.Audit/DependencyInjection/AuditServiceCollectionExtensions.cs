using Har.Audit;
using Har.Audit.Health;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
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

        return AddCore(services);
    }

    /// <summary>
    /// Registers the audit log like <see cref="AddHarAudit(IServiceCollection, Action{AuditLogOptions}?)"/>, with
    /// <see cref="AuditLogOptions"/> bound from a configuration section (e.g. <c>Har:Audit</c> with
    /// <c>Directory</c>, <c>Origin</c>, <c>SigningKeyPath</c>, <c>CheckpointInterval</c> …) and validated at start-up.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="section">The configuration section holding the options.</param>
    /// <returns>A builder for further configuration.</returns>
    public static HarAuditBuilder AddHarAudit(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(section);
        services.AddOptions<AuditLogOptions>().Bind(section);
        return AddCore(services);
    }

    private static HarAuditBuilder AddCore(IServiceCollection services)
    {
        services.AddOptions<AuditLogOptions>()
            .Validate(o => !string.IsNullOrWhiteSpace(o.Directory) || !string.IsNullOrWhiteSpace(o.ConnectionString), AuditLog.StorageRequired)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AuditLogOptions>, AuditLogOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AuditLogOptions>, AuditStorageOptionsValidator>());
        services.TryAddSingleton(sp => AuditLog.Open(
            sp.GetRequiredService<IOptions<AuditLogOptions>>().Value,
            sp.GetService<ILoggerFactory>()?.CreateLogger<AuditLog>(),
            sp.GetService<TimeProvider>() ?? TimeProvider.System));
        return new HarAuditBuilder(services);
    }
}

/// <summary>Returned by <see cref="AuditServiceCollectionExtensions.AddHarAudit(IServiceCollection, Action{AuditLogOptions}?)"/> so configuration calls chain.</summary>
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
        ArgumentNullException.ThrowIfNull(configure);
        Services.Configure(configure);
        return this;
    }

    /// <summary>
    /// Registers a hosted service that signs a checkpoint with the key at <see cref="AuditLogOptions.SigningKeyPath"/>
    /// (required; validated at start-up) at start when the log grew since its latest checkpoint (what a crashed process
    /// appended after its last one), every <see cref="AuditLogOptions.CheckpointInterval"/> in which the log grew,
    /// and once at shutdown, so every acknowledged entry is anchored by a signed checkpoint. Before signing it
    /// verifies the entries the new checkpoint adds (and the whole log on its first interval); it never signs over a log
    /// that verification would fail: it logs the problem, counts it in <c>har_audit_checkpoint_failures_total</c> and
    /// reports it through <see cref="AuditLogHealthCheck"/>.
    /// </summary>
    /// <returns>This builder.</returns>
    public HarAuditBuilder AddCheckpointSigning()
    {
        Services.AddOptions<AuditLogOptions>().Validate(
            o => !string.IsNullOrWhiteSpace(o.SigningKeyPath),
            "AuditLogOptions.SigningKeyPath is required by AddCheckpointSigning(): the key file from AuditSigningKey.Generate(...).Save(path) or `har audit keygen`, kept outside the log folder.");
        Services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, CheckpointSigner>());
        return this;
    }
}
