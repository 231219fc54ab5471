using System.Text.Json.Serialization;

namespace Har.Cli.Demo;

/// <summary>What <c>har demo --json</c> prints: every step's outcome, machine-readable.</summary>
internal sealed class DemoSummary
{
    [JsonPropertyName("data")]
    public DemoData Data { get; set; } = new();

    [JsonPropertyName("models")]
    public List<DemoModel> Models { get; } = [];

    [JsonPropertyName("predictions")]
    public DemoPredictions Predictions { get; set; } = new();

    [JsonPropertyName("drift")]
    public DemoDrift Drift { get; set; } = new();

    [JsonPropertyName("canary")]
    public DemoRollout Canary { get; set; } = new();

    [JsonPropertyName("faulty_canary")]
    public DemoRollout FaultyCanary { get; set; } = new();

    [JsonPropertyName("audit")]
    public DemoAudit Audit { get; set; } = new();

    [JsonPropertyName("output_directory")]
    public string OutputDirectory { get; set; } = string.Empty;

    [JsonPropertyName("elapsed_seconds")]
    public double ElapsedSeconds { get; set; }

    [JsonPropertyName("step_seconds")]
    public Dictionary<string, double> StepSeconds { get; } = [];

    /// <summary>
    /// True when every step ended as the demo intends: predictions made, the healthy canary promoted, the faulty one
    /// rolled back, the audit log verified. The two real models genuinely differ (1.1.0 is less confident and agrees
    /// with 1.0.0 on about 87 % of HAPT test windows; on synthetic streams, outside both models' training data, they
    /// disagree more), so on the demo's few minutes of data the analysis may also roll the healthy canary back — by the
    /// model-comparison gates (class mix, agreement, confidence, uncertainty) only, never by errors or latency; that
    /// outcome is shown with its evidence and still counts as the pipeline working.
    /// </summary>
    [JsonPropertyName("ok")]
    public bool Ok => Predictions.Windows > 0 && FaultyCanary.RolledBack && Audit.Verified
        && (Canary.Promoted || (Canary.RolledBack && Canary.RolledBackOnlyForDisagreement));
}

internal sealed class DemoData
{
    [JsonPropertyName("source")]
    public string Source { get; set; } = "synthetic";

    [JsonPropertyName("synthetic")]
    public bool Synthetic => Source == "synthetic";

    [JsonPropertyName("folder")]
    public string? Folder { get; set; }

    [JsonPropertyName("seed")]
    public int Seed { get; set; }

    [JsonPropertyName("sessions")]
    public List<string> Sessions { get; } = [];

    [JsonPropertyName("frames")]
    public long Frames { get; set; }

    [JsonPropertyName("reference_sessions")]
    public int ReferenceSessions { get; set; }
}

internal sealed class DemoModel
{
    [JsonPropertyName("version")]
    public string Version { get; set; } = string.Empty;

    [JsonPropertyName("name")]
    public string Name { get; set; } = string.Empty;

    [JsonPropertyName("role")]
    public string Role { get; set; } = string.Empty;

    [JsonPropertyName("parameters")]
    public long Parameters { get; set; }

    [JsonPropertyName("sha256")]
    public string Sha256 { get; set; } = string.Empty;

    [JsonPropertyName("deployment_id")]
    public string DeploymentId { get; set; } = string.Empty;

    [JsonPropertyName("card_accuracy")]
    public double CardAccuracy { get; set; }
}

internal sealed class DemoPredictions
{
    [JsonPropertyName("model")]
    public string Model { get; set; } = string.Empty;

    [JsonPropertyName("windows")]
    public int Windows { get; set; }

    [JsonPropertyName("segments")]
    public int Segments { get; set; }

    [JsonPropertyName("batches")]
    public int Batches { get; set; }

    [JsonPropertyName("windows_per_second")]
    public double WindowsPerSecond { get; set; }

    [JsonPropertyName("uncertain")]
    public int Uncertain { get; set; }

    [JsonPropertyName("accuracy")]
    public double? Accuracy { get; set; }

    [JsonPropertyName("macro_f1")]
    public double? MacroF1 { get; set; }

    [JsonPropertyName("scored_windows")]
    public int ScoredWindows { get; set; }

    [JsonPropertyName("class_counts")]
    public SortedDictionary<string, int> ClassCounts { get; } = new(StringComparer.Ordinal);
}

internal sealed class DemoDrift
{
    [JsonPropertyName("reference_hash")]
    public string ReferenceHash { get; set; } = string.Empty;

    [JsonPropertyName("reference_windows")]
    public int ReferenceWindows { get; set; }

    [JsonPropertyName("windows_scored")]
    public int WindowsScored { get; set; }

    [JsonPropertyName("drifted_windows")]
    public int DriftedWindows { get; set; }

    [JsonPropertyName("channels")]
    public List<DemoDriftChannel> Channels { get; } = [];

    [JsonPropertyName("fault")]
    public string Fault { get; set; } = string.Empty;

    [JsonPropertyName("fault_drifted")]
    public bool FaultDrifted { get; set; }

    [JsonPropertyName("fault_drifted_channels")]
    public List<string> FaultDriftedChannels { get; } = [];

    [JsonPropertyName("fault_findings")]
    public List<string> FaultFindings { get; } = [];
}

internal sealed class DemoDriftChannel
{
    [JsonPropertyName("channel")]
    public string Channel { get; set; } = string.Empty;

    [JsonPropertyName("stable")]
    public int Stable { get; set; }

    [JsonPropertyName("drifted")]
    public int Drifted { get; set; }

    [JsonPropertyName("insufficient")]
    public int Insufficient { get; set; }

    [JsonPropertyName("median_ks_d")]
    public double MedianKsD { get; set; }

    [JsonPropertyName("ks_floor")]
    public double KsFloor { get; set; }
}

internal sealed class DemoRollout
{
    [JsonPropertyName("champion")]
    public string Champion { get; set; } = string.Empty;

    [JsonPropertyName("candidate")]
    public string Candidate { get; set; } = string.Empty;

    [JsonPropertyName("fault")]
    public string Fault { get; set; } = "none";

    [JsonPropertyName("phase")]
    public string Phase { get; set; } = string.Empty;

    [JsonPropertyName("promoted")]
    public bool Promoted { get; set; }

    [JsonPropertyName("rolled_back")]
    public bool RolledBack { get; set; }

    [JsonPropertyName("analysis_intervals")]
    public int AnalysisIntervals { get; set; }

    [JsonPropertyName("virtual_minutes")]
    public double VirtualMinutes { get; set; }

    [JsonPropertyName("decisions")]
    public int Decisions { get; set; }

    [JsonPropertyName("rollback_reason")]
    public string? RollbackReason { get; set; }

    [JsonPropertyName("failed_gates")]
    public List<DemoGate> FailedGates { get; } = [];

    /// <summary>Rolled back by the gates that compare the two models' answers only (no error-rate or latency failure).</summary>
    [JsonIgnore]
    public bool RolledBackOnlyForDisagreement =>
        FailedGates.Count > 0 && FailedGates.All(g => g.Gate is "class-mix" or "agreement" or "confidence" or "uncertain-rate" or "shadow-agreement");
}

internal sealed class DemoGate
{
    [JsonPropertyName("gate")]
    public string Gate { get; set; } = string.Empty;

    [JsonPropertyName("message")]
    public string Message { get; set; } = string.Empty;

    [JsonPropertyName("evidence")]
    public SortedDictionary<string, double> Evidence { get; } = new(StringComparer.Ordinal);
}

internal sealed class DemoAudit
{
    [JsonPropertyName("directory")]
    public string Directory { get; set; } = string.Empty;

    [JsonPropertyName("verified")]
    public bool Verified { get; set; }

    [JsonPropertyName("entries")]
    public long Entries { get; set; }

    [JsonPropertyName("checkpoint_size")]
    public long CheckpointSize { get; set; }

    [JsonPropertyName("root_hash")]
    public string RootHash { get; set; } = string.Empty;

    [JsonPropertyName("verifier_key")]
    public string VerifierKey { get; set; } = string.Empty;

    [JsonPropertyName("message")]
    public string Message { get; set; } = string.Empty;
}
