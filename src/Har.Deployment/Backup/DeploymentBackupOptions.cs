using Har.Audit;

namespace Har.Deployment;

/// <summary>Options of <see cref="DeploymentBackup.CreateAsync"/>.</summary>
public sealed class DeploymentBackupOptions
{
    /// <summary>Gets or sets the key that signs the checkpoint of the archive's audit log (the log's own checkpoint key, so the copy verifies with the verifier key auditors already hold). Required.</summary>
    /// <value>The default value is <see langword="null"/>, which <see cref="DeploymentBackup.CreateAsync"/> refuses.</value>
    public AuditSigningKey? SigningKey { get; set; }

    /// <summary>
    /// Gets or sets a signing key file to include in the archive as <c>keys/audit.key</c> (with <c>keys/audit.vkey</c>), so
    /// a restored log is signed on by the same key. The archive then holds a secret: store it like one.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: no key in the archive; restore the key file from where you keep secrets before the restored log signs again.</value>
    public string? SigningKeyFile { get; set; }

    /// <summary>Gets or sets who takes the backup (the actor of its <c>backup.created</c> audit record).</summary>
    /// <value>The default value is <c>har-deployment</c>.</value>
    public string Actor { get; set; } = "har-deployment";

    /// <summary>Gets or sets why (recorded in the audit record and the manifest), e.g. <c>before rollout of 1.1.0</c>.</summary>
    /// <value>The default value is <c>scheduled backup</c>.</value>
    public string Reason { get; set; } = "scheduled backup";

    /// <summary>Gets or sets how many archives to keep in the archive's folder: after a backup, older <c>har-backup-*.tar.gz</c> files beyond this many are deleted.</summary>
    /// <value>The default value is <see langword="null"/>: keep every archive.</value>
    public int? Keep { get; set; }
}

/// <summary>A backup archive that was written (see <see cref="DeploymentBackup.CreateAsync"/>).</summary>
/// <param name="BackupId">The backup's id (also the <c>backup.created</c> audit record's entity id).</param>
/// <param name="ArchivePath">The archive file.</param>
/// <param name="Sha256">The SHA-256 of the archive file.</param>
/// <param name="Bytes">The archive's size in bytes.</param>
/// <param name="AuditEntries">The audit log entries in the archive (its checkpoint's size); the last is the backup record.</param>
/// <param name="Files">The files in the archive besides the manifest.</param>
/// <param name="CurrentVersion">The registry's current version at the backup, or <see langword="null"/>.</param>
/// <param name="Versions">The registered versions in the archive.</param>
/// <param name="Pruned">The older archives deleted by <see cref="DeploymentBackupOptions.Keep"/>.</param>
public sealed record DeploymentBackupResult(string BackupId, string ArchivePath, string Sha256, long Bytes, long AuditEntries, int Files, string? CurrentVersion, IReadOnlyList<string> Versions, IReadOnlyList<string> Pruned);

/// <summary>What verifying (or restoring) an archive established.</summary>
/// <param name="BackupId">The backup's id.</param>
/// <param name="CreatedAt">When the backup was taken.</param>
/// <param name="AuditEntries">The audit log entries restored, all verified against the signed checkpoint.</param>
/// <param name="CurrentVersion">The registry's current version in the archive.</param>
/// <param name="Versions">The registered versions, each verified against the audit log.</param>
/// <param name="Files">The files checked against the manifest.</param>
/// <param name="VerifierKey">The verifier key the checkpoint was checked with.</param>
/// <param name="KeyPinned">Whether that key was given by the caller (<see langword="false"/>: the key stored in the archive, which proves integrity but not origin).</param>
/// <param name="HasSigningKey">Whether the archive holds the checkpoint signing key (<c>keys/audit.key</c>).</param>
public sealed record DeploymentBackupVerification(string BackupId, DateTimeOffset CreatedAt, long AuditEntries, string? CurrentVersion, IReadOnlyList<string> Versions, int Files, string VerifierKey, bool KeyPinned, bool HasSigningKey);

/// <summary>A backup archive failed verification; nothing was restored. The message names what was wrong.</summary>
public sealed class DeploymentBackupException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="DeploymentBackupException"/> class.</summary>
    /// <param name="message">What was wrong.</param>
    public DeploymentBackupException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="DeploymentBackupException"/> class.</summary>
    /// <param name="message">What was wrong.</param>
    /// <param name="innerException">The cause.</param>
    public DeploymentBackupException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="DeploymentBackupException"/> class.</summary>
    public DeploymentBackupException()
    {
    }
}
