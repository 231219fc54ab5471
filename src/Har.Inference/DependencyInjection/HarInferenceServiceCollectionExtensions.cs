using Har.Inference.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Har.Inference;

/// <summary>Registers Har.Inference in a service collection.</summary>
public static class HarInferenceServiceCollectionExtensions
{
    /// <summary>
    /// Adds Har.Inference: validated <see cref="StreamWindowerOptions"/> and the registry that named
    /// models (<see cref="HarInferenceBuilder.AddModel"/>) and the health check use.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configureWindowing">Configures the stream windowing defaults, or <see langword="null"/>.</param>
    /// <returns>A builder to add models.</returns>
    public static HarInferenceBuilder AddHarInference(this IServiceCollection services, Action<StreamWindowerOptions>? configureWindowing = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var windowing = services.AddOptions<StreamWindowerOptions>();
        if (configureWindowing is not null)
        {
            windowing.Configure(configureWindowing);
        }

        windowing.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StreamWindowerOptions>, StreamWindowerOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HarModelOptions>, HarModelOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);

        var registry = services.Select(d => d.ImplementationInstance).OfType<HarModelRegistry>().FirstOrDefault();
        if (registry is null)
        {
            registry = new HarModelRegistry();
            services.AddSingleton(registry);
        }

        return new HarInferenceBuilder(services, registry);
    }
}

/// <summary>Adds named models to a service collection; returned by <see cref="HarInferenceServiceCollectionExtensions.AddHarInference"/>.</summary>
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
    /// and warmed up on first resolution, with validated named <see cref="HarModelOptions"/>.
    /// </summary>
    /// <param name="name">The model's key, e.g. <c>champion</c> or a version.</param>
    /// <param name="modelPath">The <c>.onnx</c> file.</param>
    /// <param name="configure">Configures the model's options, or <see langword="null"/> for the defaults.</param>
    /// <returns>This builder.</returns>
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
        Services.AddKeyedSingleton(name, (sp, _) => HarModel.Load(
            modelPath,
            sp.GetRequiredService<IOptionsMonitor<HarModelOptions>>().Get(name),
            sp.GetService<ILoggerFactory>(),
            sp.GetService<TimeProvider>()));
        return this;
    }
}

/// <summary>The names of the registered models (for the health check).</summary>
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
