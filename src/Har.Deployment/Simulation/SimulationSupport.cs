using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Har.Audit;

namespace Har.Deployment;

/// <summary>
/// Collects the rollout's audit events as readable decisions and, when the caller's registry has an
/// audit log, writes each one to it (marked simulated, with its virtual time).
/// </summary>
internal sealed class DecisionSink(IDeploymentAuditSink? log) : IDeploymentAuditSink
{
    private readonly List<SimulationDecision> _decisions = [];
    private readonly StringBuilder _course = new();

    /// <summary>Every analysis so far, one token each: weight, verdict initial and the counted gates that did not pass.</summary>
    public string Course => _course.ToString();

    public IReadOnlyList<SimulationDecision> Decisions => _decisions;

    public async ValueTask AppendAsync(DeploymentAuditEvent auditEvent, CancellationToken cancellationToken)
    {
        var d = auditEvent.Details;
        var summary = auditEvent.EventType switch
        {
            "rollout.verdict" => $"analysis {(string?)d["verdict"]} at {(double?)d["candidate_percent"]}%: " + string.Join("; ", (d["gates"] as JsonArray ?? []).Where(g => (string?)g!["verdict"] != "Pass").Select(g => $"{(string?)g!["gate"]} {(string?)g["verdict"]}: {(string?)g["message"]}")),
            "rollout.step" => $"step {(int?)d["step"]}: {(string?)d["description"]}",
            "rollout.transition" => $"{(string?)d["from"] ?? "-"} -> {(string?)d["to"]}: {(string?)d["message"]}",
            "rollout.hold" => $"hold at {(double?)d["candidate_percent"]}% ({(int?)d["extra_interval"]} of at most {(int?)d["limit"]}): {(string?)d["reason"]}: {(string?)d["missing"]}",
            "rollout.rollback" => $"ROLLBACK {(string?)d["from"]} -> {(string?)d["to"]} ({(string?)d["trigger"]}): {(string?)d["reason"]}",
            _ => $"{auditEvent.Actor}: {d.ToJsonString()}",
        };
        _decisions.Add(new SimulationDecision(auditEvent.Timestamp, auditEvent.EventType, summary));
        if (auditEvent.EventType == "rollout.verdict")
        {
            // The run's course in one line: each analysis as its weight, verdict and the gates that did not pass
            // (counted ones only: an uncounted calibration gate decides nothing).
            var gates = (d["gates"] as JsonArray ?? []).Where(g => (string?)g!["verdict"] is not ("Pass" or "Unmeasurable") && !((string?)g!["message"] ?? string.Empty).StartsWith("not counted", StringComparison.Ordinal)).Select(g => (string?)g!["gate"]);
            var verdict = (string?)d["verdict"] ?? "?";
            _course.Append(_course.Length == 0 ? string.Empty : " ").Append(CultureInfo.InvariantCulture, $"{(double?)d["candidate_percent"]}%:{verdict[0]}");
            if (gates.Any())
            {
                _course.Append('[').AppendJoin(',', gates).Append(']');
            }
        }
        if (log is null)
        {
            return;
        }

        var details = (JsonObject)d.DeepClone();
        details["simulated"] = true;
        details["virtual_time"] = auditEvent.Timestamp;
        if (details["evidence"] is JsonObject evidence)
        {
            // The rollback record carries only the evidence: mark it there too.
            evidence["simulated"] = true;
        }

        await log.AppendAsync(auditEvent with { Details = details, Timestamp = TimeProvider.System.GetUtcNow() }, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask AppendRecordAsync(AuditRecord record, CancellationToken cancellationToken) =>
        log?.AppendRecordAsync(record, cancellationToken) ?? ValueTask.CompletedTask;

    // A run never resumes after a crash (its state folder is new), so no outbox entry is ever already in
    // the log; asking the log would also match an earlier run with the same rollout id and drop events.
    public ValueTask<long> GetLastSequenceAsync(string rolloutId, CancellationToken cancellationToken) => ValueTask.FromResult(-1L);
}

/// <summary>
/// The simulation's stand-in for the <see cref="ServingPipeline"/>: the controller publishes plans to it
/// and reads its observations exactly as it does with the real pipeline, while the runs feed the
/// observations with the models' precomputed predictions on a virtual clock.
/// </summary>
internal sealed class SimulatedServing(IModelVersionHost models, WindowGeometry geometry, DateTimeOffset start, string version) : IServingControl
{
    private TrafficPlan _plan = TrafficPlan.Single(version);

    public IModelVersionHost Models => models;

    public RolloutObservations Observations { get; } = new(start);

    /// <summary>Gets the run's own feedback store (the simulation records predictions and reports labels with explicit virtual times).</summary>
    public FeedbackStore Feedback { get; } = new(models.GetCard(version).Labels, geometry.WindowLength, geometry.SampleRateHz, v => models.IsLoaded(v) ? models.GetCard(v).Labels : null, TimeProvider.System);

    public WindowGeometry Geometry => geometry;

    public TrafficPlan Plan => Volatile.Read(ref _plan);

    public void Publish(TrafficPlan plan) => Volatile.Write(ref _plan, plan);
}

/// <summary>A clock that moves only when told to (the simulation's virtual time).</summary>
internal sealed class VirtualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
