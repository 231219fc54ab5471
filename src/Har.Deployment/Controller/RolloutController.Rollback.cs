using System.Globalization;
using System.Text.Json.Nodes;

namespace Har.Deployment;

/// <summary>
/// The rollback procedure of the reference deployment in six steps, each appended to the audit log as a
/// <c>rollout.rollback.step</c> event: 1 detect (automatic or a command), 2 identify the target (the champion,
/// or an earlier registered version the operator names), 3 verify it (model hash against the audit log's
/// registration entry, card, warm-up — also when it is already loaded), 4 execute (one atomic traffic switch,
/// then the registry's <c>current</c>), 5 verify success (smoke windows through the restored version, then its
/// gates over the next analysis interval), 6 log (the incident report, <c>rollout.incident</c>).
/// </summary>
public sealed partial class RolloutController
{
    /// <summary>The audit event of one rollback step.</summary>
    internal const string RollbackStepEvent = "rollout.rollback.step";

    /// <summary>The audit event of an incident report (each revision is a new record; the latest wins).</summary>
    internal const string IncidentEvent = "rollout.incident";

    /// <summary>The incident id of a rollout's rollback.</summary>
    internal static string IncidentIdFor(string rolloutId) => "incident-" + rolloutId;

    /// <summary>The version that serves once the rollout ended on the stable side: the rollback's target, else the champion.</summary>
    private static string ServedAfterEnd(RolloutState s) => s.Rollback?.Target ?? s.Champion;

    /// <summary>
    /// Step 2's rule: the champion, or an earlier registered version (lower than the candidate) that the pipeline can
    /// serve. A named target is also verified here, so a refusal changes nothing (the caller audits it).
    /// </summary>
    private string IdentifyRollbackTarget(RolloutState s, string? requested, out string rule)
    {
        if (requested is null)
        {
            rule = "the rollout's champion (the version that served before it started)";
            return s.Champion;
        }

        string version;
        try
        {
            version = _registry.Get(requested).Version;
        }
        catch (Exception ex) when (ex is KeyNotFoundException or ArgumentException)
        {
            throw new RolloutCommandRejectedException($"Rollback target '{requested}' is not a registered version ({ex.Message}); expected the champion {s.Champion} or an earlier registered version.");
        }

        if (version == s.Champion)
        {
            rule = "the rollout's champion, named by the operator";
            return version;
        }

        if (version == s.Candidate || ModelRegistry.CompareVersions(version, s.Candidate) >= 0)
        {
            throw new RolloutCommandRejectedException($"Rollback target {version} is not earlier than the candidate {s.Candidate}; expected the champion {s.Champion} or a registered version below {s.Candidate}.");
        }

        if (_registry.GetRetirement(version) is { } retirement)
        {
            throw new RolloutCommandRejectedException($"Rollback target {retirement}. Expected the champion {s.Champion} or a registered version below {s.Candidate} that is not retired.");
        }

        if (CheckServable(version) is { } refusal)
        {
            throw new RolloutCommandRejectedException($"Rollback target {version} cannot be served: {refusal}");
        }

        var verification = _registry.Verify(version);
        if (!verification.IsValid)
        {
            throw new RolloutCommandRejectedException($"Rollback target {version} does not verify against the audit log: {string.Join(" ", verification.Problems)} Expected a version whose files match its registration entry.");
        }

        rule = "an earlier registered version named by the operator";
        return version;
    }

    private async Task RollBackAsync(string actor, string reason, bool automatic, JsonObject? evidence, CancellationToken ct, RolloutCommand? command = null)
    {
        var s = _state!;
        var target = IdentifyRollbackTarget(s, command?.RollbackTo, out var rule);
        Log.RollingBack(_logger, s.RolloutId, s.Candidate, target, reason);
        var next = s.Clone();
        var model = _registry.Get(s.Candidate).ModelName;
        var record = new RollbackProgress
        {
            IncidentId = IncidentIdFor(s.RolloutId),
            Model = model,
            From = s.Candidate,
            Target = target,
            Trigger = automatic ? "automatic" : "command",
            Actor = actor,
            Reason = reason,
            Evidence = (JsonObject?)evidence?.DeepClone(),
            AfterPromotion = s.Promoted,
            DetectedAt = _time.GetUtcNow(),
            Summary = command?.IncidentSummary,
            Cause = command?.IncidentCause,
            Actions = command?.IncidentActions,
        };
        next.Rollback = record;

        // 1. Detect.
        EmitStep(next, 1, "detect", "warning", actor, new JsonObject
        {
            ["trigger"] = record.Trigger,
            ["detected_by"] = automatic ? "rollout analysis" : actor,
            ["reason"] = reason,
            ["evidence"] = evidence?.DeepClone(),
        });

        // 2. Identify the target.
        var registered = _registry.Get(target);
        EmitStep(next, 2, "identify", "info", actor, new JsonObject
        {
            ["target"] = target,
            ["rule"] = rule,
            ["requested"] = command?.RollbackTo,
            ["champion"] = s.Champion,
            ["candidate"] = s.Candidate,
            ["deployment_id"] = registered.DeploymentId,
            ["registered_at"] = registered.RegisteredAt.ToString("O", CultureInfo.InvariantCulture),
        });

        // 3. Verify the target: files against the audit log's registration entry, card, warm-up.
        var (verified, details) = await VerifyRollbackTargetAsync(target, ct).ConfigureAwait(false);
        record.TargetVerified = verified;
        if (!verified)
        {
            // Only the champion gets here (a named target that does not verify is refused before any step): its
            // resident session holds the bytes verified when it was loaded, so it still serves; the finding is critical.
            details["note"] = $"{target} did not verify now; its resident session holds the bytes verified when it was loaded, so the rollback proceeds and the finding is raised";
        }

        EmitStep(next, 3, "verify", verified ? "info" : "critical", actor, details);

        // 4. Execute: one atomic swap puts every stream on the target; the registry's current follows in RollingBack.
        _serving.Publish(TrafficPlan.Single(target, next.Revision + 1));
        record.SwitchedAt = _time.GetUtcNow();
        EmitStep(next, 4, "execute", "warning", actor, new JsonObject
        {
            ["from"] = s.Candidate,
            ["to"] = target,
            ["traffic"] = $"100% of streams on {target}",
            ["switched_at"] = record.SwitchedAt.Value.ToString("O", CultureInfo.InvariantCulture),
            ["registry_current_before"] = _registry.CurrentVersion,
        });
        RolloutOutbox.Emit(next, "rollout.rollback", "critical", actor, new JsonObject
        {
            ["model"] = model,
            ["from"] = s.Candidate,
            ["to"] = target,
            ["trigger"] = automatic ? "automatic" : "manual",
            ["reason"] = reason,
            ["operator"] = actor,
            ["after_promotion"] = s.Promoted,
            ["incident_id"] = record.IncidentId,
            ["evidence"] = evidence?.DeepClone(),
        });
        _metrics.Rollback(automatic);
        await TransitionAsync(next, RolloutPhase.RollingBack, actor, reason, ct).ConfigureAwait(false);
        await CompleteRollbackAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Step 3's checks; loads (and warms) the target when it is not resident.</summary>
    private async Task<(bool Verified, JsonObject Details)> VerifyRollbackTargetAsync(string target, CancellationToken ct)
    {
        var wasLoaded = _host.IsLoaded(target);
        if (!wasLoaded)
        {
            // Reads the bytes, checks them against the audit log's anchor, loads and warms exactly those bytes.
            await LoadServableAsync(target, "roll back", ct).ConfigureAwait(false);
        }

        var verification = _registry.Verify(target);
        var card = _host.GetCard(target);
        var cardProblems = new List<string>();
        if (ModelVersionName.Normalize(card.ModelVersion) != target)
        {
            cardProblems.Add($"the resident card says version {card.ModelVersion}, expected {target}");
        }

        if (!_serving.Geometry.CanServe(card))
        {
            cardProblems.Add($"the card asks for {WindowGeometry.From(card)}, the pipeline serves {_serving.Geometry}");
        }

        var warm = SmokeSafely(target);
        var details = new JsonObject
        {
            ["target"] = target,
            ["already_loaded"] = wasLoaded,
            ["expected_sha256"] = verification.ExpectedSha256,
            ["actual_sha256"] = verification.ActualSha256,
            ["audit_registration_index"] = _registry.Anchors?.Find(target)?.Index is >= 0 and var index ? index : null,
            ["problems"] = new JsonArray([.. verification.Problems.Concat(cardProblems).Select(p => (JsonNode)p)]),
            ["card"] = new JsonObject
            {
                ["model"] = card.ModelName,
                ["version"] = card.ModelVersion,
                ["window_length"] = card.WindowLength,
                ["sample_rate_hz"] = card.SampleRateHz,
                ["classes"] = card.ClassCount,
                ["validation_accuracy"] = card.Metrics.Accuracy,
                ["validation_macro_f1"] = card.Metrics.MacroF1,
            },
            ["warm_up"] = new JsonObject { ["passed"] = warm.Passed, ["message"] = warm.Message, ["evidence"] = ToJson(warm.Evidence) },
        };
        var verified = verification.IsValid && cardProblems.Count == 0 && warm.Passed;
        details["verified"] = verified;
        return (verified, details);
    }

    private SmokeTestOutcome SmokeSafely(string version)
    {
        try
        {
            return _host.SmokeTest(version, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new SmokeTestOutcome(false, $"{version} threw on the smoke windows: {ex.GetType().Name}: {ex.Message}", new Dictionary<string, double>());
        }
    }

    private async Task CompleteRollbackAsync(CancellationToken ct)
    {
        var s = _state!;
        var target = ServedAfterEnd(s);
        if (s.Promoted || _registry.CurrentVersion != target)
        {
            _registry.SetCurrent(target, _fleet is null ? null : s.Revision);
        }

        var next = s.Clone();
        next.Promoted = false;
        next.CandidateBuckets = 0;
        next.ShadowBuckets = 0;
        next.Mirror = false;
        next.NextAnalysisAt = null;
        var now = _time.GetUtcNow();
        var message = $"{s.Candidate} rolled back; {target} serves all traffic ({s.Message})";
        if (next.Rollback is { } record)
        {
            // 5. Verify success, first part: smoke windows through the restored version, now that it serves.
            var smoke = SmokeSafely(target);
            record.SmokePassed = smoke.Passed;
            record.SmokeMessage = smoke.Message;
            record.VerifyFrom = now;
            record.VerifyDueAt = now + _options.BuiltInStrategies.AnalysisInterval;
            Observations.Reset(now);
            message += $"; verifying {target} until {record.VerifyDueAt.Value.ToString("u", CultureInfo.InvariantCulture)}";
        }

        await TransitionAsync(next, RolloutPhase.RolledBack, SystemActor, message, ct).ConfigureAwait(false);
        await _host.UnloadAsync(s.Candidate).ConfigureAwait(false);
        if (target != s.Champion)
        {
            await _host.UnloadAsync(s.Champion).ConfigureAwait(false);
        }

        await RunPostHooksAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// A rollback's verification interval is judged on the requests this process observed (in memory). A restart, or a
    /// new fleet leader, lost those seen so far, and judged the interval from what came after: when it was already due,
    /// from nothing ("unmeasurable", though the restored version served all along). The interval starts again instead,
    /// a whole analysis interval from now; the verdict counts the restarts (<c>interval_restarts</c>).
    /// </summary>
    private async Task RestartCutRollbackVerificationAsync(CancellationToken ct)
    {
        if (_state is not { Phase: RolloutPhase.RolledBack, Rollback.VerifyDueAt: not null } s)
        {
            return;
        }

        var next = s.Clone();
        var record = next.Rollback!;
        var now = _time.GetUtcNow();
        var from = record.VerifyFrom;
        record.VerifyFrom = now;
        record.VerifyDueAt = now + _options.BuiltInStrategies.AnalysisInterval;
        record.VerifyRestarts++;
        Observations.Reset(now);
        next.Message = $"{record.From} rolled back; {record.Target} serves all traffic; verifying {record.Target} again until {record.VerifyDueAt.Value.ToString("u", CultureInfo.InvariantCulture)}: the controller restarted during the verification interval, and the requests observed before were lost";
        Log.RollbackVerificationRestarted(_logger, next.RolloutId, record.Target, from, record.VerifyDueAt.Value);
        await CommitAsync(next, ct).ConfigureAwait(false);
    }

    /// <summary>5. Verify success, second part (the restored version's gates over the interval since the switch), then 6. log the incident report.</summary>
    private async Task FinishRollbackVerificationAsync(bool early, CancellationToken ct)
    {
        var next = _state!.Clone();
        var record = next.Rollback!;
        var now = _time.GetUtcNow();
        var target = record.Target;
        var labels = _host.IsLoaded(target) ? _host.GetCard(target).Labels : _labels;
        var window = Observations.TakeSnapshot(target, target, now, labels, reset: false).Stable;
        Observations.Reset(now);
        var a = _options.Analysis;
        var errorRate = window.Requests == 0 ? double.NaN : (double)window.Errors / window.Requests;
        var findings = new List<string>();
        if (record.SmokePassed != true)
        {
            findings.Add($"the smoke windows through {target} failed: {record.SmokeMessage}");
        }

        if (a.MaxErrorRate is { } maxErrors && window.Requests > 0 && errorRate > maxErrors)
        {
            findings.Add(string.Create(CultureInfo.InvariantCulture, $"error rate {errorRate:P2} over {window.Requests} requests exceeds {maxErrors:P2}"));
        }

        if (a.LatencyP95Budget is { } budget && window.LatencySamples > 0 && window.LatencyP95 > budget)
        {
            findings.Add(string.Create(CultureInfo.InvariantCulture, $"p95 latency {window.LatencyP95.TotalMilliseconds:0.#} ms exceeds the budget of {budget.TotalMilliseconds:0.#} ms"));
        }

        var result = findings.Count > 0 ? "failed" : window.Requests == 0 ? "unmeasurable" : "passed";
        record.Verification = result;
        record.VerifyDueAt = null;
        EmitStep(next, 5, "verify_success", result == "passed" ? "info" : result == "failed" ? "critical" : "warning", SystemActor, new JsonObject
        {
            ["result"] = result,
            ["smoke"] = new JsonObject { ["passed"] = record.SmokePassed, ["message"] = record.SmokeMessage },
            ["interval_start"] = record.VerifyFrom?.ToString("O", CultureInfo.InvariantCulture),
            ["interval_end"] = now.ToString("O", CultureInfo.InvariantCulture),
            ["cut_short"] = early,
            ["interval_restarts"] = record.VerifyRestarts,
            ["requests"] = window.Requests,
            ["errors"] = window.Errors,
            ["error_rate"] = double.IsFinite(errorRate) ? errorRate : null,
            ["latency_p95_ms"] = window.LatencySamples > 0 ? window.LatencyP95.TotalMilliseconds : null,
            ["max_error_rate"] = a.MaxErrorRate,
            ["latency_p95_budget_ms"] = a.LatencyP95Budget?.TotalMilliseconds,
            ["findings"] = new JsonArray([.. findings.Select(f => (JsonNode)f)]),
        });
        _metrics.RollbackVerification(result);

        // 6. Log: the incident report (the operator completes summary, cause and actions, now or later).
        record.ReportRevision++;
        EmitStep(next, 6, "log", "info", SystemActor, new JsonObject { ["incident_id"] = record.IncidentId });
        RolloutOutbox.Emit(next, IncidentEvent, result == "failed" ? "critical" : "warning", SystemActor, IncidentReport(next, record, SystemActor));
        next.Message = result switch
        {
            "passed" => $"{record.From} rolled back; {target} verified over the interval and serves all traffic; incident {record.IncidentId} recorded",
            "failed" => $"{record.From} rolled back to {target}, but the rollback verification failed ({string.Join("; ", findings)}); incident {record.IncidentId} recorded",
            _ => $"{record.From} rolled back to {target}; no request reached it in the verification interval (smoke windows passed); incident {record.IncidentId} recorded",
        };
        await CommitAsync(next, ct).ConfigureAwait(false);
    }

    /// <summary>Adds (or updates) the operator's part of an incident report: a new <c>rollout.incident</c> record each time.</summary>
    private async Task RecordIncidentAsync(RolloutCommand command, CancellationToken ct)
    {
        if (command.IncidentSummary is null && command.IncidentCause is null && command.IncidentActions is null)
        {
            await _outbox.RejectAsync(command, _state, "rejected", ct, "no summary, cause or actions").ConfigureAwait(false);
            throw new RolloutCommandRejectedException("The incident command carries no summary, cause or actions; expected at least one of them.");
        }

        var archived = command.RolloutId is { } id && id != _state?.RolloutId;
        var next = archived ? LoadArchived(command.RolloutId!) : _state?.Clone();
        if (next?.Rollback is not { } record)
        {
            await _outbox.RejectAsync(command, _state, "rejected", ct, "no rollback to report on").ConfigureAwait(false);
            throw new RolloutCommandRejectedException(command.RolloutId is null
                ? $"The current rollout {(_state is null ? "does not exist" : $"{_state.RolloutId} ({_state.Phase})")} has no rollback; an incident report belongs to a rolled-back rollout (pass its rollout id)."
                : $"Rollout '{command.RolloutId}' is not a rolled-back rollout of this registry; expected the id of a rollout that was rolled back.");
        }

        RolloutOutbox.EmitCommand(next, command, _time.GetUtcNow());
        record.Summary = command.IncidentSummary ?? record.Summary;
        record.Cause = command.IncidentCause ?? record.Cause;
        record.Actions = command.IncidentActions ?? record.Actions;
        record.ReportRevision++;
        RolloutOutbox.Emit(next, IncidentEvent, "info", command.Actor, IncidentReport(next, record, command.Actor));
        if (!archived)
        {
            await CommitAsync(next, ct).ConfigureAwait(false);
            return;
        }

        await _outbox.FlushAsync(next, ct).ConfigureAwait(false);
        _store.Archive(next);
    }

    /// <summary>A finished rollout's archived state (<c>history/</c>), or <see langword="null"/>.</summary>
    private RolloutState? LoadArchived(string rolloutId)
    {
        foreach (var c in rolloutId)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            {
                return null;
            }
        }

        return _store.LoadArchived(rolloutId);
    }

    private void EmitStep(RolloutState next, int step, string name, string severity, string actor, JsonObject details)
    {
        var record = next.Rollback!;
        var at = _time.GetUtcNow();
        record.Timeline.Add(new RollbackProgress.TimelineEntry(step, name, at));
        details["incident_id"] = record.IncidentId;
        details["step"] = step;
        details["name"] = name;
        details["of"] = 6;
        next.UpdatedAt = at;
        RolloutOutbox.Emit(next, RollbackStepEvent, severity, actor, details);
    }

    private static JsonObject IncidentReport(RolloutState s, RollbackProgress r, string reportedBy) => new()
    {
        ["incident_id"] = r.IncidentId,
        ["rollout_id"] = s.RolloutId,
        ["report_revision"] = r.ReportRevision,
        ["reported_by"] = reportedBy,
        ["model"] = r.Model,
        ["from"] = r.From,
        ["to"] = r.Target,
        ["trigger"] = r.Trigger,
        ["operator"] = r.Actor,
        ["after_promotion"] = r.AfterPromotion,
        ["detected_cause"] = r.Reason,
        ["summary"] = r.Summary,
        ["cause"] = r.Cause,
        ["actions"] = r.Actions,
        ["evidence"] = r.Evidence?.DeepClone(),
        ["target_verified"] = r.TargetVerified,
        ["verification"] = r.Verification,
        ["detected_at"] = r.DetectedAt.ToString("O", CultureInfo.InvariantCulture),
        ["restored_at"] = r.SwitchedAt?.ToString("O", CultureInfo.InvariantCulture),
        ["time_to_restore_seconds"] = r.SwitchedAt is { } at ? (at - r.DetectedAt).TotalSeconds : null,
        ["timeline"] = new JsonArray([.. r.Timeline.Select(t => (JsonNode)new JsonObject
        {
            ["step"] = t.Step,
            ["name"] = t.Name,
            ["at"] = t.At.ToString("O", CultureInfo.InvariantCulture),
        })]),
    };
}

/// <summary>A rollback's persisted record: what was detected, the target, the six steps' timeline and the incident report.</summary>
internal sealed class RollbackProgress
{
    public string IncidentId { get; set; } = string.Empty;

    public string Model { get; set; } = string.Empty;

    public string From { get; set; } = string.Empty;

    public string Target { get; set; } = string.Empty;

    public string Trigger { get; set; } = string.Empty;

    public string Actor { get; set; } = string.Empty;

    public string Reason { get; set; } = string.Empty;

    public JsonObject? Evidence { get; set; }

    public bool AfterPromotion { get; set; }

    public DateTimeOffset DetectedAt { get; set; }

    public DateTimeOffset? SwitchedAt { get; set; }

    public bool TargetVerified { get; set; }

    public bool? SmokePassed { get; set; }

    public string? SmokeMessage { get; set; }

    public DateTimeOffset? VerifyFrom { get; set; }

    /// <summary>When the restored version's gates are judged (step 5); <see langword="null"/> once judged.</summary>
    public DateTimeOffset? VerifyDueAt { get; set; }

    /// <summary>How often a restart (or a new fleet leader) started the verification interval again (<see cref="VerifyFrom"/>).</summary>
    public int VerifyRestarts { get; set; }

    /// <summary>passed, failed or unmeasurable, once judged.</summary>
    public string? Verification { get; set; }

    public string? Summary { get; set; }

    public string? Cause { get; set; }

    public string? Actions { get; set; }

    public int ReportRevision { get; set; }

    public List<TimelineEntry> Timeline { get; set; } = [];

    internal sealed record TimelineEntry(int Step, string Name, DateTimeOffset At);
}
