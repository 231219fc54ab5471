using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Audit;

/// <summary>Options of an <see cref="AuditLog"/>.</summary>
public sealed class AuditLogOptions
{
    /// <summary>
    /// Gets or sets the log directory: a new or empty folder (created if missing) for a new log, or the folder of an existing
    /// log. Required unless <see cref="ConnectionString"/> is set; not both. A folder that holds other files and no audit log
    /// is refused rather than written into.
    /// </summary>
    /// <value>The default value is an empty string, which fails validation when no connection string is set.</value>
    public string Directory { get; set; } = string.Empty;

    /// <summary>
    /// Gets or sets an Npgsql connection string: when set, the log is kept in that PostgreSQL database (schema
    /// <c>har_audit</c>, created and migrated on open) instead of <see cref="Directory"/>, so every process of a fleet
    /// appends to one log (one sequencer, group commit per process, acknowledged after commit) and reads it.
    /// Leave <see cref="Directory"/> empty when it is set. The service reads it from <c>ConnectionStrings:Har</c>.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: the embedded file log in <see cref="Directory"/>.</value>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// Gets or sets the log's origin: the first line of its checkpoints, naming the log uniquely
    /// (C2SP recommends a schema-less URL such as <c>audit.example.com/har</c>). Fixed when the log is
    /// created; opening an existing log with a different origin fails.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: a new log is named <c>har.audit/&lt;directory name&gt;</c>, an existing log keeps its origin.</value>
    public string? Origin { get; set; }

    /// <summary>Gets or sets the largest canonical record accepted, in bytes.</summary>
    /// <value>The default value is 1 MiB.</value>
    [Range(256, 64 << 20, ErrorMessage = "AuditLogOptions.MaxRecordBytes must be between 256 bytes and 64 MiB.")]
    public int MaxRecordBytes { get; set; } = 1 << 20;

    /// <summary>Gets or sets the most appends committed by one write and fsync (group commit).</summary>
    /// <value>The default value is 16384.</value>
    [Range(1, 1_000_000, ErrorMessage = "AuditLogOptions.MaxGroupCommitRecords must be between 1 and 1,000,000.")]
    public int MaxGroupCommitRecords { get; set; } = 16384;

    /// <summary>
    /// Gets or sets how many entries may accumulate before the derived files (Merkle nodes, query index)
    /// are fsynced and a recovery seal written in the background. Opening the log re-scans the
    /// entries after the last seal, so this bounds recovery time. Not public: no documented configuration tunes it; the
    /// crash and recovery tests set small values through InternalsVisibleTo.
    /// </summary>
    /// <value>The default value is 262144.</value>
    internal int SealInterval { get; set; } = 262_144;

    /// <summary>Gets or sets how often an unavailable log (failed write or fsync) probes its folder to become writable again.</summary>
    /// <value>The default value is 5 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00", ErrorMessage = "AuditLogOptions.RetryInterval must be between 10 ms and 1 hour.")]
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Gets or sets how often the checkpoint signer (<see cref="Microsoft.Extensions.DependencyInjection.HarAuditBuilder.AddCheckpointSigning"/>) signs a checkpoint when the log grew; it also signs once at shutdown.</summary>
    /// <value>The default value is 1 minute.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00", ErrorMessage = "AuditLogOptions.CheckpointInterval must be between 10 ms and 1 day.")]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets the checkpoint signing key file (see <see cref="AuditSigningKey.Save"/>) used by <see cref="AuditLog.CreateCheckpoint"/> without a key.</summary>
    /// <value>The default value is <see langword="null"/>: checkpoints need an explicit key.</value>
    public string? SigningKeyPath { get; set; }

    /// <summary>Gets or sets the pinned verifier key that <see cref="AuditLog.Verify()"/> checks the latest checkpoint's signature with.</summary>
    /// <value>The default value is <see langword="null"/>: the verifier key stored beside the checkpoint is used, and the result says so.</value>
    public string? VerifierKey { get; set; }

    /// <summary>Gets or sets a value indicating whether Prometheus metrics are recorded.</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool EnableMetrics { get; set; } = true;

    /// <summary>Gets or sets the Prometheus registry the metrics are registered in.</summary>
    /// <value>The default value is <see langword="null"/>: <see cref="Metrics.DefaultRegistry"/>.</value>
    public CollectorRegistry? MetricsRegistry { get; set; }
}

/// <summary>Validates <see cref="AuditLogOptions"/> (source-generated from the data annotations).</summary>
[OptionsValidator]
internal sealed partial class AuditLogOptionsValidator : IValidateOptions<AuditLogOptions>
{
}

/// <summary>Checks what the attributes cannot: <see cref="AuditLogOptions.Directory"/> and <see cref="AuditLogOptions.ConnectionString"/> are not both set, and <see cref="AuditLogOptions.VerifierKey"/> parses.</summary>
internal sealed class AuditStorageOptionsValidator : IValidateOptions<AuditLogOptions>
{
    public ValidateOptionsResult Validate(string? name, AuditLogOptions options) =>
        (AuditLog.StorageConflict(options) ?? AuditLog.VerifierKeyProblem(options)) is { } error ? ValidateOptionsResult.Fail(error) : ValidateOptionsResult.Success;
}
