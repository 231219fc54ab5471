using System.ComponentModel.DataAnnotations;
using Prometheus;

namespace Har.Inference;

/// <summary>Options of a loaded <see cref="HarModel"/>: ONNX Runtime threading, batching, uncertainty and metrics.</summary>
public sealed class HarModelOptions
{
    /// <summary>Gets or sets the number of threads one ONNX Runtime run may use (ignored with <see cref="UseGlobalThreadPool"/>).</summary>
    /// <value>The default value is 1: a HAR model is small, and concurrency comes from <see cref="Workers"/> and batching.</value>
    [Range(1, 1024)]
    public int IntraOpThreads { get; set; } = 1;

    /// <summary>
    /// Gets or sets whether the session uses the process-wide ONNX Runtime thread pool instead of its own,
    /// which is what to do when several model versions are resident (a rollout keeps two or three).
    /// </summary>
    /// <value>The default value is <see langword="false"/>.</value>
    public bool UseGlobalThreadPool { get; set; }

    /// <summary>Gets or sets whether ONNX Runtime worker threads spin while waiting for work (lower latency, burns CPU).</summary>
    /// <value>The default value is <see langword="false"/>.</value>
    internal bool AllowSpinning { get; set; }

    /// <summary>Gets or sets the number of runs that may execute at once, each with its own pinned buffers and I/O bindings.</summary>
    /// <value>The default value is 2.</value>
    [Range(1, 256)]
    public int Workers { get; set; } = 2;

    /// <summary>
    /// Gets or sets the largest number of windows in one ONNX Runtime run (the batch tensor's capacity). Smaller
    /// batches keep every worker busy: with 32 concurrent callers and two workers, a cap of 32 lets one run take
    /// almost every queued window while the other worker idles, and the callers stay grouped that way
    /// (benchmarks/results/Inference/BatcherBenchmarks.md).
    /// </summary>
    /// <value>The default value is 16 (32 before 2026-12-04).</value>
    [Range(1, 4096)]
    public int MaxBatchSize { get; set; } = 16;

    /// <summary>
    /// Gets or sets how long the micro-batcher waits for more windows after the first one before running a partial
    /// batch. Zero (the default) never waits: a free worker takes whatever is queued, so a lone window runs at once
    /// and batches form by themselves while the workers are busy (as Triton's dynamic batcher does by default). With
    /// 32 concurrent callers and max batch 32, waiting 1 ms measured 1.5× (candidate) and 1.8× (champion) the
    /// windows/s of sequential calls against 1.5× and 1.9× without waiting, and 2.5× and 3.0× with the default max
    /// batch 16 (benchmarks/results/Inference/BatcherBenchmarks.md).
    /// </summary>
    /// <value>The default value is <see cref="TimeSpan.Zero"/>.</value>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:10")]
    public TimeSpan MaxBatchWait { get; set; } = TimeSpan.Zero;

    /// <summary>Gets or sets how many windows may wait for the micro-batcher; beyond it <c>HarModel.PredictAsync</c> throws <see cref="InferenceQueueFullException"/>.</summary>
    /// <value>The default value is 1024.</value>
    [Range(1, 1_000_000)]
    public int QueueCapacity { get; set; } = 1024;

    /// <summary>Gets or sets the confidence below which a prediction is flagged <see cref="Prediction.IsUncertain"/>.</summary>
    /// <value>The default value is 0.70.</value>
    [Range(0.0, 1.0)]
    public float UncertaintyThreshold { get; set; } = 0.70f;

    /// <summary>
    /// Gets or sets how long one ONNX Runtime run (a batch of windows, the load's warm-up runs included) may take
    /// before it is stopped: its windows then fail with <see cref="TimeoutException"/> (and the load with
    /// <see cref="ModelCardException"/>), so a graph that never finishes — a runaway loop, a model far too large for the
    /// machine — cannot hold a worker, its callers, a rollout or a shutdown. Measured on the monotonic clock, whatever
    /// the <see cref="TimeProvider"/>; ONNX Runtime stops between the graph's nodes.
    /// </summary>
    /// <value>The default value is 30 seconds (the bundled models score a batch of 16 windows in milliseconds).</value>
    [Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00")]
    public TimeSpan RunTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets or sets whether Prometheus metrics are recorded.</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool EnableMetrics { get; set; } = true;

    /// <summary>Gets or sets the Prometheus registry the metrics go to.</summary>
    /// <value>The default value is <see langword="null"/>: <see cref="Prometheus.Metrics.DefaultRegistry"/>.</value>
    public CollectorRegistry? MetricsRegistry { get; set; }

    /// <summary>Gets the observers told about every prediction and every failure (e.g. rollout analysis, drift monitoring).</summary>
    /// <value>The default value is an empty list.</value>
    internal IList<IPredictionObserver> Observers { get; } = [];
}
