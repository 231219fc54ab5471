namespace Har.Service.Infrastructure;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Warning, "No API keys were configured: generated an operator+auditor key in {Path} (keep it secret; configure Har:Service:ApiKeys to use your own).")]
    public static partial void GeneratedApiKey(ILogger logger, string path);

    [LoggerMessage(2, LogLevel.Error, "Unhandled error serving {Method} {Path}")]
    public static partial void Unhandled(ILogger logger, Exception exception, string method, string path);

    [LoggerMessage(3, LogLevel.Error, "Could not write the audit event for operation {Operation}")]
    public static partial void OperationAuditFailed(ILogger logger, Exception exception, string operation);

    [LoggerMessage(4, LogLevel.Error, "Could not write the audit summary of {Refused} refused requests")]
    public static partial void RefusalSummaryFailed(ILogger logger, Exception exception, long refused);

    [LoggerMessage(5, LogLevel.Critical, "The service cannot start: {Reason}")]
    public static partial void CannotStart(ILogger logger, string reason);

    [LoggerMessage(6, LogLevel.Information, "Released memory after evicting {Evicted} idle streams: managed heap {BeforeMiB} MiB -> {AfterMiB} MiB")]
    public static partial void MemoryReleased(ILogger logger, long evicted, long beforeMiB, long afterMiB);
}
