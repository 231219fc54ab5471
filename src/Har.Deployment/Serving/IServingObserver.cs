using Har.Inference;

namespace Har.Deployment;

/// <summary>Why a model version ran on a window.</summary>
public enum PredictionRole
{
    /// <summary>The prediction was returned to the caller (the version the traffic plan routed the stream to).</summary>
    Served,

    /// <summary>A shadow candidate ran on a copy of a window the stable version served; only compared, never returned.</summary>
    Shadow,

    /// <summary>The stable version ran on a copy of a window the candidate served (paired comparison); only compared, never returned.</summary>
    Mirror,
}

/// <summary>
/// The predictions one model version made for one call of the <see cref="ServingPipeline"/> (one stream
/// append or one whole-window request), as every <see cref="IServingObserver"/> sees them. Valid only
/// during the observer call.
/// </summary>
public readonly ref struct ServedPredictions
{
    private readonly ReadOnlySpan<float> _windows;
    private readonly StreamWindows _views;
    private readonly bool _isView;

    /// <summary>Whole windows, one after the other in <paramref name="windows"/>.</summary>
    internal ServedPredictions(string? streamId, string version, PredictionRole role, WindowGeometry geometry, ReadOnlySpan<float> windows, ReadOnlySpan<long> startFrames, ReadOnlySpan<Prediction> predictions, ReadOnlySpan<Prediction> compared, TimeSpan latency, TimeSpan serviceTime)
        : this(streamId, version, role, geometry, startFrames, predictions, compared, latency, serviceTime)
    {
        _windows = windows;
    }

    /// <summary>A stream's windows, as views of its buffer (or of the appended frames).</summary>
    internal ServedPredictions(string streamId, string version, WindowGeometry geometry, StreamWindows views, ReadOnlySpan<long> startFrames, ReadOnlySpan<Prediction> predictions, TimeSpan latency, TimeSpan serviceTime)
        : this(streamId, version, PredictionRole.Served, geometry, startFrames, predictions, default, latency, serviceTime)
    {
        _views = views;
        _isView = true;
    }

    private ServedPredictions(string? streamId, string version, PredictionRole role, WindowGeometry geometry, ReadOnlySpan<long> startFrames, ReadOnlySpan<Prediction> predictions, ReadOnlySpan<Prediction> compared, TimeSpan latency, TimeSpan serviceTime)
    {
        StreamId = streamId;
        Version = version;
        Role = role;
        Geometry = geometry;
        WindowLength = geometry.ContextFrames + geometry.WindowLength;
        Stride = geometry.Stride;
        Channels = geometry.Channels.Count;
        StartFrames = startFrames;
        Predictions = predictions;
        Compared = compared;
        Latency = latency;
        ServiceTime = serviceTime;
    }

    /// <summary>Gets the stream (device) id, or <see langword="null"/> for an anonymous whole-window request.</summary>
    public string? StreamId { get; }

    /// <summary>Gets the model version that made the predictions.</summary>
    public string Version { get; }

    /// <summary>Gets why the version ran.</summary>
    public PredictionRole Role { get; }

    /// <summary>Gets the window geometry of the predictions: frames per window, stride, channels and sample rate.</summary>
    public WindowGeometry Geometry { get; }

    /// <summary>Gets the number of frames per input window (the context frames and the window).</summary>
    internal int WindowLength { get; }

    /// <summary>Gets the number of frames between the starts of consecutive windows of a stream.</summary>
    internal int Stride { get; }

    /// <summary>Gets, for stream windows, each window's stream-relative first frame, after its context (consecutive windows overlap by <see cref="WindowGeometry.WindowLength"/> − <see cref="WindowGeometry.Stride"/> frames); empty for whole windows.</summary>
    public ReadOnlySpan<long> StartFrames { get; }

    /// <summary>Gets the number of values per frame.</summary>
    internal int Channels { get; }

    /// <summary>
    /// Gets window <paramref name="index"/> (the one <see cref="Predictions"/>[<paramref name="index"/>] was made on):
    /// <see cref="WindowGeometry.WindowLength"/> (of <see cref="Geometry"/>) interleaved frames in sensor units, after its
    /// <see cref="WindowGeometry.ContextFrames"/> frames of context if the models read any. For a stream, a view of the stream's buffer (no
    /// copy; consecutive windows share their overlapping frames); valid only during the observer call.
    /// </summary>
    /// <param name="index">The window, 0 ≤ index &lt; <see cref="Predictions"/>.Length.</param>
    /// <returns>The window's values.</returns>
    public ReadOnlySpan<float> GetWindow(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Predictions.Length);
        if (_isView)
        {
            return _views[index];
        }

        var size = WindowLength * Channels;
        return _windows.Slice(index * size, size);
    }

    /// <summary>Gets the predictions, one per window, in order.</summary>
    public ReadOnlySpan<Prediction> Predictions { get; }

    /// <summary>Gets, for <see cref="PredictionRole.Shadow"/> and <see cref="PredictionRole.Mirror"/>, the served predictions of the same windows; otherwise empty.</summary>
    public ReadOnlySpan<Prediction> Compared { get; }

    /// <summary>Gets how long the caller waited for the predictions (queueing and batching included), on the pipeline's <see cref="TimeProvider"/>.</summary>
    public TimeSpan Latency { get; }

    /// <summary>
    /// Gets the model's own inference time for these windows: for each window, the ONNX Runtime run time of the
    /// batch that scored it divided by that batch's windows, summed (<see cref="Prediction.ServiceTime"/>). Measured on
    /// the monotonic clock (<see cref="System.Diagnostics.Stopwatch"/>), never the <see cref="TimeProvider"/>, and free of
    /// queueing: a latency gate on it judges the model, not the load. Positive whenever a window was scored. Usually at most
    /// <see cref="Latency"/>; a call whose windows filled several batches that ran at once on different workers can exceed it.
    /// </summary>
    public TimeSpan ServiceTime { get; }
}

/// <summary>
/// The one way anything learns of a prediction of the <see cref="ServingPipeline"/>: metrics, the rollout
/// analysis, input and output drift all are observers. Called synchronously on the serving path, for
/// stream ingest and whole-window requests alike: keep it fast; an exception is counted and logged, never
/// returned to the caller.
/// </summary>
public interface IServingObserver
{
    /// <summary>Called with the raw frames that entered the pipeline (a stream append, or the frames of whole windows), before windowing.</summary>
    /// <param name="streamId">The stream (device) id, or <see langword="null"/> for an anonymous request.</param>
    /// <param name="frames">Interleaved frames in sensor units; valid only during the call.</param>
    void OnSamples(string? streamId, ReadOnlySpan<float> frames)
    {
    }

    /// <summary>Called after a version scored the windows of one call.</summary>
    /// <param name="predictions">The predictions and what they were made on.</param>
    void OnPredictions(in ServedPredictions predictions);

    /// <summary>Called when a version could not score the windows of one call.</summary>
    /// <param name="streamId">The stream (device) id, or <see langword="null"/>.</param>
    /// <param name="version">The version that failed.</param>
    /// <param name="role">Why it ran.</param>
    /// <param name="windows">How many windows were affected.</param>
    /// <param name="latency">How long the caller waited for the failure.</param>
    /// <param name="error">The failure.</param>
    void OnError(string? streamId, string version, PredictionRole role, int windows, TimeSpan latency, Exception error)
    {
    }
}
