using System.Buffers;
using Har.Drift;
using Har.Inference;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Har.Deployment;

/// <summary>
/// The serving path, in one object: raw interleaved samples cut into per-stream windows, or whole
/// windows; each call routed by the current immutable <see cref="TrafficPlan"/> (sticky per stream,
/// canary share, shadow copies) into the chosen version's micro-batcher; and one observer fan-out
/// (<see cref="IServingObserver"/>) through which metrics, the rollout analysis and drift monitoring
/// learn of every sample and prediction. The <see cref="RolloutController"/> only publishes plans to it
/// and reads what its observers collected. Hosts (an HTTP endpoint, a message consumer, the CLI) only
/// parse their input and write the answers.
/// </summary>
/// <remarks>
/// Safe for concurrent callers. Appends to one stream are serialised (a striped lock around the
/// windower, which hands out views valid only until the stream's next append); different streams and
/// whole-window requests run concurrently and meet in the micro-batcher. Every version served has the
/// window geometry of the registry's current version when the pipeline opened (<see cref="Geometry"/>);
/// a rollout to a candidate with another geometry is refused before any step.
/// </remarks>
public sealed class ServingPipeline : IServingControl, IAsyncDisposable
{
    private const int LockStripes = 256;
    private readonly HarModelHost _models;
    private readonly StreamWindower _windower;
    private readonly ServingFanOut _observers;
    private readonly TimeProvider _time;
    private readonly object[] _locks;
    private readonly int _windowValues;
    private TrafficPlan _plan;
    private long _anonymousRequests;
    private int _disposed;

    private ServingPipeline(HarModelHost models, string version, ModelCard card, ServingOptions options, RolloutObservations observations, IServingObserver[] observers, ILogger logger, TimeProvider time)
    {
        _models = models;
        _time = time;
        Geometry = WindowGeometry.From(card);
        _windowValues = Geometry.WindowValues;
        _windower = new StreamWindower(card, new StreamWindowerOptions { MaxStreams = options.MaxStreams, IdleTimeout = options.StreamIdleTimeout }, time);
        Observations = observations;
        _observers = new ServingFanOut(observers, new ServingMetrics(options.MetricsRegistry), logger);
        _plan = TrafficPlan.Single(version);
        _locks = new object[LockStripes];
        for (var i = 0; i < _locks.Length; i++)
        {
            _locks[i] = new object();
        }
    }

    /// <summary>Gets the window geometry every served version has.</summary>
    public WindowGeometry Geometry { get; }

    /// <summary>Gets the number of values per frame (channels, e.g. 6 for <c>ax ay az gx gy gz</c>).</summary>
    public int Channels => Geometry.Channels.Count;

    /// <summary>Gets the number of frames per window.</summary>
    public int WindowLength => Geometry.WindowLength;

    /// <summary>Gets the number of values per window: <see cref="WindowLength"/> × <see cref="Channels"/>.</summary>
    public int WindowValues => _windowValues;

    /// <summary>Gets the traffic plan in force (published by the rollout controller; immutable).</summary>
    public TrafficPlan Plan => Volatile.Read(ref _plan);

    /// <summary>Gets the number of streams holding buffered frames.</summary>
    public int StreamCount => _windower.StreamCount;

    /// <summary>Gets the number of streams evicted so far (idle, or least recently used at the stream cap).</summary>
    public long EvictedStreams => _windower.EvictedStreams;

    /// <summary>Evicts the streams idle for longer than <see cref="ServingOptions.StreamIdleTimeout"/> now (a timer also does it).</summary>
    /// <returns>The number of streams evicted.</returns>
    public int EvictIdleStreams() => _windower.EvictIdle();

    IModelVersionHost IServingControl.Models => _models;

    internal RolloutObservations Observations { get; }

    RolloutObservations IServingControl.Observations => Observations;

    internal HarModelHost Models => _models;

    /// <summary>
    /// Opens a pipeline on a registry: verifies (SHA-256 against the registry record) and loads the
    /// registry's current version, warm, and serves it alone until a <see cref="RolloutController"/>
    /// publishes another plan.
    /// </summary>
    /// <param name="registry">The model registry.</param>
    /// <param name="options">The options, or <see langword="null"/> for the defaults.</param>
    /// <param name="drift">The per-device drift monitor that receives every served window with its prediction (input drift and physics checks per device, output drift pooled), or <see langword="null"/>.</param>
    /// <param name="observers">More observers of every sample and prediction (after the built-in metrics, rollout and drift observers).</param>
    /// <param name="loggerFactory">Where log messages go.</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> by default.</param>
    /// <returns>The pipeline; dispose it to unload the models.</returns>
    /// <exception cref="InvalidOperationException">The registry has no current version.</exception>
    /// <exception cref="ModelIntegrityException">The current version's file does not match its registry record.</exception>
    /// <exception cref="ModelCardException">The current version's model or card is invalid.</exception>
    public static ServingPipeline Open(ModelRegistry registry, ServingOptions? options = null, DeviceDriftMonitor? drift = null, IEnumerable<IServingObserver>? observers = null, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        options ??= new ServingOptions();
        options.Validate();
        var time = timeProvider ?? TimeProvider.System;
        var current = registry.CurrentVersion
            ?? throw new InvalidOperationException($"The registry '{registry.Root}' has no current version; register a model first (the first registered version becomes current).");
        var models = new HarModelHost(options.Model, loggerFactory, time);
        try
        {
            models.LoadAsync(registry.ReadVerified(current, "serve"), CancellationToken.None).AsTask().GetAwaiter().GetResult();
            var observations = new RolloutObservations(time.GetUtcNow());
            var all = new List<IServingObserver> { new RolloutObservationsObserver(observations) };
            if (drift is not null)
            {
                all.Add(new DriftObserver(drift));
            }

            all.AddRange(observers ?? []);
            var logger = (ILogger?)loggerFactory?.CreateLogger<ServingPipeline>() ?? NullLogger.Instance;
            return new ServingPipeline(models, current, models.GetCard(current), options, observations, [.. all], logger, time);
        }
        catch
        {
            models.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    /// <summary>
    /// Scores whole windows, one after the other in <paramref name="windows"/>; all windows of one call
    /// take the same route, and the observers see their frames and predictions.
    /// </summary>
    /// <param name="streamId">
    /// The routing key (stream or device id: sticky version assignment, per-device drift), or
    /// <see langword="null"/> or empty to route the call as an anonymous request of its own (the canary
    /// share then applies per request).
    /// </param>
    /// <param name="windows">n × <see cref="WindowValues"/> values in sensor units, interleaved; must not change until the task completes.</param>
    /// <param name="predictions">Receives the n predictions, in order; at least n entries.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when every window is scored (or, on failure, once none is still being read).</returns>
    /// <exception cref="ArgumentException">The input is not a positive whole number of windows, <paramref name="predictions"/> is too small, or a window holds NaN/infinity.</exception>
    /// <exception cref="InferenceQueueFullException">The served version's batching queue is full.</exception>
    public ValueTask PredictAsync(string? streamId, ReadOnlyMemory<float> windows, Memory<Prediction> predictions, CancellationToken cancellationToken = default)
    {
        var size = _windowValues;
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

        var device = string.IsNullOrEmpty(streamId) ? null : streamId;
        _observers.OnSamples(device, windows.Span);
        return ServeAsync(device, device ?? NextAnonymousKey(), windows, ReadOnlyMemory<long>.Empty, count, predictions, cancellationToken);
    }

    /// <summary>
    /// Appends interleaved frames to a stream and scores the windows they complete (routed by
    /// <paramref name="streamId"/>); the observers see the frames and the predictions.
    /// </summary>
    /// <param name="streamId">The stream (device, session …); a new id starts a new stream.</param>
    /// <param name="samples">Whole frames of <see cref="Channels"/> values each, in time order.</param>
    /// <param name="cancellationToken">Cancels the wait for the predictions (the frames are appended either way).</param>
    /// <returns>One entry per completed window, in stream order (empty when the frames complete none).</returns>
    /// <exception cref="ArgumentException">The stream id is empty, the input is not a whole number of frames, or it holds NaN/infinity.</exception>
    /// <exception cref="InvalidOperationException">The stream is new and the stream limit is reached.</exception>
    /// <exception cref="InferenceQueueFullException">The served version's batching queue is full.</exception>
    public async ValueTask<StreamPrediction[]> AppendAsync(string streamId, ReadOnlyMemory<float> samples, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        var size = _windowValues;
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

            _observers.OnSamples(streamId, samples.Span);
            if (count == 0)
            {
                return [];
            }

            var predictions = ArrayPool<Prediction>.Shared.Rent(count);
            try
            {
                await ServeAsync(streamId, streamId, copied.AsMemory(0, count * size), starts.AsMemory(0, count), count, predictions, cancellationToken).ConfigureAwait(false);
                var result = new StreamPrediction[count];
                for (var i = 0; i < count; i++)
                {
                    result[i] = new StreamPrediction(starts![i], predictions[i]);
                }

                return result;
            }
            finally
            {
                Array.Clear(predictions, 0, count);
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

    /// <summary>Drops a stream's buffered frames (e.g. when a device disconnects).</summary>
    /// <param name="streamId">The stream.</param>
    /// <returns><see langword="true"/> if the stream existed.</returns>
    public bool RemoveStream(string streamId)
    {
        ArgumentNullException.ThrowIfNull(streamId);
        lock (_locks[(uint)StringComparer.Ordinal.GetHashCode(streamId) % LockStripes])
        {
            return _windower.Remove(streamId);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _models.DisposeAsync().ConfigureAwait(false);
        }
    }

    void IServingControl.Publish(TrafficPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        Volatile.Write(ref _plan, plan);
    }

    private async ValueTask ServeAsync(string? streamId, string key, ReadOnlyMemory<float> windows, ReadOnlyMemory<long> starts, int count, Memory<Prediction> predictions, CancellationToken cancellationToken)
    {
        var decision = TrafficRouter.Route(Volatile.Read(ref _plan), key);
        var started = _time.GetTimestamp();
        var pending = ArrayPool<ValueTask<Prediction>>.Shared.Rent(count);
        try
        {
            await ScoreAsync(decision.Version, windows, count, pending, predictions, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is not ArgumentException)
        {
            // A client's invalid window (ArgumentException) is not the version's failure.
            _observers.OnError(streamId, decision.Version, PredictionRole.Served, count, _time.GetElapsedTime(started), ex);
            throw;
        }
        finally
        {
            Array.Clear(pending, 0, count);
            ArrayPool<ValueTask<Prediction>>.Shared.Return(pending);
        }

        var served = predictions[..count];
        _observers.OnPredictions(new ServedPredictions(streamId, decision.Version, PredictionRole.Served, WindowLength, Geometry.Stride, Channels, windows.Span, starts.Span, served.Span, default, _time.GetElapsedTime(started)));
        if (decision.ShadowVersion is { } shadow)
        {
            // A copy: the caller's buffers are reused as soon as this call returns.
            _ = RunShadowAsync(streamId, shadow, decision.IsCandidate ? PredictionRole.Mirror : PredictionRole.Shadow, windows.ToArray(), served.ToArray(), count);
        }
    }

    private async Task RunShadowAsync(string? streamId, string version, PredictionRole role, float[] windows, Prediction[] served, int count)
    {
        var started = _time.GetTimestamp();
        var pending = new ValueTask<Prediction>[count];
        var other = new Prediction[count];
        try
        {
            await ScoreAsync(version, windows, count, pending, other, CancellationToken.None).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // a shadow failure is an observation of the shadow, never an error of the served request
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _observers.OnError(streamId, version, role, count, _time.GetElapsedTime(started), ex);
            return;
        }

        _observers.OnPredictions(new ServedPredictions(streamId, version, role, WindowLength, Geometry.Stride, Channels, windows, default, other, served, _time.GetElapsedTime(started)));
    }

    /// <summary>
    /// Starts every window (so they meet in the micro-batcher), then awaits each one: even when one fails,
    /// every window is awaited before returning, so no batch still reads the caller's (possibly pooled) buffer.
    /// </summary>
    private async ValueTask ScoreAsync(string version, ReadOnlyMemory<float> windows, int count, ValueTask<Prediction>[] pending, Memory<Prediction> predictions, CancellationToken cancellationToken)
    {
        var size = _windowValues;
        var model = _models.GetModel(version);
        var started = 0;
        Exception? error = null;
        for (; started < count; started++)
        {
            try
            {
#pragma warning disable CA2012 // kept to start every window before the first await; each is awaited exactly once below
                pending[started] = model.PredictAsync(windows.Slice(started * size, size), cancellationToken);
#pragma warning restore CA2012
            }
#pragma warning disable CA1031 // rethrown below, once every other window is done
            catch (Exception ex)
#pragma warning restore CA1031
            {
                // An invalid window fails alone: the others are still scored.
#pragma warning disable CA2012 // awaited exactly once below
                pending[started] = ValueTask.FromException<Prediction>(ex);
#pragma warning restore CA2012
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
public readonly struct StreamPrediction
{
    internal StreamPrediction(long startFrame, Prediction prediction)
    {
        StartFrame = startFrame;
        Prediction = prediction;
    }

    /// <summary>Gets the stream-relative index of the window's first frame (0 = the stream's first frame).</summary>
    public long StartFrame { get; }

    /// <summary>Gets the served prediction.</summary>
    public Prediction Prediction { get; }
}
