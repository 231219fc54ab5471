namespace Har.Deployment;

/// <summary>
/// A registered version taken out of service (<see cref="ModelRegistry.Retire(string, string, string?)"/>): no rollout
/// starts with it and no rollback is sent to it until it is reinstated. Its files stay in the registry, verified as
/// before, because the audit log's records name them; the retirement itself is an entry of that log, so every
/// registry sharing the log (the replicas of a fleet) sees it.
/// </summary>
public sealed class ModelRetirement
{
    internal ModelRetirement(string version, string reason, string actor, DateTimeOffset retiredAt, long auditIndex)
    {
        Version = version;
        Reason = reason;
        Actor = actor;
        RetiredAt = retiredAt;
        AuditIndex = auditIndex;
    }

    /// <summary>Gets the retired version, e.g. <c>1.1.0</c>.</summary>
    public string Version { get; }

    /// <summary>Gets why it was retired, as the operator gave it.</summary>
    public string Reason { get; }

    /// <summary>Gets who retired it.</summary>
    public string Actor { get; }

    /// <summary>Gets when it was retired (the registry's clock).</summary>
    public DateTimeOffset RetiredAt { get; }

    /// <summary>Gets the index of its <c>registry.retired</c> entry in the audit log.</summary>
    public long AuditIndex { get; }

    /// <inheritdoc/>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Version} was retired by {Actor} at {RetiredAt:u} (audit entry {AuditIndex}): {Reason}");
}

/// <summary>
/// The registry refused to retire a version that serves, or that a rollout still needs: the current version, a
/// running rollout's champion or candidate, or the version a promoted rollout can still roll back to (HTTP hosts
/// answer 409). Nothing was changed.
/// </summary>
public sealed class ModelInUseException : InvalidOperationException
{
    /// <summary>Initializes a new instance of the <see cref="ModelInUseException"/> class.</summary>
    internal ModelInUseException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelInUseException"/> class.</summary>
    /// <param name="message">What was refused and why.</param>
    internal ModelInUseException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelInUseException"/> class.</summary>
    /// <param name="message">What was refused and why.</param>
    /// <param name="innerException">The underlying error.</param>
    internal ModelInUseException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
