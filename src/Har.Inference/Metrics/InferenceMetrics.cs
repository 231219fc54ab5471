using Prometheus;

namespace Har.Inference.Metrics;

/// <summary>
/// The metrics of one loaded model (names from the reference deployment), all labelled with <c>model</c> =
/// the model version: Prometheus (prometheus-net) and the <c>Har.Inference</c> <see cref="System.Diagnostics.Metrics.Meter"/>
/// (<see cref="InferenceMeter"/>). Children and tags are resolved once, so recording allocates nothing.
/// </summary>
internal sealed class InferenceMetrics : IPredictionObserver
{
    public const int RollingWindow = 1000;

    private static readonly double[] LatencyBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
    private static readonly double[] BatchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256];

    private readonly Counter.Child _success;
    private readonly Counter.Child _error;
    private readonly Counter.Child _windows;
    private readonly Histogram.Child _latency;
    private readonly Histogram.Child _batchSize;
    private readonly Gauge.Child _confidence;
    private readonly Gauge.Child _entropy;
    private readonly Gauge.Child _memory;
    private readonly RollingMean _rollingConfidence = new(RollingWindow);
    private readonly RollingMean _rollingEntropy = new(RollingWindow);
    private readonly KeyValuePair<string, object?>[] _success2;
    private readonly KeyValuePair<string, object?>[] _error2;
    private readonly Func<long> _memoryBytes;
    private double _lastConfidence;
    private double _lastEntropy;

    public InferenceMetrics(CollectorRegistry registry, string modelVersion, Func<long> memoryBytes)
    {
        _memoryBytes = memoryBytes;
        ModelTag = new KeyValuePair<string, object?>("model", modelVersion);
        _success2 = [ModelTag, new("status", "success")];
        _error2 = [ModelTag, new("status", "error")];
        var factory = Prometheus.Metrics.WithCustomRegistry(registry);
        string[] model = ["model"];
        var requests = factory.CreateCounter("har_inference_requests_total", "Total inference requests (one per scored batch call), by outcome.", new CounterConfiguration { LabelNames = ["model", "status"] });
        _success = requests.WithLabels(modelVersion, "success");
        _error = requests.WithLabels(modelVersion, "error");
        _latency = factory.CreateHistogram("har_inference_latency_seconds", "Inference latency in seconds (per batch, queueing included on the batched path).", new HistogramConfiguration { LabelNames = model, Buckets = LatencyBuckets }).WithLabels(modelVersion);
        _confidence = factory.CreateGauge("har_model_confidence", $"Mean prediction confidence over the last {RollingWindow} predictions.", model).WithLabels(modelVersion);
        _entropy = factory.CreateGauge("har_model_entropy", $"Mean prediction entropy (nats) over the last {RollingWindow} predictions.", model).WithLabels(modelVersion);
        _memory = factory.CreateGauge("har_model_memory_bytes", "Bytes held by the loaded model: the ONNX file plus the pinned input/output buffers.", model).WithLabels(modelVersion);
        _windows = factory.CreateCounter("har_inference_windows_total", "Windows scored.", model).WithLabels(modelVersion);
        _batchSize = factory.CreateHistogram("har_inference_batch_size", "Windows per ONNX Runtime run.", new HistogramConfiguration { LabelNames = model, Buckets = BatchBuckets }).WithLabels(modelVersion);
        InferenceMeter.Track(this);
    }

    /// <summary>Gets the <c>model</c> tag of the Meter instruments.</summary>
    public KeyValuePair<string, object?> ModelTag { get; }

    public double Confidence => Volatile.Read(ref _lastConfidence);

    public double Entropy => Volatile.Read(ref _lastEntropy);

    public double MemoryBytes => _memoryBytes();

    public void SetMemory(long bytes) => _memory.Set(bytes);

    public void ObserveRun(int batchSize)
    {
        _batchSize.Observe(batchSize);
        InferenceMeter.BatchSize.Record(batchSize, ModelTag);
    }

    public void OnPredictions(ModelCard model, ReadOnlySpan<Prediction> predictions)
    {
        if (predictions.IsEmpty)
        {
            return;
        }

        _success.Inc();
        _windows.Inc(predictions.Length);
        _latency.Observe(predictions[0].Latency.TotalSeconds);
        var confidence = _rollingConfidence.Add(predictions, static p => p.Confidence);
        var entropy = _rollingEntropy.Add(predictions, static p => p.Entropy);
        _confidence.Set(confidence);
        _entropy.Set(entropy);
        Volatile.Write(ref _lastConfidence, confidence);
        Volatile.Write(ref _lastEntropy, entropy);
        InferenceMeter.Requests.Add(1, _success2);
        InferenceMeter.Windows.Add(predictions.Length, ModelTag);
        InferenceMeter.Latency.Record(predictions[0].Latency.TotalSeconds, ModelTag);
    }

    public void OnError(ModelCard model, int windows, Exception error)
    {
        _error.Inc();
        InferenceMeter.Requests.Add(1, _error2);
    }

    public void Remove()
    {
        InferenceMeter.Untrack(this);
        _success.Remove();
        _error.Remove();
        _windows.Remove();
        _latency.Remove();
        _batchSize.Remove();
        _confidence.Remove();
        _entropy.Remove();
        _memory.Remove();
    }

    /// <summary>Mean of the last N values, updated in O(batch).</summary>
    private sealed class RollingMean(int capacity)
    {
        private readonly float[] _values = new float[capacity];
        private int _next;
        private int _count;
        private double _sum;

        public double Add(ReadOnlySpan<Prediction> predictions, Func<Prediction, float> select)
        {
            lock (_values)
            {
                foreach (var p in predictions)
                {
                    var v = select(p);
                    if (_count == _values.Length)
                    {
                        _sum -= _values[_next];
                    }
                    else
                    {
                        _count++;
                    }

                    _values[_next] = v;
                    _sum += v;
                    _next = (_next + 1) % _values.Length;
                }

                // Recompute now and then so floating-point drift of the running sum cannot accumulate.
                if (_next == 0)
                {
                    _sum = 0;
                    for (var i = 0; i < _count; i++)
                    {
                        _sum += _values[i];
                    }
                }

                return _sum / _count;
            }
        }
    }
}
