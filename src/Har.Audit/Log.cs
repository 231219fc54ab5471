using Microsoft.Extensions.Logging;

namespace Har.Audit;

/// <summary>The package's source-generated log messages.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Opened audit log {Directory}: {Entries} entries ({Sealed} sealed, {Scanned} re-scanned).")]
    public static partial void Opened(ILogger logger, string directory, long entries, long @sealed, long scanned);

    [LoggerMessage(2, LogLevel.Warning, "Audit log {Directory}: truncated a bad tail of {Bytes} bytes at offset {Offset} ({Reason}); a copy is kept at {Quarantine}.")]
    public static partial void TailTruncated(ILogger logger, string directory, long bytes, long offset, string reason, string quarantine);

    [LoggerMessage(3, LogLevel.Warning, "Audit log {Directory}: the recovery seal does not match the derived files ({Reason}); rebuilding them from the start.")]
    public static partial void SealMismatch(ILogger logger, string directory, string reason);

    [LoggerMessage(4, LogLevel.Critical, "Audit log {Directory}: write or fsync failed; the log is faulted and must be reopened.")]
    public static partial void Faulted(ILogger logger, string directory, Exception exception);

    [LoggerMessage(5, LogLevel.Information, "Audit log {Directory}: signed checkpoint at size {Size} by {KeyName}.")]
    public static partial void Checkpointed(ILogger logger, string directory, long size, string keyName);

    [LoggerMessage(6, LogLevel.Error, "Audit log {Directory}: background seal failed.")]
    public static partial void SealFailed(ILogger logger, string directory, Exception exception);
}
