using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace Har.Deployment;

/// <summary>
/// The <see cref="System.Diagnostics.Metrics"/> side of Har.Deployment's metrics: one <see cref="Meter"/> named
/// <c>Har.Deployment</c> (the assembly's name) with instruments named exactly like the Prometheus metrics, so
/// OpenTelemetry (<c>AddMeter("Har.Deployment")</c>) collects them without prometheus-net. Counters are added
/// where the Prometheus counters are; gauges observe every live controller's current values.
/// </summary>
internal static class DeploymentMeter
{
    public const string Name = "Har.Deployment";

    private static readonly Meter Meter = new(Name, typeof(DeploymentMeter).Assembly.GetName().Version?.ToString());
    private static readonly ConditionalWeakTable<DeploymentMetrics, object?> Controllers = [];

    public static readonly Counter<long> Verdicts = Meter.CreateCounter<long>("har_rollout_gate_verdicts_total", description: "Analysis gate verdicts by gate and verdict.");
    public static readonly Counter<long> Rollbacks = Meter.CreateCounter<long>("har_rollout_rollbacks_total", description: "Rollbacks, by trigger (automatic or manual).");
    public static readonly Counter<long> Analyses = Meter.CreateCounter<long>("har_rollout_analyses_total", description: "Analysis intervals evaluated, by combined verdict.");
    public static readonly Counter<long> ServedWindows = Meter.CreateCounter<long>("har_serving_windows_total", description: "Windows scored by the serving pipeline, by model version and role (served, shadow, mirror).");
    public static readonly Counter<long> ServingErrors = Meter.CreateCounter<long>("har_serving_errors_total", description: "Windows the serving pipeline failed to score, by model version and role.");
    public static readonly Counter<long> ShedWindows = Meter.CreateCounter<long>("har_serving_shed_windows_total", description: "Shadow and mirror windows not scored because too many were already off the callers' path or the version's queue was full, by model version and role.");
    public static readonly Counter<long> ObserverErrors = Meter.CreateCounter<long>("har_serving_observer_errors_total", description: "Exceptions thrown by serving observers (counted, never returned to callers).");

    static DeploymentMeter()
    {
        Meter.CreateObservableGauge("har_rollout_weight_percent", ObserveWeights, "%", "Share of streams served by each model version, in percent.");
        Meter.CreateObservableGauge("har_rollout_phase", ObservePhases, description: "1 for the rollout's current phase, 0 for the others.");
        Meter.CreateObservableGauge("har_rollout_loop_faulted", ObserveFaults, description: "1 while the rollout controller's reconcile loop is failing (it retries; traffic stays on the plan in force), else 0.");
    }

    public static void Track(DeploymentMetrics metrics) => Controllers.AddOrUpdate(metrics, null);

    private static IEnumerable<Measurement<double>> ObserveWeights()
    {
        foreach (var (metrics, _) in Controllers)
        {
            foreach (var (version, percent) in metrics.Weights)
            {
                yield return new Measurement<double>(percent, new KeyValuePair<string, object?>("version", version));
            }
        }
    }

    private static IEnumerable<Measurement<int>> ObservePhases()
    {
        foreach (var (metrics, _) in Controllers)
        {
            if (metrics.Phase is not { } current)
            {
                continue;
            }

            foreach (var phase in Enum.GetValues<RolloutPhase>())
            {
                yield return new Measurement<int>(phase == current ? 1 : 0, new KeyValuePair<string, object?>("phase", phase.ToString()));
            }
        }
    }

    private static IEnumerable<Measurement<int>> ObserveFaults()
    {
        foreach (var (metrics, _) in Controllers)
        {
            yield return new Measurement<int>(metrics.LoopFaulted ? 1 : 0);
        }
    }
}
