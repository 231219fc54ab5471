using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Har.Drift;

/// <summary>
/// The <see cref="Meter"/> <c>Har.Drift</c>: the drift monitors' metrics for OpenTelemetry and other
/// <c>System.Diagnostics.Metrics</c> listeners, with the names and labels (as tags) of the Prometheus metrics.
/// Gauges are observable: each collection reads the last value every live monitor set.
/// </summary>
internal static class DriftMeter
{
    public const string Name = "Har.Drift";
    public const string FindingsTotal = "har_drift_sensor_findings_total";
    public const string ScoringsTotal = "har_drift_scorings_total";
    public const string DevicesEvictedTotal = "har_drift_devices_evicted_total";
    public const string UncheckedTotal = "har_drift_checks_without_evidence_total";
    public const string UnmonitoredTotal = "har_drift_unmonitored_observations_total";
    public const string TicksSkippedTotal = "har_drift_scoring_ticks_skipped_total";
    public const string TicksSkippedHelp = "Scoring ticks left to the previous one, which was still scoring when they came: the due windows take longer to score than the scoring interval, so they are scored less often than every half window (the step the alarm thresholds were calibrated for).";
    public const string UnmonitoredHelp = "Predictions of devices a per-device monitor could not take: every one of its MaxDevices monitors was held by a device seen within MinimumIdleForEviction or with a raised alarm (the predictions still count for output drift).";
    public const string StateSavesTotal = "har_drift_state_saves_total";
    public const string StateSavesHelp = "Saves of the per-device drift state (DriftMonitorOptions.StatePath: the whole file; StateStore: a batch of changed devices), by result (saved, failed: logged and retried at the next scoring tick).";
    public const string StateRestoresTotal = "har_drift_state_restores_total";
    public const string StateRestoresHelp = "Devices seen for the first time in the process whose drift state was looked up in DriftMonitorOptions.StateStore, by result (restored; absent: none stored; other_profile: stored against another reference profile, ignored; failed: the store failed or the record was unreadable, retried at the next tick, and the device scored fresh after three failures).";
    public const string StateSaveSeconds = "har_drift_state_save_seconds";
    public const string StateSaveHelp = "Time of one save of the per-device drift state (the whole file rewritten, fsynced and renamed; or one batch of devices written to the StateStore), from a monotonic clock.";
    public const string ScoringSeconds = "har_drift_scoring_seconds";
    public const string ScoringHelp = "Time of one scoring of a window (every check, the device's history and alarm; a DriftMonitor's also its output drift), from a monotonic clock: single-threaded work, so its rate times its mean is how much of a core drift monitoring takes (on a saturated host it includes waiting for a core).";

    public static readonly GaugeSpec Score = new("har_drift_score", "Drift score per input channel: the Kolmogorov–Smirnov effect size D against the matched reference (device monitors: the largest over live devices).", ["channel"]);
    public static readonly GaugeSpec Statistic = new("har_drift_statistic", "Test statistic per channel and test (ks: D, psi: PSI).", ["channel", "test"]);
    public static readonly GaugeSpec PValue = new("har_drift_pvalue", "Multiple-testing-adjusted p-value per channel and test.", ["channel", "test"]);
    public static readonly GaugeSpec Verdict = new("har_drift_verdict", "Verdict per channel: 0 insufficient, 1 stable, 2 drifted.", ["channel"]);
    public static readonly GaugeSpec Samples = new("har_drift_samples", "Finite samples in the current window per channel.", ["channel"]);
    public static readonly GaugeSpec EffectiveSamples = new("har_drift_effective_samples", "Effective sample size (autocorrelation-aware) of the current window per channel.", ["channel"]);
    public static readonly GaugeSpec OutputStatistic = new("har_drift_output_statistic", "Output drift statistic per test (class_mix: Jensen–Shannon distance of the predicted-class mix; confidence, entropy: KS D).", ["test"]);
    public static readonly GaugeSpec OutputPValue = new("har_drift_output_pvalue", "Multiple-testing-adjusted p-value of each output drift test.", ["test"]);
    public static readonly GaugeSpec OutputVerdict = new("har_drift_output_verdict", "Output drift verdict per test: 1 stable, 2 drifted (significant and above its floor).", ["test"]);
    public static readonly GaugeSpec OutputPredictions = new("har_drift_output_predictions", "Predictions in the current output window.", []);

    public static readonly GaugeSpec OutputOtherActivity = new("har_drift_output_other_activity_predictions", "Predictions in the current output window of activities the profile's labels lack (a model version with a class the profile's model did not have).", []);
    public static readonly GaugeSpec Devices = new("har_drift_devices", "Devices with a live per-device monitor.", []);
    public static readonly GaugeSpec DeviceCapacity = new("har_drift_device_capacity", "Most devices a per-device monitor keeps (DriftMonitorOptions.MaxDevices).", []);
    public static readonly GaugeSpec DevicesFlagged = new("har_drift_devices_flagged", "Live devices whose latest report is flagged (drift or a sensor finding).", []);

    public static readonly GaugeSpec DevicesDrifted = new("har_drift_devices_drifted", "Live devices whose latest report has the channel Drifted (every channel exported, 0 when none; divide by har_drift_devices for the fleet's share).", ["channel"]);
    public static readonly GaugeSpec DevicesAlarmed = new("har_drift_devices_alarmed", "Live devices whose sequential drift alarm is raised (the false-alarm budget sets its threshold).", []);
    public static readonly GaugeSpec DevicesAlarmedByCause = new("har_drift_devices_alarmed_by_cause", "Live devices whose sequential drift alarm is raised, by the cause it names (every cause is exported, 0 when none).", ["cause"]);
    public static readonly GaugeSpec EstimatedAccuracy = new("har_drift_estimated_accuracy", "The model's accuracy on the current predictions estimated from its confidence (CBPE against the reference's reliability).", []);
    public static readonly GaugeSpec ReferenceAccuracy = new("har_drift_reference_accuracy", "The model's measured accuracy on the labelled reference windows.", []);

    public static readonly GaugeSpec EstimateNamedFaultShare = new("har_drift_estimate_named_fault_share", "Share of the current predictions whose accuracy was estimated under an input fault their device's alarm named (the reference's accuracy under that fault).", []);
    public static readonly GaugeSpec EstimateReliable = new("har_drift_estimate_reliable", "1 while the estimated accuracy can be trusted, 0 when some predictions were made under a named input fault the reference holds no accuracy for.", []);

    public static readonly GaugeSpec[] Gauges = [Score, Statistic, PValue, Verdict, Samples, EffectiveSamples, OutputStatistic, OutputPValue, OutputVerdict, OutputPredictions, OutputOtherActivity, Devices, DeviceCapacity, DevicesFlagged, DevicesDrifted, DevicesAlarmed, DevicesAlarmedByCause, EstimatedAccuracy, ReferenceAccuracy, EstimateNamedFaultShare, EstimateReliable];

    private static readonly Meter Instance = new(Name, typeof(DriftMeter).Assembly.GetName().Version?.ToString());
    private static readonly ConcurrentDictionary<DriftMetrics, byte> Live = new();

    public static readonly Counter<long> Scorings = Instance.CreateCounter<long>(ScoringsTotal, description: "Scorings of a current window.");
    public static readonly Counter<long> Findings = Instance.CreateCounter<long>(FindingsTotal, description: "Sensor findings by kind.");
    public static readonly Counter<long> Evicted = Instance.CreateCounter<long>(DevicesEvictedTotal, description: "Per-device monitors evicted, by reason.");
    public static readonly Counter<long> TicksSkipped = Instance.CreateCounter<long>(TicksSkippedTotal, description: TicksSkippedHelp);
    public static readonly Counter<long> Unmonitored = Instance.CreateCounter<long>(UnmonitoredTotal, description: UnmonitoredHelp);
    public static readonly Histogram<double> ScoringDuration = Instance.CreateHistogram<double>(ScoringSeconds, unit: "s", description: ScoringHelp);
    public static readonly Counter<long> StateSaves = Instance.CreateCounter<long>(StateSavesTotal, description: StateSavesHelp);
    public static readonly Counter<long> StateRestores = Instance.CreateCounter<long>(StateRestoresTotal, description: StateRestoresHelp);
    public static readonly Histogram<double> StateSaveDuration = Instance.CreateHistogram<double>(StateSaveSeconds, unit: "s", description: StateSaveHelp);
    public static readonly Counter<long> Unchecked = Instance.CreateCounter<long>(UncheckedTotal, description: "Scorings in which a check had no evidence to work with, by check.");

    static DriftMeter()
    {
        foreach (var g in Gauges)
        {
            var spec = g;
            Instance.CreateObservableGauge(spec.Name, () => Observe(spec), description: spec.Help);
        }
    }

    public static void Register(DriftMetrics metrics) => Live[metrics] = 0;

    public static void Unregister(DriftMetrics metrics) => Live.TryRemove(metrics, out _);

    private static IEnumerable<Measurement<double>> Observe(GaugeSpec spec)
    {
        foreach (var m in Live.Keys)
        {
            foreach (var (key, value) in m.Values)
            {
                if (key.Name != spec.Name)
                {
                    continue;
                }

                var tags = new KeyValuePair<string, object?>[1 + spec.Labels.Length];
                tags[0] = new("monitor", m.Monitor);
                if (spec.Labels.Length > 0)
                {
                    tags[1] = new(spec.Labels[0], key.A);
                }

                if (spec.Labels.Length > 1)
                {
                    tags[2] = new(spec.Labels[1], key.B);
                }

                yield return new Measurement<double>(value, tags);
            }
        }
    }

    /// <summary>A gauge: its name, help text and labels besides <c>monitor</c>.</summary>
    internal sealed record GaugeSpec(string Name, string Help, string[] Labels);
}
