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
    /// The outcomes the demo checks, each with what was expected and what happened: predictions made, no drift alarm on
    /// the healthy devices, the injected gain error alarmed with its cause, the healthy canary promoted, the faulty one
    /// rolled back, the audit log verified.
    /// </summary>
    [JsonPropertyName("checks")]
    public IReadOnlyList<DemoCheck> Checks =>
    [
        new("predictions", "windows predicted", Predictions.Windows > 0 ? $"{Predictions.Windows} windows" : "none", Predictions.Windows > 0),
        new("drift", "healthy devices quiet", Drift.HealthyAlarmEpisodes == 0 ? $"no alarm on {Drift.Devices.Count} devices" : $"{Drift.HealthyAlarmEpisodes} false alarm(s)", Drift.HealthyAlarmEpisodes == 0 && Drift.Devices.Count > 0),
        new("drift fault", $"gain error alarmed as {Drift.FaultExpectedCause}", Drift.FaultDetectedAfterSeconds is { } s ? $"alarm after {s:0} s naming {Drift.FaultNamedCause}" : "no alarm", Drift.FaultCaught && Drift.FaultEpisodesBeforeOnset == 0),
        new("canary", $"healthy {Canary.Candidate} promoted", Canary.Promoted ? "promoted" : Canary.Phase + (Canary.RollbackReason is { } r ? ": " + r : string.Empty), Canary.Promoted),
        new("faulty canary", $"{FaultyCanary.Candidate} with fault '{FaultyCanary.Fault}' rolled back", FaultyCanary.RolledBack ? "rolled back" : FaultyCanary.Phase, FaultyCanary.RolledBack),
        new("audit", "log verified", Audit.Verified ? "verified" : "NOT verified: " + Audit.Message, Audit.Verified),
    ];

    /// <summary>Gets whether every checked outcome is the expected one (derived from <see cref="Checks"/>, never assumed).</summary>
    [JsonPropertyName("ok")]
    public bool Ok => Checks.All(c => c.Ok);
}

/// <summary>One outcome the demo checked.</summary>
/// <param name="Step">The step.</param>
/// <param name="Expected">What should have happened.</param>
/// <param name="Actual">What happened.</param>
/// <param name="Ok">Whether it is what should have happened.</param>
internal sealed record DemoCheck(
    [property: JsonPropertyName("step")] string Step,
    [property: JsonPropertyName("expected")] string Expected,
    [property: JsonPropertyName("actual")] string Actual,
    [property: JsonPropertyName("ok")] bool Ok);

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

    /// <summary>Gets or sets whether the profile has a calibrated sequential alarm (a 6-axis IMU profile of several people).</summary>
    [JsonPropertyName("alarm_calibrated")]
    public bool AlarmCalibrated { get; set; }

    /// <summary>Gets the healthy streams, each streamed as a device.</summary>
    [JsonPropertyName("devices")]
    public List<DemoDriftDevice> Devices { get; } = [];

    /// <summary>Gets the alarm episodes over the healthy devices (false alarms).</summary>
    [JsonPropertyName("healthy_alarm_episodes")]
    public int HealthyAlarmEpisodes => Devices.Sum(x => x.AlarmEpisodes);

    [JsonPropertyName("fault")]
    public string Fault { get; set; } = string.Empty;

    [JsonPropertyName("fault_expected_cause")]
    public string FaultExpectedCause { get; set; } = string.Empty;

    [JsonPropertyName("fault_alarms_before_onset")]
    public int FaultEpisodesBeforeOnset { get; set; }

    [JsonPropertyName("fault_detected_after_seconds")]
    public double? FaultDetectedAfterSeconds { get; set; }

    [JsonPropertyName("fault_named_cause")]
    public string? FaultNamedCause { get; set; }

    [JsonPropertyName("fault_diagnosis")]
    public string? FaultDiagnosis { get; set; }

    /// <summary>Gets whether the injected fault raised the alarm after its onset, naming the expected cause.</summary>
    [JsonPropertyName("fault_caught")]
    public bool FaultCaught => FaultDetectedAfterSeconds is not null && FaultNamedCause == FaultExpectedCause;
}

internal sealed class DemoDriftDevice
{
    [JsonPropertyName("device")]
    public string Device { get; set; } = string.Empty;

    [JsonPropertyName("minutes")]
    public double Minutes { get; set; }

    [JsonPropertyName("scorings")]
    public int Scorings { get; set; }

    [JsonPropertyName("alarm_episodes")]
    public int AlarmEpisodes { get; set; }

    [JsonPropertyName("causes")]
    public List<string> Causes { get; set; } = [];
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
