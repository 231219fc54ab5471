using System.Text.Json.Nodes;
using Har.Audit;

namespace Har.Deployment;

/// <summary>The registry's audit records: anchors before side effects, refusals after them.</summary>
public sealed partial class ModelRegistry
{
    /// <summary>
    /// Appends a version's anchor (and for a registration its deployment record) and waits until it is
    /// durable. Called before anything is written to the registry: when the log cannot take it, the
    /// operation is refused with nothing done.
    /// </summary>
    /// <exception cref="ModelRegistryUnavailableException">The audit log did not acknowledge the records.</exception>
    private void AppendAnchor(string eventType, RegisteredModel model, ModelAnchor anchor, string actor, DateTimeOffset now, DeploymentRecord? record, bool makeCurrent, string? source)
    {
        if (Audit is not { } audit)
        {
            return;
        }

        var details = new JsonObject
        {
            ["version"] = model.Version,
            ["sha256"] = anchor.Sha256,
            ["config_sha256"] = anchor.ConfigSha256,
            ["record_sha256"] = anchor.RecordSha256,
            ["registry_id"] = RegistryId,
            ["deployment_id"] = model.DeploymentId,
            ["directory"] = ModelVersionName.FolderName(model.Version),
            ["current"] = makeCurrent,
        };
        if (source is not null)
        {
            details["source"] = source;
        }

        try
        {
            if (record is not null)
            {
                audit.AppendRecordAsync(record, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }

            audit.AppendAsync(new DeploymentAuditEvent(eventType, "model", $"{model.ModelName}@{model.Version}", "info", actor, now, details), CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or UnauthorizedAccessException)
        {
            throw new ModelRegistryUnavailableException($"Model version {model.Version} was not {(eventType == RegistryAnchors.Adopted ? "adopted" : "registered")}: its audit record could not be written ({ex.GetType().Name}), and the registry changes nothing it cannot audit. Retry when the audit log is writable again.", ex);
        }
    }

    /// <summary>A registration was audited but its folder could not be published: the anchor is withdrawn (best effort).</summary>
    private void WithdrawAnchor(RegisteredModel model, Exception error, DateTimeOffset now)
    {
        Anchors?.Remove(model.Version, model.Sha256, RegistryId);
        TryAppend(new DeploymentAuditEvent(RegistryAnchors.RegistrationFailed, "model", $"{model.ModelName}@{model.Version}", "error", "har-deployment", now, new JsonObject
        {
            ["version"] = model.Version,
            ["sha256"] = model.Sha256,
            ["registry_id"] = RegistryId,
            ["reason"] = $"the version folder could not be written ({error.GetType().Name})",
        }));
    }

    /// <summary>
    /// Takes the writer lock and withdraws the anchors of registrations a crash interrupted: a process killed after its
    /// registration's audit record and before its folder's rename left a <c>registry.registered</c> entry (with the
    /// deployment record) for bytes that were never registered, and a re-upload of the version added a second one with
    /// other hashes, with nothing marking the first as aborted. The writer that removes the staging folder appends the
    /// <c>registry.registration_failed</c> the killed process could not.
    /// </summary>
    private RegistryLock AcquireWriter()
    {
        var writer = RegistryLock.Acquire(Root);
        foreach (var version in writer.InterruptedRegistrations)
        {
            string folder;
            try
            {
                folder = VersionDirectory(version);
            }
            catch (ArgumentException)
            {
                continue; // not a name this registry would have staged
            }

            // Published (the rename happened) or registered by another registry sharing the log: not this crash's.
            if (Directory.Exists(folder) || Anchors?.FindFrom(version, RegistryId) is not { } anchor || anchor.RegistryId != RegistryId)
            {
                continue;
            }

            Anchors.Remove(version, anchor.Sha256, RegistryId);
            TryAppend(new DeploymentAuditEvent(RegistryAnchors.RegistrationFailed, "model", anchor.EntityId ?? version, "error", "har-deployment", _time.GetUtcNow(), new JsonObject
            {
                ["version"] = version,
                ["sha256"] = anchor.Sha256,
                ["registry_id"] = RegistryId,
                ["registered_index"] = anchor.Index,
                ["reason"] = "the registration was interrupted (the process stopped after its audit record and before the version's folder was published); its staging folder was removed by the next writer",
            }));
        }

        return writer;
    }

    /// <summary>Audits a refusal (best effort: a refusal stands even when the log cannot take its record).</summary>
    private void RefuseQuietly(ModelVerification verification, string purpose) =>
        TryAppend(new DeploymentAuditEvent("registry.refused", "model", verification.Version, "critical", "har-deployment", verification.VerifiedAt, new JsonObject
        {
            ["version"] = verification.Version,
            ["purpose"] = purpose,
            ["expected_sha256"] = verification.ExpectedSha256,
            ["actual_sha256"] = verification.ActualSha256,
            ["problems"] = new JsonArray([.. verification.Problems.Select(p => (JsonNode)p)]),
        }));

    private void TryAppend(DeploymentAuditEvent auditEvent)
    {
        try
        {
            Audit?.AppendAsync(auditEvent, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or UnauthorizedAccessException)
        {
            // The operation this record describes has already been refused or undone; there is nothing left to protect.
        }
    }
}
