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

/// <summary>
/// A backup archive and what was established about it: by writing it (<see cref="DeploymentBackup.CreateAsync"/>) or by
/// checking it (<see cref="DeploymentBackup.Verify"/>, <see cref="DeploymentBackup.Restore"/>,
/// <see cref="DeploymentBackup.RestoreToDatabase"/>).
/// </summary>
public sealed class DeploymentBackupResult
{
    internal DeploymentBackupResult(string backupId, DateTimeOffset createdAt, string archivePath, long auditEntries, int files, string? currentVersion, IReadOnlyList<string> versions, string verifierKey, bool keyPinned, bool hasSigningKey, int labelledWindows, IReadOnlyList<string> pruned, string format)
    {
        Format = format;
        BackupId = backupId;
        CreatedAt = createdAt;
        ArchivePath = archivePath;
        Sha256 = DeploymentBackup.HashFile(archivePath);
        Bytes = new FileInfo(archivePath).Length;
        AuditEntries = auditEntries;
        Files = files;
        CurrentVersion = currentVersion;
        Versions = versions;
        VerifierKey = verifierKey;
        KeyPinned = keyPinned;
        HasSigningKey = hasSigningKey;
        LabelledWindows = labelledWindows;
        Pruned = pruned;
    }

    /// <summary>
    /// Gets the archive's format: <c>har-backup/v2</c>, or <c>har-backup/v1</c> for an archive from before labelled windows
    /// were kept (its <see cref="LabelledWindows"/> is 0 whatever the service it was taken from held).
    /// </summary>
    public string Format { get; }

    /// <summary>Gets the backup's id (also the <c>backup.created</c> audit record's entity id).</summary>
    public string BackupId { get; }

    /// <summary>Gets when the backup was taken.</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>Gets the archive file.</summary>
    public string ArchivePath { get; }

    /// <summary>Gets the SHA-256 of the archive file.</summary>
    public string Sha256 { get; }

    /// <summary>Gets the archive's size in bytes.</summary>
    public long Bytes { get; }

    /// <summary>Gets the audit log entries in the archive (its checkpoint's size; the last is the backup record); when checked, all verified against the signed checkpoint.</summary>
    public long AuditEntries { get; }

    /// <summary>Gets the files in the archive besides the manifest; when checked, each matched the manifest.</summary>
    public int Files { get; }

    /// <summary>Gets the registry's current version in the archive, or <see langword="null"/>.</summary>
    public string? CurrentVersion { get; }

    /// <summary>Gets the registered versions in the archive; when checked, each verified against the audit log.</summary>
    public IReadOnlyList<string> Versions { get; }

    /// <summary>Gets the verifier key of the key that signed the archive's checkpoint (when checked: the key it was checked with).</summary>
    public string VerifierKey { get; }

    /// <summary>
    /// Gets whether that key came from the caller: when writing, always (<see cref="DeploymentBackupOptions.SigningKey"/>);
    /// when checking, <see langword="false"/> if no verifier key was passed and the key stored in the archive was used,
    /// which proves integrity but not origin.
    /// </summary>
    public bool KeyPinned { get; }

    /// <summary>Gets whether the archive holds the checkpoint signing key (<c>keys/audit.key</c>, <see cref="DeploymentBackupOptions.SigningKeyFile"/>).</summary>
    public bool HasSigningKey { get; }

    /// <summary>
    /// Gets the labelled windows in the archive: the accuracy gate's evidence (each window's true activity and every
    /// version's answer), which new traffic cannot rebuild once the windows it labelled are gone. A restore puts them
    /// where the restored service or fleet reads them at its start.
    /// </summary>
    public int LabelledWindows { get; }

    /// <summary>Gets the older archives deleted by <see cref="DeploymentBackupOptions.Keep"/> after writing this one (empty when checking).</summary>
    public IReadOnlyList<string> Pruned { get; }

    /// <inheritdoc/>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"backup {BackupId} of {CreatedAt:yyyy-MM-dd'T'HH:mm:ss'Z'}: {Files} files, {AuditEntries} audit entries, {LabelledWindows} labelled windows, versions [{string.Join(", ", Versions)}], current {CurrentVersion ?? "-"}, key {(KeyPinned ? "pinned" : "from the archive")}, {Bytes} bytes, sha256 {Sha256}, {ArchivePath}");
}

/// <summary>A backup archive failed verification; nothing was restored. The message names what was wrong.</summary>
public sealed class DeploymentBackupException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="DeploymentBackupException"/> class.</summary>
    /// <param name="message">What was wrong.</param>
    internal DeploymentBackupException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="DeploymentBackupException"/> class.</summary>
    /// <param name="message">What was wrong.</param>
    /// <param name="innerException">The cause.</param>
    internal DeploymentBackupException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="DeploymentBackupException"/> class.</summary>
    internal DeploymentBackupException()
    {
    }
}
