using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Prometheus;

namespace Har.Deployment;

/// <summary>
/// Accuracy on ground-truth feedback, per model version: <c>har_model_accuracy{model}</c> (share of the
/// labelled windows held that the version predicted right) and <c>har_model_labelled_windows{model}</c>
/// (how many labelled windows that share is computed on), through prometheus-net and through the
/// <c>Har.Deployment</c> <see cref="Meter"/> with the same names and tags.
/// </summary>
internal sealed class FeedbackMetrics
{
    private static readonly Meter Meter = new(DeploymentMeter.Name, typeof(FeedbackMetrics).Assembly.GetName().Version?.ToString());
    private static readonly ConditionalWeakTable<FeedbackMetrics, object?> Live = [];

    private readonly Gauge _accuracy;
    private readonly Gauge _labelled;
    private readonly Counter _notHeld;
    private readonly ConcurrentDictionary<string, (long Labelled, long Correct)> _current = new(StringComparer.Ordinal);

    static FeedbackMetrics()
    {
        Meter.CreateObservableGauge("har_model_accuracy", () => Observe(static x => x.Labelled == 0 ? double.NaN : (double)x.Correct / x.Labelled), description: "Share of the labelled windows (ground-truth feedback) each model version predicted right.");
        Meter.CreateObservableGauge("har_model_labelled_windows", () => Observe(static x => x.Labelled), description: "Labelled windows (ground-truth feedback) har_model_accuracy is computed on, per model version.");
    }

    public FeedbackMetrics(CollectorRegistry? registry)
    {
        var factory = Metrics.WithCustomRegistry(registry ?? Metrics.DefaultRegistry);
        _accuracy = factory.CreateGauge("har_model_accuracy", "Share of the labelled windows (ground-truth feedback) each model version predicted right.", "model");
        _labelled = factory.CreateGauge("har_model_labelled_windows", "Labelled windows (ground-truth feedback) har_model_accuracy is computed on, per model version.", "model");
        _notHeld = factory.CreateCounter("har_feedback_windows_not_held_total", "Predicted windows not held for feedback labels: the feedback store held its most streams and every one of them had predicted within the minimum idle time, so a new stream did not take a place.");
        Live.AddOrUpdate(this, null);
    }

    public void Labelled(string model, long labelled, long correct)
    {
        _current[model] = (labelled, correct);
        _labelled.WithLabels(model).Set(labelled);
        if (labelled > 0)
        {
            _accuracy.WithLabels(model).Set((double)correct / labelled);
        }
    }

    /// <summary>Counts predicted windows of a stream the store could not hold (full of streams that are streaming).</summary>
    public void NotHeld(int windows) => _notHeld.Inc(windows);

    private static IEnumerable<Measurement<double>> Observe(Func<(long Labelled, long Correct), double> value)
    {
        foreach (var (metrics, _) in Live)
        {
            foreach (var (model, counts) in metrics._current)
            {
                var v = value(counts);
                if (!double.IsNaN(v))
                {
                    yield return new Measurement<double>(v, new KeyValuePair<string, object?>("model", model));
                }
            }
        }
    }
}
