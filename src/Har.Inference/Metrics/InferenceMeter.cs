using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace Har.Inference.Metrics;

/// <summary>
/// The <see cref="System.Diagnostics.Metrics"/> side of Har.Inference's metrics: one <see cref="Meter"/> named
/// <c>Har.Inference</c> (the assembly's name), instruments named exactly like the Prometheus metrics, so
/// OpenTelemetry (<c>AddMeter("Har.Inference")</c>) collects them without prometheus-net.
/// </summary>
internal static class InferenceMeter
{
    public const string Name = "Har.Inference";

    public static readonly object Idle = "idle";
    public static readonly object LeastRecentlyUsed = "lru";
    public static readonly object StreamLimit = "stream_limit";
    public static readonly object WindowLimit = "window_limit";

    private static readonly Meter Meter = new(Name, typeof(InferenceMeter).Assembly.GetName().Version?.ToString());
    private static readonly ConditionalWeakTable<StreamWindower, object?> Windowers = [];
    private static readonly ConditionalWeakTable<InferenceMetrics, object?> Models = [];

    public static readonly Counter<long> Requests = Meter.CreateCounter<long>("har_inference_requests_total", description: "Total inference requests (one per scored batch call), by outcome.");
    public static readonly Histogram<double> Latency = Meter.CreateHistogram("har_inference_latency_seconds", "s", "Inference latency in seconds (per batch, queueing included on the batched path).", tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
    public static readonly Counter<long> Windows = Meter.CreateCounter<long>("har_inference_windows_total", description: "Windows scored.");
    public static readonly Histogram<int> BatchSize = Meter.CreateHistogram("har_inference_batch_size", "{window}", "Windows per ONNX Runtime run.", tags: null, new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256] });

    private static readonly Counter<long> Evictions = Meter.CreateCounter<long>("har_inference_stream_evictions_total", description: "Streams evicted by a StreamWindower, by reason (idle: the idle timeout; lru: least recently used, at the stream limit).");
    private static readonly Counter<long> Refusals = Meter.CreateCounter<long>("har_inference_stream_refusals_total", description: "Appends refused by a StreamWindower, by reason (stream_limit, window_limit).");

    static InferenceMeter()
    {
        Meter.CreateObservableGauge("har_model_confidence", () => ObserveModels(static m => m.Confidence), description: "Mean prediction confidence over the last 1000 predictions.");
        Meter.CreateObservableGauge("har_model_entropy", () => ObserveModels(static m => m.Entropy), description: "Mean prediction entropy (nats) over the last 1000 predictions.");
        Meter.CreateObservableGauge("har_model_memory_bytes", () => ObserveModels(static m => m.MemoryBytes), "By", "Bytes held by the loaded model: the ONNX file plus the pinned batch buffers.");
        Meter.CreateObservableGauge("har_inference_streams", () => ObserveWindowers(static w => w.StreamCount), "{stream}", "Streams buffered by each StreamWindower (geometry = length x stride x channels).");
        Meter.CreateObservableGauge("har_inference_stream_capacity", () => ObserveWindowers(static w => w.MaxStreams), "{stream}", "Stream limit (StreamWindowerOptions.MaxStreams) of each StreamWindower.");
    }

    public static void Track(StreamWindower windower) => Windowers.AddOrUpdate(windower, null);

    public static void Untrack(StreamWindower windower) => Windowers.Remove(windower);

    public static void Track(InferenceMetrics model) => Models.AddOrUpdate(model, null);

    public static void Untrack(InferenceMetrics model) => Models.Remove(model);

    public static void CountEvictions(int streams, object reason) => Evictions.Add(streams, new KeyValuePair<string, object?>("reason", reason));

    public static void CountRefusal(object reason) => Refusals.Add(1, new KeyValuePair<string, object?>("reason", reason));

    private static IEnumerable<Measurement<double>> ObserveModels(Func<InferenceMetrics, double> value)
    {
        foreach (var (model, _) in Models)
        {
            yield return new Measurement<double>(value(model), model.ModelTag);
        }
    }

    private static IEnumerable<Measurement<int>> ObserveWindowers(Func<StreamWindower, int> value)
    {
        foreach (var (windower, _) in Windowers)
        {
            yield return new Measurement<int>(value(windower), new KeyValuePair<string, object?>("geometry", windower.Geometry));
        }
    }
}
