using Microsoft.Extensions.Logging;
using Prometheus;

namespace Har.Deployment;

/// <summary>The one fan-out of the serving path: the built-in metrics first, then every observer; an observer's exception is counted and logged, never thrown.</summary>
internal sealed class ServingFanOut(IServingObserver[] observers, ServingMetrics metrics, ILogger logger)
{
    private int _loggedFailures;

    public void OnSamples(string? streamId, ReadOnlySpan<float> frames)
    {
        foreach (var observer in observers)
        {
            try
            {
                observer.OnSamples(streamId, frames);
            }
#pragma warning disable CA1031 // an observer never fails a prediction
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Failed(observer, ex);
            }
        }
    }

    public void OnPredictions(in ServedPredictions predictions)
    {
        metrics.OnPredictions(predictions);
        foreach (var observer in observers)
        {
            try
            {
                observer.OnPredictions(predictions);
            }
#pragma warning disable CA1031 // an observer never fails a prediction
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Failed(observer, ex);
            }
        }
    }

    public void OnError(string? streamId, string version, PredictionRole role, int windows, TimeSpan latency, Exception error)
    {
        metrics.OnError(version, role, windows);
        foreach (var observer in observers)
        {
            try
            {
                observer.OnError(streamId, version, role, windows, latency, error);
            }
#pragma warning disable CA1031 // an observer never fails a prediction
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Failed(observer, ex);
            }
        }
    }

    /// <summary>Counts shadow or mirror windows not scored because the off-path budget or the version's queue was full (neither an error nor an observation).</summary>
    public void OnShed(string version, PredictionRole role, int windows) => metrics.OnShed(version, role, windows);

    private void Failed(IServingObserver observer, Exception ex)
    {
        metrics.ObserverFailed();

        // The first few failures are logged with their stack; after that only the counter moves.
        if (Interlocked.Increment(ref _loggedFailures) <= 10)
        {
            Log.ObserverFailed(logger, observer.GetType().Name, ex);
        }
    }
}

/// <summary>The serving path's Prometheus metrics: windows scored and failed per version and role, observer failures.</summary>
internal sealed class ServingMetrics
{
    private readonly Counter _windows;
    private readonly Counter _errors;
    private readonly Counter _observerErrors;
    private readonly Counter _shed;

    // The labelled children per version (served, shadow, mirror): WithLabels allocates its label array on every call.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Counter.Child[]> _windowsByVersion = new(StringComparer.Ordinal);

    public ServingMetrics(CollectorRegistry? registry)
    {
        var factory = Metrics.WithCustomRegistry(registry ?? Metrics.DefaultRegistry);
        _windows = factory.CreateCounter("har_serving_windows_total", "Windows scored by the serving pipeline, by model version and role (served, shadow, mirror).", "version", "role");
        _errors = factory.CreateCounter("har_serving_errors_total", "Windows the serving pipeline failed to score, by model version and role.", "version", "role");
        _observerErrors = factory.CreateCounter("har_serving_observer_errors_total", "Exceptions thrown by serving observers (counted, never returned to callers).");
        _shed = factory.CreateCounter("har_serving_shed_windows_total", "Shadow and mirror windows not scored because too many were already off the callers' path or the version's queue was full, by model version and role.", "version", "role");
    }

    public void OnPredictions(in ServedPredictions p)
    {
        var children = _windowsByVersion.GetOrAdd(p.Version, static (version, counter) => [counter.WithLabels(version, "served"), counter.WithLabels(version, "shadow"), counter.WithLabels(version, "mirror")], _windows);
        children[(int)p.Role].Inc(p.Predictions.Length);
        DeploymentMeter.ServedWindows.Add(p.Predictions.Length, new("version", p.Version), new("role", RoleName(p.Role)));
    }

    public void OnError(string version, PredictionRole role, int windows)
    {
        _errors.WithLabels(version, RoleName(role)).Inc(windows);
        DeploymentMeter.ServingErrors.Add(windows, new("version", version), new("role", RoleName(role)));
    }

    public void OnShed(string version, PredictionRole role, int windows)
    {
        _shed.WithLabels(version, RoleName(role)).Inc(windows);
        DeploymentMeter.ShedWindows.Add(windows, new("version", version), new("role", RoleName(role)));
    }

    public void ObserverFailed()
    {
        _observerErrors.Inc();
        DeploymentMeter.ObserverErrors.Add(1);
    }

    private static string RoleName(PredictionRole role) => role switch
    {
        PredictionRole.Served => "served",
        PredictionRole.Shadow => "shadow",
        _ => "mirror",
    };
}

/// <summary>
/// Feeds the rollout analysis: served predictions and errors per version, and paired comparisons from shadow and mirror
/// runs. Every class index is counted in the stable version's class order (<see cref="ClassOrder"/>): versions are
/// compared by activity name, whatever order their cards list the labels in.
/// </summary>
internal sealed class RolloutObservationsObserver(RolloutObservations observations, ClassOrder order) : IServingObserver
{
    /// <summary>The plan in force, which names the stable version and the candidate (set once the pipeline exists).</summary>
    public Func<TrafficPlan>? Plan { get; set; }

    public void OnPredictions(in ServedPredictions p)
    {
        var predictions = p.Predictions;
        var plan = Plan?.Invoke();
        var stable = plan?.Stable ?? p.Version;
        switch (p.Role)
        {
            case PredictionRole.Served:
                var served = order.Map(p.Version, stable);
                for (var i = 0; i < predictions.Length; i++)
                {
                    ref readonly var x = ref predictions[i];
                    observations.RecordPrediction(p.Version, new PredictionObservation(ClassOrder.Translate(served, x.ClassIndex), x.Confidence, x.IsUncertain, p.Latency, x.ServiceTime, x.BatchSize));
                }

                break;
            case PredictionRole.Shadow:
                // A shadow candidate's runs are its only observations: count them as its requests; the pair is (shadow, served stable).
                var shadow = order.Map(p.Version, stable);
                for (var i = 0; i < predictions.Length; i++)
                {
                    ref readonly var x = ref predictions[i];
                    ref readonly var s = ref p.Compared[i];
                    var candidateClass = ClassOrder.Translate(shadow, x.ClassIndex);
                    observations.RecordPrediction(p.Version, new PredictionObservation(candidateClass, x.Confidence, x.IsUncertain, p.Latency, x.ServiceTime, x.BatchSize));
                    observations.RecordPair(new PairedObservation(candidateClass, x.Confidence, x.IsUncertain, s.ClassIndex, s.Confidence, s.IsUncertain));
                }

                break;
            default:
                // The stable version on the candidate's windows: the pair is (served candidate, mirrored stable).
                var candidate = plan?.Candidate is { } c ? order.Map(c, p.Version) : null;
                for (var i = 0; i < predictions.Length; i++)
                {
                    ref readonly var x = ref predictions[i];
                    ref readonly var s = ref p.Compared[i];
                    observations.RecordLatency(p.Version, p.Latency, x.ServiceTime, x.BatchSize);
                    observations.RecordPair(new PairedObservation(ClassOrder.Translate(candidate, s.ClassIndex), s.Confidence, s.IsUncertain, x.ClassIndex, x.Confidence, x.IsUncertain));
                }

                break;
        }
    }

    public void OnError(string? streamId, string version, PredictionRole role, int windows, TimeSpan latency, Exception error)
    {
        if (role == PredictionRole.Mirror)
        {
            // Not a request of the stable version, but its error rate on the candidate's traffic: what the error-rate gate
            // compares the candidate with when every stream is on the candidate.
            for (var i = 0; i < windows; i++)
            {
                observations.RecordMirrorError(version, latency);
            }

            return;
        }

        for (var i = 0; i < windows; i++)
        {
            observations.RecordError(version, latency);
        }
    }
}
