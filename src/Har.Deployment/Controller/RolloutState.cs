using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Har.Deployment;

/// <summary>The persisted state of a rollout (one JSON file, replaced atomically).</summary>
internal sealed class RolloutState
{
    public int Schema { get; set; } = 1;

    public required string RolloutId { get; set; }

    public required string Strategy { get; set; }

    public required string Champion { get; set; }

    public required string Candidate { get; set; }

    public RolloutPhase Phase { get; set; }

    public RolloutPhase? PausedFrom { get; set; }

    public List<StepRecord> Steps { get; set; } = [];

    public int StepIndex { get; set; }

    public int CandidateBuckets { get; set; }

    public int ShadowBuckets { get; set; }

    public bool Mirror { get; set; }

    public ulong Salt { get; set; }

    public long Revision { get; set; }

    public int ConsecutivePasses { get; set; }

    public int Failures { get; set; }

    public int ConsecutiveUnmeasurable { get; set; }

    public int InconclusiveInStep { get; set; }

    /// <summary>Extra intervals the current step has been held, all else passing, waiting for the accuracy gate to decide on arriving ground truth.</summary>
    public int AccuracyWaitInStep { get; set; }

    /// <summary>Whether the rollout is paused because its analysis could not decide (too few samples); it keeps analysing and resumes on the next conclusive interval.</summary>
    public bool WaitingForData { get; set; }

    public int AnalysesRun { get; set; }

    public bool Promoted { get; set; }

    public required string StartedBy { get; set; }

    public DateTimeOffset StartedAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    public DateTimeOffset StepStartedAt { get; set; }

    public DateTimeOffset? NextAnalysisAt { get; set; }

    public string Message { get; set; } = string.Empty;

    /// <summary>The most recent analysis (verdict, gates with evidence, sample counts), persisted so the status says why after a restart too.</summary>
    public AnalysisResult? LastAnalysis { get; set; }

    /// <summary>The rollback of this rollout (six recorded steps and the incident report), once one started.</summary>
    public RollbackProgress? Rollback { get; set; }

    /// <summary>The distinct people who approved the current approval step.</summary>
    public List<string> Approvals { get; set; } = [];

    /// <summary>Everyone who approved this rollout's completed approval steps (for the deployment record).</summary>
    public List<string> ApprovedBy { get; set; } = [];

    /// <summary>Who promoted the candidate (an operator, or the controller when every step passed).</summary>
    public string? PromotedBy { get; set; }

    /// <summary>Whether the starter may be one of the approvers (fixed at start).</summary>
    public bool StarterMayApprove { get; set; }

    /// <summary>How many distinct approvals an approval step needs (fixed at start).</summary>
    public int RequiredApprovals { get; set; } = 1;

    /// <summary>Whether a smoke-test step of this rollout passed (recorded in the deployment record at promotion).</summary>
    public bool PassedSmokeTest { get; set; }

    /// <summary>Consecutive refusals of pre-rollout hooks (the rollout is held; it fails at the failure threshold).</summary>
    public int HookRefusals { get; set; }

    /// <summary>The last audit sequence number assigned.</summary>
    public long Sequence { get; set; } = -1;

    /// <summary>Audit events persisted with the state and not yet known to be in the audit log (transactional outbox).</summary>
    public List<OutboxEntry> Outbox { get; set; } = [];

    [JsonIgnore]
    public IReadOnlyList<RolloutStep> StepList => Steps.ConvertAll(s => s.ToStep());

    [JsonIgnore]
    public RolloutStep? CurrentStep => StepIndex < Steps.Count ? Steps[StepIndex].ToStep() : null;

    public RolloutState Clone() => JsonSerializer.Deserialize<RolloutState>(JsonSerializer.SerializeToUtf8Bytes(this, RolloutStateStore.Json), RolloutStateStore.Json)!;

    internal sealed record StepRecord(RolloutStepKind Kind, double Percent, long IntervalTicks, int RequiredPasses, bool MirrorToStable)
    {
        public static StepRecord From(RolloutStep step) => new(step.Kind, step.Percent, step.Interval.Ticks, step.RequiredPasses, step.MirrorToStable);

        public RolloutStep ToStep() => Kind switch
        {
            RolloutStepKind.SetWeight => RolloutStep.SetWeight(Percent, MirrorToStable),
            RolloutStepKind.Shadow => RolloutStep.Shadow(Percent),
            RolloutStepKind.SmokeTest => RolloutStep.SmokeTest(),
            RolloutStepKind.Analyze => RolloutStep.Analyze(TimeSpan.FromTicks(IntervalTicks), RequiredPasses),
            RolloutStepKind.Approval => RolloutStep.Approval(),
            RolloutStepKind.Pause => RolloutStep.Pause(TimeSpan.FromTicks(IntervalTicks)),
            RolloutStepKind.Finish => RolloutStep.Finish(),
            _ => throw new InvalidDataException($"Unknown rollout step kind {Kind} in the persisted state."),
        };
    }

    internal sealed record OutboxEntry(long Sequence, string EventType, string Severity, string Actor, DateTimeOffset Timestamp, JsonObject Details)
    {
        public DeploymentAuditEvent ToEvent(string rolloutId)
        {
            var details = (JsonObject)Details.DeepClone();
            details["sequence"] = Sequence;
            details["rollout_id"] = rolloutId;
            return new DeploymentAuditEvent(EventType, "rollout", rolloutId, Severity, Actor, Timestamp, details);
        }
    }
}

/// <summary>Reads and writes <c>rollout.json</c> with temp file + fsync + rename + directory fsync.</summary>
internal sealed class RolloutStateStore : IRolloutStateStore
{
    /// <summary>The schema this release writes and reads; a state of a higher schema (a newer release's) is refused.</summary>
    internal const int CurrentSchema = 1;

    public const string FileName = "rollout.json";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    public RolloutStateStore(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public string StatePath => Path.Combine(Directory, FileName);

    public RolloutState? Load()
    {
        if (!File.Exists(StatePath))
        {
            return null;
        }

        try
        {
            var state = JsonSerializer.Deserialize<RolloutState>(File.ReadAllBytes(StatePath), Json)
                ?? throw new InvalidDataException($"'{StatePath}' holds null; expected a rollout state object.");

            // A newer release's state may mean more than this one reads (its members are ignored here): refused, not
            // half-read. Found from outside (a downgrade): older releases read what they knew of newer state and said nothing.
            return state.Schema > CurrentSchema
                ? throw new InvalidDataException($"'{StatePath}' has schema {state.Schema}, written by a newer release; this release reads schema {CurrentSchema}. Run the release that wrote it, or restore a backup taken before the upgrade.")
                : state;
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{StatePath}' is not a valid rollout state ({ex.Message}); it is only ever replaced atomically, so this means it was edited by hand.", ex);
        }
    }

    public void Save(RolloutState state) => DurableFile.WriteAtomic(StatePath, JsonSerializer.SerializeToUtf8Bytes(state, Json));

    /// <inheritdoc />
    public RolloutState? LoadArchived(string rolloutId)
    {
        var path = Path.Combine(Directory, "history", rolloutId + ".json");
        return File.Exists(path) ? JsonSerializer.Deserialize<RolloutState>(File.ReadAllBytes(path), Json) : null;
    }

    /// <summary>Keeps a finished rollout's final state under <c>history/</c> before a new rollout replaces it.</summary>
    public void Archive(RolloutState state)
    {
        var path = Path.Combine(Directory, "history", $"{state.RolloutId}.json");
        DurableFile.WriteAtomic(path, JsonSerializer.SerializeToUtf8Bytes(state, Json));
    }
}
