using Har.Inference;
using Prometheus;

namespace Har.Deployment;

/// <summary>Options of the <see cref="ServingPipeline"/>: how models are loaded and how streams are held.</summary>
public sealed class ServingOptions
{
    /// <summary>Gets the Har.Inference options every resident model version is loaded with (workers, batching, threads).</summary>
    /// <value>The default value is Har.Inference's defaults. Set <see cref="HarModelOptions.UseGlobalThreadPool"/> when the process creates its ONNX Runtime environment through Har.Inference first.</value>
    public HarModelOptions Model { get; } = new();

    /// <summary>Gets or sets the most streams (devices) held at once; a new stream beyond it first evicts idle ones.</summary>
    /// <value>The default value is 10,000.</value>
    public int MaxStreams { get; set; } = 10_000;

    /// <summary>Gets or sets how long a stream may stay silent before its buffered frames are dropped.</summary>
    /// <value>The default value is 5 minutes.</value>
    public TimeSpan StreamIdleTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets or sets how many frames before each window the pipeline keeps and hands to the versions
    /// (<see cref="WindowGeometry.ContextFrames"/>). A version that reads less (<see cref="ModelCard.ContextFrames"/>,
    /// e.g. 0) reads the last frames of each window it needs, so a candidate that reads the stream before each window can
    /// be rolled out over a champion that does not: set it to the candidate's context. A version that reads more than
    /// this cannot be served.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: the context of the version the pipeline opens with.</value>
    public int? ContextFrames { get; set; }

    /// <summary>Gets or sets the Prometheus registry the serving metrics go to.</summary>
    /// <value>The default value is <see langword="null"/>: <see cref="Metrics.DefaultRegistry"/>.</value>
    public CollectorRegistry? MetricsRegistry { get; set; }

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxStreams, 1, nameof(MaxStreams));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(StreamIdleTimeout, TimeSpan.Zero, nameof(StreamIdleTimeout));
        if (ContextFrames is { } context)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(context, nameof(ContextFrames));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(context, 1 << 20, nameof(ContextFrames));
        }
    }
}
