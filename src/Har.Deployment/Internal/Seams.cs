using System.Text.Json.Nodes;
using Har.Inference;

namespace Har.Deployment;

/// <summary>One audit event as Har.Deployment emits it (the fields of Har.Audit's generic audit event).</summary>
/// <param name="EventType">e.g. <c>rollout.transition</c>, <c>rollout.command</c>, <c>rollout.verdict</c>, <c>rollout.rollback</c>, <c>registry.refused</c>.</param>
/// <param name="EntityType"><c>rollout</c> or <c>model</c>.</param>
/// <param name="EntityId">The rollout id or <c>name@version</c>.</param>
/// <param name="Severity"><c>info</c>, <c>warning</c> or <c>critical</c>.</param>
/// <param name="Actor">Who caused it (an operator, or <c>har-deployment</c> for automatic decisions).</param>
/// <param name="Timestamp">When (from the controller's <see cref="TimeProvider"/>).</param>
/// <param name="Details">The action details (evidence, phases, versions); includes <c>sequence</c> for rollout events.</param>
internal sealed record DeploymentAuditEvent(string EventType, string EntityType, string EntityId, string Severity, string Actor, DateTimeOffset Timestamp, JsonObject Details);

/// <summary>The seam to the audit log.</summary>
internal interface IDeploymentAuditSink
{
    /// <summary>Appends durably (returns after the record is on disk).</summary>
    ValueTask AppendAsync(DeploymentAuditEvent auditEvent, CancellationToken cancellationToken);

    /// <summary>
    /// Appends durably unless the log already holds this very event (same type, entity, details, actor and timestamp):
    /// the rollout outbox's events, which a resumed fleet leader may flush again after another replica did.
    /// </summary>
    ValueTask AppendOnceAsync(DeploymentAuditEvent auditEvent, CancellationToken cancellationToken) => AppendAsync(auditEvent, cancellationToken);

    /// <summary>Appends a typed record (the deployment record of a registered version).</summary>
    ValueTask AppendRecordAsync(Har.Audit.AuditRecord record, CancellationToken cancellationToken);

    /// <summary>The highest <c>sequence</c> recorded for a rollout, or -1 (used to flush the outbox exactly once after a crash).</summary>
    ValueTask<long> GetLastSequenceAsync(string rolloutId, CancellationToken cancellationToken);

    /// <summary>Whether the log can record now (false after a failed write, until the log's own probe finds the disk writable again).</summary>
    bool IsWritable => true;

    /// <summary>
    /// What the log records of the rollout started most recently by the registry <paramref name="registryId"/> (or by a
    /// release that did not record registries), or <see langword="null"/> when it records none.
    /// </summary>
    ValueTask<LoggedRollout?> GetLatestRolloutAsync(string registryId, CancellationToken cancellationToken) => ValueTask.FromResult<LoggedRollout?>(null);
}

/// <summary>
/// What the audit log records of one rollout, read when the controller opens to check its state file against the log.
/// Records are taken in the order of their <c>sequence</c>; one appended again (same or lower number) adds nothing.
/// </summary>
/// <param name="RolloutId">The rollout.</param>
/// <param name="Phase">Its last recorded phase.</param>
/// <param name="From">The phase its last transition left.</param>
/// <param name="Champion">The version that served when it started.</param>
/// <param name="Candidate">The version it rolled out.</param>
/// <param name="Promoted">Whether it reached <see cref="RolloutPhase.Promoting"/> (the candidate was made current there).</param>
/// <param name="RollbackTarget">The version its last rollback restored, or <see langword="null"/>.</param>
/// <param name="EndedByOpen">Whether its end was recorded by a controller that opened without its state (it ended where it was).</param>
/// <param name="LastSequence">The highest sequence recorded for it.</param>
internal sealed record LoggedRollout(string RolloutId, RolloutPhase Phase, RolloutPhase? From, string? Champion, string? Candidate, bool Promoted, string? RollbackTarget, bool EndedByOpen, long LastSequence)
{
    /// <summary>
    /// The version that served all traffic once it ended, by the log: the rollback's target, the candidate of a promotion,
    /// the champion otherwise. <see langword="null"/> while it runs, and for a rollout whose state was lost while it
    /// promoted (the pointer may have moved or not: the log cannot say).
    /// </summary>
    public string? ServedAfterEnd => Phase switch
    {
        RolloutPhase.RolledBack => RollbackTarget ?? Champion,
        RolloutPhase.Succeeded => Promoted ? Candidate : Champion,
        RolloutPhase.Failed or RolloutPhase.Aborted when EndedByOpen && From == RolloutPhase.Promoting => null,
        RolloutPhase.Failed or RolloutPhase.Aborted => Champion,
        _ => null,
    };
}

/// <summary>The built-in smoke test's outcome.</summary>
internal sealed record SmokeTestOutcome(bool Passed, string Message, IReadOnlyDictionary<string, double> Evidence);

/// <summary>The seam to model loading and prediction (Har.Inference).</summary>
internal interface IModelVersionHost : IAsyncDisposable
{
    /// <summary>Loads and warms a verified version (no-op when already loaded).</summary>
    ValueTask LoadAsync(VerifiedModelBytes model, CancellationToken cancellationToken);

    bool IsLoaded(string version);

    /// <summary>The card of a loaded version.</summary>
    ModelCard GetCard(string version);

    /// <summary>Scores one window (sensor units) through the version's micro-batcher.</summary>
    ValueTask<Prediction> PredictAsync(string version, ReadOnlyMemory<float> window, CancellationToken cancellationToken);

    /// <summary>Runs the built-in check of a loaded version on known windows (against <paramref name="stableVersion"/> when given).</summary>
    SmokeTestOutcome SmokeTest(string version, string? stableVersion);

    /// <summary>The version's intrinsic p95 latency measured at warm-up (one window at a time), or null when unknown.</summary>
    TimeSpan? GetBaselineLatency(string version);

    /// <summary>
    /// The version's outputs on the known reference windows, its predicted classes counted in <paramref name="inOrderOf"/>'s
    /// class order (by activity name, as the analysis counts them), or null when there are none.
    /// </summary>
    OutputReference? GetOutputReference(string version, string inOrderOf);

    /// <summary>Sets the known windows of the built-in smoke test and the agreement it requires with the stable version.</summary>
    void SetSmokeWindows(IReadOnlyList<float[]> windows, double minAgreement);

    ValueTask UnloadAsync(string version);
}

/// <summary>Registry events on the audit seam.</summary>
internal static class DeploymentAuditSinkExtensions
{
    public static void ModelRegistered(this IDeploymentAuditSink sink, RegisteredModel model, Har.Audit.DeploymentRecord record, string actor, DateTimeOffset now)
    {
        sink.AppendRecordAsync(record, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        sink.AppendAsync(
            new DeploymentAuditEvent("registry.registered", "model", $"{model.ModelName}@{model.Version}", "info", actor, now, new JsonObject
            {
                ["version"] = model.Version,
                ["sha256"] = model.Sha256,
                ["deployment_id"] = model.DeploymentId,
                ["directory"] = Path.GetFileName(model.Directory),
            }),
            CancellationToken.None).AsTask().GetAwaiter().GetResult();
    }

    public static void ModelRefused(this IDeploymentAuditSink sink, ModelVerification verification, string purpose, DateTimeOffset now) =>
        sink.AppendAsync(
            new DeploymentAuditEvent("registry.refused", "model", verification.Version, "critical", "har-deployment", now, new JsonObject
            {
                ["version"] = verification.Version,
                ["purpose"] = purpose,
                ["expected_sha256"] = verification.ExpectedSha256,
                ["actual_sha256"] = verification.ActualSha256,
                ["problems"] = new JsonArray([.. verification.Problems.Select(p => (JsonNode)p)]),
            }),
            CancellationToken.None).AsTask().GetAwaiter().GetResult();
}
