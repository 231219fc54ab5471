using Har.Inference;
using Har.Inference.Models;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Har.Inference in a service collection.</summary>
public static class HarInferenceServiceCollectionExtensions
{
    /// <summary>
    /// Adds Har.Inference: validated <see cref="StreamWindowerOptions"/> (checked at start), a singleton
    /// <see cref="StreamWindower"/> with the window geometry of the first model added, and the registry that named
    /// models (<see cref="HarInferenceBuilder.AddModel"/>) and the health check use. Registrations of your own win.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configureWindowing">Configures the stream windowing, or <see langword="null"/> for the defaults.</param>
    /// <returns>A builder to add models.</returns>
    public static HarInferenceBuilder AddHarInference(this IServiceCollection services, Action<StreamWindowerOptions>? configureWindowing = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = AddCore(services);
        if (configureWindowing is not null)
        {
            services.Configure(configureWindowing);
        }

        return builder;
    }

    /// <summary>
    /// Adds Har.Inference configured from a configuration section: <c>Windowing</c> binds <see cref="StreamWindowerOptions"/>,
    /// and each child of <c>Models</c> adds a model named by its key, with its <c>Path</c> and the
    /// <see cref="HarModelOptions"/> it sets (e.g. <c>"Models": { "champion": { "Path": "models/m.onnx", "MaxBatchSize": 16 } }</c>).
    /// Everything is validated at start (<c>ValidateOnStart</c>).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section, e.g. <c>builder.Configuration.GetSection("HarInference")</c>.</param>
    /// <returns>A builder to add more models.</returns>
    /// <exception cref="ArgumentException">A model entry has no <c>Path</c>.</exception>
    public static HarInferenceBuilder AddHarInference(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = AddCore(services);
        services.AddOptions<StreamWindowerOptions>().Bind(configuration.GetSection("Windowing"));
        foreach (var model in configuration.GetSection("Models").GetChildren())
        {
            var path = model["Path"];
            if (string.IsNullOrWhiteSpace(path))
            {
                throw new ArgumentException($"Configuration '{model.Path}' has no 'Path'; expected the .onnx file of model '{model.Key}'.", nameof(configuration));
            }

            builder.AddModel(model.Key, path);
            services.AddOptions<HarModelOptions>(model.Key).Bind(model);
        }

        return builder;
    }

    private static HarInferenceBuilder AddCore(IServiceCollection services)
    {
        services.AddOptions<StreamWindowerOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StreamWindowerOptions>, StreamWindowerOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HarModelOptions>, HarModelOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);

        HarModelRegistry? registry = null;
        foreach (var descriptor in services)
        {
            if (descriptor.ServiceType == typeof(HarModelRegistry) && descriptor.ImplementationInstance is HarModelRegistry existing)
            {
                registry = existing;
            }
        }

        if (registry is null)
        {
            registry = new HarModelRegistry();
            services.AddSingleton(registry);
        }

        services.TryAddSingleton(static sp =>
        {
            var models = sp.GetRequiredService<HarModelRegistry>().Names;
            if (models.Count == 0)
            {
                throw new InvalidOperationException("No Har model is registered, so the StreamWindower has no window geometry; call AddHarInference().AddModel(name, path) or register a StreamWindower of your own.");
            }

            var card = sp.GetRequiredKeyedService<HarModel>(models[0]).Card;
            return new StreamWindower(card, sp.GetRequiredService<IOptions<StreamWindowerOptions>>().Value, sp.GetService<TimeProvider>());
        });
        return new HarInferenceBuilder(services, registry);
    }
}

/// <summary>Adds named models to a service collection; returned by <c>AddHarInference</c>.</summary>
public sealed class HarInferenceBuilder
{
    private readonly HarModelRegistry _registry;

    internal HarInferenceBuilder(IServiceCollection services, HarModelRegistry registry)
    {
        Services = services;
        _registry = registry;
    }

    /// <summary>Gets the service collection.</summary>
    public IServiceCollection Services { get; }

    /// <summary>
    /// Registers a model as a keyed singleton <see cref="HarModel"/> (key = <paramref name="name"/>), loaded
    /// and warmed up on first resolution, with validated named <see cref="HarModelOptions"/> (checked at start),
    /// and a <see cref="HarModelRegistration"/> naming its file, through which other packages share the loaded model
    /// (Har.Deployment's serving pipeline serves a registry version with the same bytes from this instance).
    /// The first model added also gives the registered <see cref="StreamWindower"/> its window geometry.
    /// </summary>
    /// <param name="name">The model's key, e.g. <c>champion</c> or a version.</param>
    /// <param name="modelPath">The <c>.onnx</c> file.</param>
    /// <param name="configure">Configures the model's options, or <see langword="null"/> for the defaults.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentException">A model with this name is already registered.</exception>
    public HarInferenceBuilder AddModel(string name, string modelPath, Action<HarModelOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        if (!_registry.Add(name))
        {
            throw new ArgumentException($"A model named '{name}' is already registered; expected unique names.", nameof(name));
        }

        var options = Services.AddOptions<HarModelOptions>(name);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        Services.AddSingleton(new HarModelRegistration(name, Path.GetFullPath(modelPath)));
        Services.AddKeyedSingleton(name, (sp, _) => HarModel.Load(
            modelPath,
            sp.GetRequiredService<IOptionsMonitor<HarModelOptions>>().Get(name),
            sp.GetService<ILoggerFactory>(),
            sp.GetService<TimeProvider>()));
        return this;
    }
}

/// <summary>The names of the registered models (for the health check and the windower's geometry).</summary>
internal sealed class HarModelRegistry
{
    private readonly List<string> _names = [];

    public IReadOnlyList<string> Names
    {
        get
        {
            lock (_names)
            {
                return [.. _names];
            }
        }
    }

    public bool Add(string name)
    {
        lock (_names)
        {
            if (_names.Contains(name, StringComparer.Ordinal))
            {
                return false;
            }

            _names.Add(name);
            return true;
        }
    }
}
