namespace Har.Deployment;

/// <summary>A model version in a <see cref="ModelRegistry"/>: its folder, files and recorded identity.</summary>
public sealed class RegisteredModel
{
    internal RegisteredModel(string version, string directory, string modelName, string sha256, long parameters, DateTimeOffset registeredAt, string deploymentId)
    {
        Version = version;
        Directory = directory;
        ModelName = modelName;
        Sha256 = sha256;
        Parameters = parameters;
        RegisteredAt = registeredAt;
        DeploymentId = deploymentId;
    }

    /// <summary>Gets the semantic version, e.g. <c>1.2.0</c> (the folder is <c>v1.2.0</c>).</summary>
    public string Version { get; }

    /// <summary>Gets the version's folder inside the registry.</summary>
    public string Directory { get; }

    /// <summary>Gets the path of the version's <c>model.onnx</c>.</summary>
    public string ModelPath => Path.Combine(Directory, ModelRegistry.ModelFileName);

    /// <summary>Gets the path of the version's <c>config.json</c> (the model card).</summary>
    public string ConfigPath => Path.Combine(Directory, ModelRegistry.ConfigFileName);

    /// <summary>Gets the path of the version's <c>deployment_record.json</c>.</summary>
    public string DeploymentRecordPath => Path.Combine(Directory, ModelRegistry.RecordFileName);

    /// <summary>Gets the model's name from its card.</summary>
    public string ModelName { get; }

    /// <summary>Gets the lowercase hex SHA-256 of <c>model.onnx</c> as recorded at registration.</summary>
    public string Sha256 { get; }

    /// <summary>Gets the model's trainable parameter count from its card.</summary>
    public long Parameters { get; }

    /// <summary>Gets when the version was registered.</summary>
    public DateTimeOffset RegisteredAt { get; }

    /// <summary>Gets the id of the version's deployment record.</summary>
    public string DeploymentId { get; }

    /// <inheritdoc />
    public override string ToString() => $"{ModelName}@{Version} (sha256 {Sha256[..12]}…)";
}

/// <summary>The outcome of <see cref="ModelRegistry.Verify(string)"/>.</summary>
/// <param name="Version">The version checked.</param>
/// <param name="ExpectedSha256">The hash recorded in <c>deployment_record.json</c>, or <see langword="null"/> if the record is unreadable.</param>
/// <param name="ActualSha256">The hash of <c>model.onnx</c> as it is now, or <see langword="null"/> if the file is missing.</param>
/// <param name="Problems">What is wrong, one sentence each; empty when the version is valid.</param>
public sealed record ModelVerification(string Version, string? ExpectedSha256, string? ActualSha256, IReadOnlyList<string> Problems)
{
    /// <summary>Gets a value indicating whether the file matches its record and its card is valid.</summary>
    public bool IsValid => Problems.Count == 0;
}

/// <summary>A registered model version failed verification and was refused.</summary>
public sealed class ModelIntegrityException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="ModelIntegrityException"/> class.</summary>
    public ModelIntegrityException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelIntegrityException"/> class.</summary>
    /// <param name="message">What was wrong.</param>
    public ModelIntegrityException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelIntegrityException"/> class.</summary>
    /// <param name="message">What was wrong.</param>
    /// <param name="innerException">The underlying error.</param>
    public ModelIntegrityException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelIntegrityException"/> class.</summary>
    /// <param name="verification">The failed verification.</param>
    public ModelIntegrityException(ModelVerification verification)
        : base($"Model version {verification?.Version} failed verification and will not be loaded: {string.Join(" ", verification?.Problems ?? [])}")
    {
        Verification = verification;
    }

    /// <summary>Gets the failed verification, when there is one.</summary>
    public ModelVerification? Verification { get; }
}
