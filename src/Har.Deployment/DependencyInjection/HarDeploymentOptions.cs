namespace Har.Deployment;

/// <summary>Options of <c>AddHarDeployment</c>: where the registry is and how rollouts run.</summary>
public sealed class HarDeploymentOptions
{
    /// <summary>Gets or sets the registry directory (required).</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? RegistryPath { get; set; }

    /// <summary>Gets the serving pipeline's options (model loading, stream limits).</summary>
    public ServingOptions Serving { get; } = new();

    /// <summary>Gets the rollout controller's options (analysis thresholds, strategies, hooks, state folder).</summary>
    public RolloutControllerOptions Rollouts { get; } = new();
}
