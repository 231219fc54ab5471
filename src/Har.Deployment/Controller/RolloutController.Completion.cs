using System.Globalization;
using System.Text.Json.Nodes;
using Har.Audit;

namespace Har.Deployment;

/// <summary>The deployment record completed at promotion: a new audit entry that references the registration's record.</summary>
public sealed partial class RolloutController
{
    /// <summary>The audit event that completes a version's deployment record when it is promoted (entity: the rollout that promoted it; <c>version</c> in its details).</summary>
    internal const string DeploymentCompletedEvent = "deployment.completed";

    /// <summary>
    /// The completing record of the candidate's deployment: the registration's record (written with <c>approved_by</c>
    /// "pending", no smoke test, the registration's replicas) with the rollout's approvers, smoke-test result, serving
    /// replicas (1 in one process; in a fleet, the replicas with a live heartbeat) and promotion time, and a reference to the registration (its audit index and record hash).
    /// </summary>
    private JsonObject? CompletedDeployment(RolloutState s, string promotedBy)
    {
        DeploymentRecord original;
        try
        {
            original = _registry.ReadRecord(s.Candidate);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or AuditRecordException or KeyNotFoundException)
        {
            return null; // the promotion verified the record a moment ago; a record that vanished since is reported by verification
        }

        var now = _time.GetUtcNow();
        var approvers = s.ApprovedBy.Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var registeredApprover = original.Deployer.ApprovedBy is { Length: > 0 } approver && approver != "pending" ? approver : null;
        var approvedBy = approvers.Count > 0
            ? string.Join(", ", registeredApprover is null ? approvers : [registeredApprover, .. approvers])
            : registeredApprover ?? $"no approval step (promoted by {promotedBy})";
        // One process serves alone; in a fleet, the replicas whose heartbeat is live now (this leader among them).
        var replicas = _fleet is null ? 1 : Math.Max(1, _fleet.CountLiveReplicas());
        var completed = new DeploymentRecord(
            original.DeploymentId,
            original.Model,
            original.TrainingData,
            new ValidationMetrics(original.Validation.TestAccuracy, original.Validation.MacroF1, s.PassedSmokeTest),
            original.Config,
            new Deployer(original.Deployer.User, original.Deployer.Method, approvedBy),
            new DeploymentEnvironment(original.Environment.Target, replicas, original.Environment.Resources))
        {
            Timestamp = now,
        };
        var anchor = _registry.Anchors?.Find(s.Candidate);
        return new JsonObject
        {
            ["deployment_id"] = original.DeploymentId,
            ["version"] = s.Candidate,
            ["completes"] = new JsonObject
            {
                ["deployment_id"] = original.DeploymentId,
                ["registered_at"] = original.Timestamp.ToString("O", CultureInfo.InvariantCulture),
                ["registration_index"] = anchor is { Index: >= 0 } a ? a.Index : null, // known when the anchor was read from the log
                ["record_sha256"] = anchor?.RecordSha256,
            },
            ["rollout_id"] = s.RolloutId,
            ["strategy"] = s.Strategy,
            ["started_by"] = s.StartedBy,
            ["promoted_by"] = promotedBy,
            ["approved_by"] = new JsonArray([.. approvers.Select(x => JsonValue.Create(x))]),
            ["passed_smoke_test"] = s.PassedSmokeTest,
            ["replicas"] = replicas,
            ["promoted_at"] = now.ToString("O", CultureInfo.InvariantCulture),
            ["analyses_run"] = s.AnalysesRun,
            ["last_verdict"] = s.LastAnalysis?.Verdict.ToString(),
            ["record"] = JsonNode.Parse(RegistrationCard.RecordJson(completed)),
        };
    }
}
