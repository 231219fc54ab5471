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
    internal string Directory { get; }

    /// <summary>Gets the path of the version's <c>model.onnx</c>.</summary>
    public string ModelPath => Path.Combine(Directory, ModelRegistry.ModelFileName);

    /// <summary>Gets the path of the version's <c>config.json</c> (the model card).</summary>
    internal string ConfigPath => Path.Combine(Directory, ModelRegistry.ConfigFileName);

    /// <summary>Gets the path of the version's <c>deployment_record.json</c>.</summary>
    internal string DeploymentRecordPath => Path.Combine(Directory, ModelRegistry.RecordFileName);

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

/// <summary>The outcome of verifying a version (<see cref="ModelRegistry.Verify(string)"/>, <see cref="ModelRegistry.GetVerification(string)"/>).</summary>
public sealed class ModelVerification
{
    internal ModelVerification(string version, string? expectedSha256, string? actualSha256, IReadOnlyList<string> problems, DateTimeOffset verifiedAt)
    {
        Version = version;
        ExpectedSha256 = expectedSha256;
        ActualSha256 = actualSha256;
        Problems = problems;
        VerifiedAt = verifiedAt;
    }

    /// <summary>Gets the version checked.</summary>
    public string Version { get; }

    /// <summary>Gets the reference hash of <c>model.onnx</c>: the one the audit log registered, or without a log the deployment record's; <see langword="null"/> when neither is readable.</summary>
    public string? ExpectedSha256 { get; }

    /// <summary>Gets the hash of <c>model.onnx</c> as it was read, or <see langword="null"/> if the file is missing.</summary>
    public string? ActualSha256 { get; }

    /// <summary>Gets what is wrong, one sentence each (file names relative to the version folder); empty when the version is valid.</summary>
    public IReadOnlyList<string> Problems { get; }

    /// <summary>Gets when the verification ran.</summary>
    public DateTimeOffset VerifiedAt { get; }

    /// <summary>Gets a value indicating whether the version's files agree with their reference.</summary>
    public bool IsValid => Problems.Count == 0;

    /// <inheritdoc />
    public override string ToString() => IsValid ? $"{Version}: verified (sha256 {ActualSha256})" : $"{Version}: refused: {string.Join(" ", Problems)}";
}

/// <summary>A registered model version failed verification and was refused.</summary>
public sealed class ModelIntegrityException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="ModelIntegrityException"/> class.</summary>
    internal ModelIntegrityException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelIntegrityException"/> class.</summary>
    /// <param name="message">What was wrong.</param>
    internal ModelIntegrityException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelIntegrityException"/> class.</summary>
    /// <param name="message">What was wrong.</param>
    /// <param name="innerException">The underlying error.</param>
    internal ModelIntegrityException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelIntegrityException"/> class.</summary>
    /// <param name="verification">The failed verification.</param>
    internal ModelIntegrityException(ModelVerification verification)
        : base($"Model version {verification?.Version} failed verification and will not be loaded: {string.Join(" ", verification?.Problems ?? [])}")
    {
        Verification = verification;
    }

    /// <summary>Gets the failed verification, when there is one.</summary>
    public ModelVerification? Verification { get; }
}

/// <summary>The model version is already registered; versions are immutable (HTTP hosts answer 409).</summary>
public sealed class ModelVersionConflictException : InvalidOperationException
{
    /// <summary>Initializes a new instance of the <see cref="ModelVersionConflictException"/> class.</summary>
    internal ModelVersionConflictException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelVersionConflictException"/> class.</summary>
    /// <param name="message">What was wrong.</param>
    internal ModelVersionConflictException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelVersionConflictException"/> class.</summary>
    /// <param name="message">What was wrong.</param>
    /// <param name="innerException">The underlying error.</param>
    internal ModelVersionConflictException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal ModelVersionConflictException(string version, string message)
        : base(message) => Version = version;

    /// <summary>Gets the version that is already registered, when known.</summary>
    public string? Version { get; }
}

/// <summary>
/// The registry refused an operation because its audit record could not be written (read-only or full
/// disk, I/O error); nothing was changed. Retry when the audit log is writable again (HTTP hosts answer 503).
/// </summary>
public sealed class ModelRegistryUnavailableException : IOException
{
    /// <summary>Initializes a new instance of the <see cref="ModelRegistryUnavailableException"/> class.</summary>
    internal ModelRegistryUnavailableException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelRegistryUnavailableException"/> class.</summary>
    /// <param name="message">What was refused and why.</param>
    internal ModelRegistryUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelRegistryUnavailableException"/> class.</summary>
    /// <param name="message">What was refused and why.</param>
    /// <param name="innerException">The audit log's error.</param>
    internal ModelRegistryUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
