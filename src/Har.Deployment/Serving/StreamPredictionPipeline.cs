using System.Buffers;
using Har.Drift;
using Har.Inference;

namespace Har.Deployment;

/// <summary>
/// The serving path of a host, in one object: whole windows, or raw interleaved samples cut into
/// per-stream windows (<see cref="StreamWindower"/>), each window routed by the
/// <see cref="RolloutController"/> (sticky per stream, canary share, shadow copies, observations for the
/// rollout analysis) into the chosen version's micro-batcher, and the raw samples fed to the drift
/// monitor. Hosts (an HTTP endpoint, a message consumer) only parse their input and write the answers.
/// </summary>
/// <remarks>
/// Safe for concurrent callers. Appends to one stream are serialised (a striped lock around the windower,
/// which hands out views valid only until the stream's next append); different streams, and whole-window
/// requests, run concurrently, so concurrent requests meet in the micro-batcher. Windows are copied once,
/// into a pooled buffer, on the stream path; the whole-window path reads the caller's buffer in place.
/// </remarks>
public sealed class StreamPredictionPipeline
{
    private const int LockStripes = 256;
    private readonly RolloutController _controller;
    private readonly StreamWindower _windower;
    private readonly DriftMonitor? _drift;
    private readonly object[] _locks;
    private long _anonymousRequests;

    /// <summary>Initializes a new instance of the <see cref="StreamPredictionPipeline"/> class.</summary>
    /// <param name="controller">Routes every window and serves it with the chosen version.</param>
    /// <param name="windower">Cuts streams into windows; its geometry must be the served models' (window length × channels).</param>
    /// <param name="drift">Receives every appended sample of every stream for input-drift scoring (a pool of all devices: configure it with <see cref="DriftScoringOptions.ConsistencyChecks"/> off), or <see langword="null"/> for none.</param>
    public StreamPredictionPipeline(RolloutController controller, StreamWindower windower, DriftMonitor? drift = null)
    {
        ArgumentNullException.ThrowIfNull(controller);
        ArgumentNullException.ThrowIfNull(windower);
        _controller = controller;
        _windower = windower;
        _drift = drift;
        _locks = new object[LockStripes];
        for (var i = 0; i < _locks.Length; i++)
        {
            _locks[i] = new object();
        }
    }

    /// <summary>Gets the number of values per frame (channels, e.g. 6 for <c>ax ay az gx gy gz</c>).</summary>
    public int Channels => _windower.Channels;

    /// <summary>Gets the number of frames per window.</summary>
    public int WindowLength => _windower.WindowLength;

    /// <summary>Gets the number of values per window: <see cref="WindowLength"/> × <see cref="Channels"/>.</summary>
    public int WindowValues => _windower.WindowLength * _windower.Channels;

    /// <summary>
    /// Scores whole windows, one after the other in <paramref name="windows"/>, through the router and
    /// the micro-batcher; all windows of one call take the same route.
    /// </summary>
    /// <param name="streamId">
    /// The routing key (stream or device id: sticky version assignment), or <see langword="null"/> or empty
    /// to route the call as an anonymous request of its own (the canary share then applies per request).
    /// </param>
    /// <param name="windows">n × <see cref="WindowValues"/> values in sensor units, interleaved; must not change until the task completes.</param>
    /// <param name="predictions">Receives the n predictions, in order; at least n entries.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when every window is scored (or, on failure, once none is still being read).</returns>
    /// <exception cref="ArgumentException">The input is not a positive whole number of windows, <paramref name="predictions"/> is too small, or a window holds NaN/infinity.</exception>
    /// <exception cref="InferenceQueueFullException">The served version's batching queue is full.</exception>
    public async ValueTask PredictAsync(string? streamId, ReadOnlyMemory<float> windows, Memory<Prediction> predictions, CancellationToken cancellationToken = default)
    {
        var size = WindowValues;
        if (windows.Length == 0 || windows.Length % size != 0)
        {
            throw new ArgumentException(
                $"Input holds {windows.Length} values; expected a positive multiple of {size} (windows of {WindowLength} frames × {Channels} channels, interleaved).",
                nameof(windows));
        }

        var count = windows.Length / size;
        if (predictions.Length < count)
        {
            throw new ArgumentException($"The predictions buffer holds {predictions.Length} entries; {count} windows need {count}.", nameof(predictions));
        }

        var key = string.IsNullOrEmpty(streamId) ? NextAnonymousKey() : streamId;
        var pending = ArrayPool<ValueTask<Prediction>>.Shared.Rent(count);
        try
        {
            await ScoreAsync(key, windows, size, count, pending, predictions, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Array.Clear(pending, 0, count);
            ArrayPool<ValueTask<Prediction>>.Shared.Return(pending);
        }
    }

    /// <summary>
    /// Appends interleaved frames to a stream, scores the windows they complete (routed by
    /// <paramref name="streamId"/>) and feeds the frames to the drift monitor.
    /// </summary>
    /// <param name="streamId">The stream (device, session …); a new id starts a new stream.</param>
    /// <param name="samples">Whole frames of <see cref="Channels"/> values each, in time order.</param>
    /// <param name="cancellationToken">Cancels the wait for the predictions (the frames are appended either way).</param>
    /// <returns>One entry per completed window, in stream order (empty when the frames complete none).</returns>
    /// <exception cref="ArgumentException">The stream id is empty, the input is not a whole number of frames, or it holds NaN/infinity.</exception>
    /// <exception cref="InvalidOperationException">The stream is new and the windower's stream limit is reached.</exception>
    /// <exception cref="InferenceQueueFullException">The served version's batching queue is full.</exception>
    public async ValueTask<StreamPrediction[]> AppendAsync(string streamId, ReadOnlyMemory<float> samples, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        var size = WindowValues;
        float[]? copied = null;
        long[]? starts = null;
        int count;
        try
        {
            lock (_locks[(uint)StringComparer.Ordinal.GetHashCode(streamId) % LockStripes])
            {
                // The views are valid until the next append to this stream: copy them out under the lock.
                var completed = _windower.Append(streamId, samples.Span);
                count = completed.Count;
                if (count > 0)
                {
                    copied = ArrayPool<float>.Shared.Rent(count * size);
                    starts = ArrayPool<long>.Shared.Rent(count);
                    completed.CopyTo(copied);
                    for (var i = 0; i < count; i++)
                    {
                        starts[i] = completed.GetStartFrame(i);
                    }
                }
            }

            _drift?.Append(samples.Span);
            if (count == 0)
            {
                return [];
            }

            var predictions = ArrayPool<Prediction>.Shared.Rent(count);
            var pending = ArrayPool<ValueTask<Prediction>>.Shared.Rent(count);
            try
            {
                await ScoreAsync(streamId, copied.AsMemory(0, count * size), size, count, pending, predictions, cancellationToken).ConfigureAwait(false);
                var result = new StreamPrediction[count];
                for (var i = 0; i < count; i++)
                {
                    result[i] = new StreamPrediction(starts![i], predictions[i]);
                }

                return result;
            }
            finally
            {
                Array.Clear(pending, 0, count);
                Array.Clear(predictions, 0, count);
                ArrayPool<ValueTask<Prediction>>.Shared.Return(pending);
                ArrayPool<Prediction>.Shared.Return(predictions);
            }
        }
        finally
        {
            if (copied is not null)
            {
                ArrayPool<float>.Shared.Return(copied);
                ArrayPool<long>.Shared.Return(starts!);
            }
        }
    }

    /// <summary>
    /// Starts every window (so they meet in the micro-batcher), then awaits each one: even when one fails,
    /// every window is awaited before returning, so no batch still reads the caller's (possibly pooled) buffer.
    /// </summary>
    private async ValueTask ScoreAsync(string key, ReadOnlyMemory<float> windows, int size, int count, ValueTask<Prediction>[] pending, Memory<Prediction> predictions, CancellationToken cancellationToken)
    {
        var started = 0;
        Exception? error = null;
        for (; started < count; started++)
        {
            try
            {
#pragma warning disable CA2012 // kept to start every window before the first await; each is awaited exactly once below
                pending[started] = _controller.PredictAsync(key, windows.Slice(started * size, size), cancellationToken);
#pragma warning restore CA2012
            }
#pragma warning disable CA1031 // rethrown below, once the windows already started are done
            catch (Exception ex)
#pragma warning restore CA1031
            {
                error = ex;
                break;
            }
        }

        for (var i = 0; i < started; i++)
        {
            try
            {
                var prediction = await pending[i].ConfigureAwait(false);
                predictions.Span[i] = prediction;
            }
#pragma warning disable CA1031 // the first failure is rethrown after every window has finished
            catch (Exception ex)
#pragma warning restore CA1031
            {
                error ??= ex;
            }
        }

        if (error is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        }
    }

    private string NextAnonymousKey() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"request:{Interlocked.Increment(ref _anonymousRequests)}");
}

/// <summary>A prediction for one window of a stream, with where the window starts.</summary>
/// <param name="StartFrame">Stream-relative index of the window's first frame (0 = the stream's first frame).</param>
/// <param name="Prediction">The served prediction.</param>
public readonly record struct StreamPrediction(long StartFrame, Prediction Prediction);
