using Microsoft.Extensions.Logging;

namespace Har.Deployment;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Rollout {RolloutId}: {From} -> {To} ({Message})")]
    public static partial void Transition(ILogger logger, string rolloutId, RolloutPhase? from, RolloutPhase to, string message);

    [LoggerMessage(2, LogLevel.Information, "Rollout {RolloutId}: command {Command} by {Actor}: {Reason}")]
    public static partial void Command(ILogger logger, string rolloutId, RolloutCommandKind command, string actor, string reason);

    [LoggerMessage(3, LogLevel.Information, "Rollout {RolloutId}: analysis {Verdict} (passes {Passes}, failures {Failures})")]
    public static partial void Analysis(ILogger logger, string rolloutId, string verdict, int passes, int failures);

    [LoggerMessage(4, LogLevel.Warning, "Rollout {RolloutId}: rolling back {Candidate} to {Champion}: {Reason}")]
    public static partial void RollingBack(ILogger logger, string rolloutId, string candidate, string champion, string reason);

    [LoggerMessage(5, LogLevel.Warning, "Rollout {RolloutId}: post-rollout hook {Hook} did not succeed: {Message}")]
    public static partial void PostHookFailed(ILogger logger, string rolloutId, string hook, string message);

    [LoggerMessage(6, LogLevel.Information, "Rollout {RolloutId}: resumed from persisted state in phase {Phase} at step {Step} (revision {Revision})")]
    public static partial void Resumed(ILogger logger, string rolloutId, RolloutPhase phase, int step, long revision);

    [LoggerMessage(7, LogLevel.Error, "Rollout {RolloutId}: {Message}")]
    public static partial void Error(ILogger logger, string rolloutId, string message, Exception exception);

    [LoggerMessage(8, LogLevel.Error, "Serving observer {Observer} threw; the prediction was served and the failure counted in har_serving_observer_errors_total")]
    public static partial void ObserverFailed(ILogger logger, string observer, Exception exception);

    [LoggerMessage(9, LogLevel.Error, "The rollout controller's reconcile loop failed; it keeps serving the current traffic plan and retries in {RetrySeconds} s")]
    public static partial void LoopFaulted(ILogger logger, double retrySeconds, Exception exception);

    [LoggerMessage(10, LogLevel.Information, "The rollout controller's reconcile loop recovered")]
    public static partial void LoopRecovered(ILogger logger);

    [LoggerMessage(20, LogLevel.Information, "Replica {Replica} holds the controller lease (term {Term}): it analyses and applies rollout steps")]
    public static partial void BecameLeader(ILogger logger, string replica, long term);

    [LoggerMessage(21, LogLevel.Warning, "Replica {Replica} lost the controller lease (term {Term}) to another replica: it follows the shared state")]
    public static partial void LostLeadership(ILogger logger, string replica, long term);

    [LoggerMessage(22, LogLevel.Warning, "Replica {Replica} could not take or renew the controller lease; retrying")]
    public static partial void LeaseFailed(ILogger logger, string replica, Exception exception);

    [LoggerMessage(25, LogLevel.Warning, "Replica {Replica} could not renew its heartbeat (it stops counting as a live replica when the last one expires); retrying")]
    public static partial void HeartbeatFailed(ILogger logger, string replica, Exception exception);

    [LoggerMessage(23, LogLevel.Warning, "Listening for control-plane changes failed; reconnecting (the poll keeps this replica in step meanwhile)")]
    public static partial void ListenFailed(ILogger logger, Exception exception);

    [LoggerMessage(24, LogLevel.Warning, "A rollout state write lost the compare-and-set to another replica and was not applied; re-reading: {Message}")]
    public static partial void StateConflict(ILogger logger, string message);

    [LoggerMessage(40, LogLevel.Information, "Feedback: {Restored} labelled windows restored from {Path} for the accuracy gate ({Skipped} unreadable records skipped)")]
    public static partial void FeedbackRestored(ILogger logger, int restored, string path, int skipped);

    [LoggerMessage(44, LogLevel.Warning, "Feedback journal {Path}: {Skipped} records did not parse (damage, not a line torn by a crash); the file as it was is kept as {Copy}, and the {Restored} labelled windows that could be read are restored for the accuracy gate")]
    public static partial void FeedbackJournalDamaged(ILogger logger, string path, int skipped, string copy, int restored);

    [LoggerMessage(41, LogLevel.Warning, "Feedback: the windows replica {Replica} labelled since its last round could not be written to {Path} at shutdown; the fleet's accuracy gate will not count them")]
    public static partial void FeedbackNotWritten(ILogger logger, string replica, string path, Exception exception);

    [LoggerMessage(48, LogLevel.Error, "The rollout loop cannot open the rollout controller; retrying in {RetrySeconds} s (rollouts do not advance meanwhile)")]
    public static partial void RolloutLoopCannotOpen(ILogger logger, double retrySeconds, Exception exception);

    [LoggerMessage(45, LogLevel.Warning, "Serving from a read-only view of the audit log in {Directory}: it cannot be opened for writing (a full or read-only disk), so the current version was verified against its registration there and is served; model and rollout operations wait until the log opens for writing")]
    public static partial void ServingFromReadOnlyLog(ILogger logger, string directory);

    [LoggerMessage(46, LogLevel.Warning, "Rollout {RolloutId} was in {Phase} but its state is gone: {Message}")]
    public static partial void LostRolloutEnded(ILogger logger, string rolloutId, RolloutPhase phase, string message);

    [LoggerMessage(50, LogLevel.Warning, "Rollout {RolloutId}: the rollout state file is older than the audit log, so it is not resumed: {Reason}")]
    public static partial void StateBehindLog(ILogger logger, string rolloutId, string reason);

    [LoggerMessage(51, LogLevel.Warning, "{Message}")]
    public static partial void CurrentAligned(ILogger logger, string message);

    [LoggerMessage(52, LogLevel.Error, "{Message}")]
    public static partial void CurrentBehindLog(ILogger logger, string message);

    [LoggerMessage(53, LogLevel.Error, "The audit log did not take the {EventType} record")]
    public static partial void AuditAppendFailed(ILogger logger, string eventType, Exception exception);

    [LoggerMessage(47, LogLevel.Warning, "Replica {Replica}: its clock is {OffsetSeconds:0.0} s off the fleet database's (more than {LimitSeconds} s): the audit records, analysis times and durations it writes carry its clock. Synchronise the clocks (NTP); leadership does not depend on them (har_fleet_clock_offset_seconds)")]
    public static partial void ClockOffset(ILogger logger, string replica, double offsetSeconds, double limitSeconds);

    [LoggerMessage(49, LogLevel.Warning, "Rollout {RolloutId}: the verification of the rollback to {Target} was cut by a restart (or a change of fleet leader), and the requests observed since {From:O} were lost; verifying again until {DueAt:O}")]
    public static partial void RollbackVerificationRestarted(ILogger logger, string rolloutId, string target, DateTimeOffset? from, DateTimeOffset dueAt);
}
