using Microsoft.Extensions.Logging;

namespace Har.Audit;

/// <summary>The package's source-generated log messages.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Opened audit log {Directory}: {Entries} entries ({Sealed} sealed, {Scanned} re-scanned).")]
    public static partial void Opened(ILogger logger, string directory, long entries, long @sealed, long scanned);

    [LoggerMessage(3, LogLevel.Warning, "Audit log {Directory}: the recovery seal does not match the derived files ({Reason}); rebuilding them from the start.")]
    public static partial void SealMismatch(ILogger logger, string directory, string reason);

    [LoggerMessage(5, LogLevel.Information, "Audit log {Directory}: signed checkpoint at size {Size} by {KeyName}.")]
    public static partial void Checkpointed(ILogger logger, string directory, long size, string keyName);

    [LoggerMessage(6, LogLevel.Error, "Audit log {Directory}: background seal failed.")]
    public static partial void SealFailed(ILogger logger, string directory, Exception exception);

    [LoggerMessage(7, LogLevel.Critical, "Audit log {Directory}: write or fsync failed; appends are refused (retrying every {RetrySeconds} s) until the folder is writable again.")]
    public static partial void Unavailable(ILogger logger, string directory, double retrySeconds, Exception exception);

    [LoggerMessage(8, LogLevel.Warning, "Audit log {Directory}: still not writable ({Problem}).")]
    public static partial void StillUnavailable(ILogger logger, string directory, string problem);

    [LoggerMessage(9, LogLevel.Information, "Audit log {Directory}: writable again; appends are accepted.")]
    public static partial void Writable(ILogger logger, string directory);

    [LoggerMessage(10, LogLevel.Warning, "Audit log {Directory}: dropped a torn tail of {Bytes} bytes at offset {Offset} (never acknowledged: {Reason}); a copy is kept at {Copy}.")]
    public static partial void TornTail(ILogger logger, string directory, long bytes, long offset, string reason, string copy);

    [LoggerMessage(11, LogLevel.Critical, "Audit log {Directory}: REPAIR by {Actor} ({Reason}): removed {Bytes} bytes from entry {Index} (offset {Offset}); kept in {Quarantine}.")]
    public static partial void Repaired(ILogger logger, string directory, string actor, string reason, long bytes, long index, long offset, string quarantine);

    [LoggerMessage(12, LogLevel.Error, "Audit log {Directory}: checkpoint not signed: {Problem}")]
    public static partial void CheckpointRefused(ILogger logger, string directory, string problem);

    [LoggerMessage(13, LogLevel.Critical, "Audit log {Database}: the commit failed; appends are refused (probing every {RetrySeconds} s) until PostgreSQL answers again.")]
    public static partial void DatabaseUnavailable(ILogger logger, string database, double retrySeconds, Exception exception);
}
