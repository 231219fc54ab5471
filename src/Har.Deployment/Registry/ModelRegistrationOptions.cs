namespace Har.Deployment;

/// <summary>Who registers a model version and for which environment: written to its <c>deployment_record.json</c>.</summary>
public sealed class ModelRegistrationOptions
{
    /// <summary>Gets or sets the deployment record's id.</summary>
    /// <value>The default value is <see langword="null"/>: <c>deploy-YYYY-MM-DD-</c> followed by 8 hex characters of the model hash.</value>
    public string? DeploymentId { get; set; }

    /// <summary>Gets or sets the user who registers the version (<c>deployer.user</c>).</summary>
    /// <value>The default value is <see langword="null"/>: the operating-system user name.</value>
    public string? Deployer { get; set; }

    /// <summary>Gets or sets how the version was registered (<c>deployer.method</c>).</summary>
    /// <value>The default value is <c>"har registry"</c>.</value>
    public string Method { get; set; } = "har registry";

    /// <summary>Gets or sets who approved the version (<c>deployer.approved_by</c>).</summary>
    /// <value>The default value is <see langword="null"/>: recorded as <c>"pending"</c>.</value>
    public string? ApprovedBy { get; set; }

    /// <summary>Gets or sets the experiment-tracking run id that produced the model (<c>model.run_id</c>).</summary>
    /// <value>The default value is <see langword="null"/>: recorded as <c>"none"</c>.</value>
    public string? RunId { get; set; }

    /// <summary>Gets or sets the target environment (<c>environment.target</c>).</summary>
    /// <value>The default value is <c>"local"</c>.</value>
    public string EnvironmentTarget { get; set; } = "local";

    /// <summary>Gets or sets the number of replicas (<c>environment.replicas</c>).</summary>
    /// <value>The default value is 1.</value>
    internal int Replicas { get; set; } = 1;

    /// <summary>Gets or sets the CPU request (<c>environment.resources.cpu</c>).</summary>
    /// <value>The default value is <c>"500m"</c>, as in the reference deployment.</value>
    internal string Cpu { get; set; } = "500m";

    /// <summary>Gets or sets the memory request (<c>environment.resources.memory</c>).</summary>
    /// <value>The default value is <c>"2Gi"</c>, as in the reference deployment.</value>
    internal string Memory { get; set; } = "2Gi";

    /// <summary>Gets or sets the confidence below which a prediction is uncertain (<c>config.confidence_threshold</c>).</summary>
    /// <value>The default value is 0.70, as in the reference deployment record.</value>
    internal double ConfidenceThreshold { get; set; } = 0.70;

    /// <summary>Gets or sets whether the version passed its smoke test before registration (<c>validation.passed_smoke_test</c>).</summary>
    /// <value>The default value is <see langword="false"/>: a rollout smoke-tests it again before it serves.</value>
    public bool PassedSmokeTest { get; set; }

    /// <summary>Gets or sets whether the registered version becomes <c>current</c> when the registry has no current version yet.</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool MakeCurrentIfNone { get; set; } = true;
}
