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

    [LoggerMessage(7, LogLevel.Critical, "Starting degraded: the registry or the audit log cannot be opened (is the data volume writable?); /ready reports it and the service opens them once it can")]
    public static partial void StartingDegraded(ILogger logger, Exception exception);

    [LoggerMessage(8, LogLevel.Error, "The rollout controller cannot be opened yet (registry or audit log not writable); retrying in 5 s")]
    public static partial void ControllerUnavailable(ILogger logger, Exception exception);

    [LoggerMessage(9, LogLevel.Warning, "The stream windower cannot be built yet (no current model: registry not readable or empty); retrying in 5 s")]
    public static partial void StreamsUnavailable(ILogger logger, Exception exception);

    [LoggerMessage(10, LogLevel.Warning, "The delivery metrics cannot read the audit log now; retrying")]
    public static partial void DeliveryMetricsUnavailable(ILogger logger, Exception exception);

    [LoggerMessage(11, LogLevel.Warning, "At most {Capacity} connections at once, not Har:Service:MaxConnections {Configured}: the process may open {OpenFileLimit} files and keeps {Reserved} for its own (raise the open-file limit, ulimit -n, to admit more)")]
    public static partial void ConnectionCapacityLowered(ILogger logger, int capacity, int configured, long openFileLimit, long reserved);

    [LoggerMessage(12, LogLevel.Information, "Released memory after a flood of prediction request bodies ({PeakMiB} MiB of buffers at once, Har:Service:MaxArrivingBodyBytes): managed heap {BeforeMiB} MiB -> {AfterMiB} MiB")]
    public static partial void MemoryReleasedAfterBodies(ILogger logger, long peakMiB, long beforeMiB, long afterMiB);

    [LoggerMessage(13, LogLevel.Error, "Could not write the feedback audit summary of {Actor} ({Requests} requests)")]
    public static partial void FeedbackAuditFailed(ILogger logger, Exception exception, string actor, long requests);

    [LoggerMessage(14, LogLevel.Information, "Native memory: {Setting}")]
    public static partial void NativeMemory(ILogger logger, string setting);

    [LoggerMessage(50, LogLevel.Critical, "The rollout controller failed and the service stops with exit code 1 (a supervisor restarts it; the cause must be fixed first)")]
    public static partial void ControllerFailed(ILogger logger, Exception exception);

    [LoggerMessage(51, LogLevel.Information, "Stream {Stream} of {Client} gave its place in the full stream table to a new stream of {Newcomer} (Har:Service:MaxStreams; API keys first, then an equal share per anonymous client)")]
    public static partial void StreamPlaceTaken(ILogger logger, string stream, string client, string newcomer);

    [LoggerMessage(52, LogLevel.Debug, "Device {Device} of {Client} gave its drift monitor to device {Newcomer} of {NewcomerClient} (Har:Service:DriftMaxDevices; API keys first, then an equal share per anonymous client)")]
    public static partial void DriftMonitorTaken(ILogger logger, string device, string client, string newcomer, string newcomerClient);

    [LoggerMessage(53, LogLevel.Warning, "The audit checkpoint signing key changed: {Change}; recorded in the log as audit.signing_key_changed (the log's verifiers need the new verifier key, keys/audit.vkey)")]
    public static partial void SigningKeyChanged(ILogger logger, string change);

    [LoggerMessage(54, LogLevel.Warning, "The signing key was not checked against the audit log's latest checkpoint: the log is unavailable")]
    public static partial void SigningKeyUnchecked(ILogger logger, Exception exception);

    [LoggerMessage(55, LogLevel.Information, "Registered the bundled model {Version} from {ModelsDirectory} into the existing registry (audited as registry.registered); it serves only once a rollout makes it current, and the current version stays {Current}")]
    public static partial void BundledModelRegistered(ILogger logger, string version, string modelsDirectory, string current);
}
