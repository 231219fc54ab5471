using System.Numerics.Tensors;
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
/// Safe for concurrent callers. An append holds its stream (<see cref="StreamWindower.TryAppendAndHold"/>)
/// until its windows are scored and observed, so the model and the observers read the windows in place in
/// the stream's buffer; a second append to the same stream waits for the first. Different streams and
/// whole-window requests run concurrently and meet in the micro-batcher. Every version served has the
/// window geometry of the registry's current version when the pipeline opened (<see cref="Geometry"/>);
/// a rollout to a candidate with another geometry is refused before any step.
/// </remarks>
public sealed partial class ServingPipeline : IServingControl, IAsyncDisposable
{
    private readonly HarModelHost _models;
    private readonly StreamWindower _windower;
    private readonly ServingFanOut _observers;
    private readonly TimeProvider _time;
    private readonly int _windowValues;
    private readonly int _offPathBudget;
    private TrafficPlan _plan;
    private int _offPathWindows;
    private long _anonymousRequests;
    private int _disposed;

    private ServingPipeline(HarModelHost models, string version, ModelCard card, ServingOptions options, RolloutObservations observations, FeedbackStore feedback, IServingObserver[] observers, ILogger logger, TimeProvider time)
    {
        Feedback = feedback;
        _models = models;
        _time = time;
        Geometry = WindowGeometry.From(card, options.ContextFrames ?? card.ContextFrames);
        _windowValues = Geometry.WindowValues;
        _offPathBudget = Math.Max(1, options.Model.QueueCapacity / OffPathQueueShare);
        _windower = new StreamWindower(card, new StreamWindowerOptions { MaxStreams = options.MaxStreams, IdleTimeout = options.StreamIdleTimeout, ContextFrames = Geometry.ContextFrames }, time);
        Observations = observations;
        _observers = new ServingFanOut(observers, new ServingMetrics(options.MetricsRegistry), logger);
        _plan = TrafficPlan.Single(version);
        _calls = new StreamCallPool(this);
    }

    /// <summary>
    /// Shadow and mirror runs may hold at most 1/<see cref="OffPathQueueShare"/> of a version's queue capacity
    /// (<see cref="HarModelOptions.QueueCapacity"/>) in windows at once; beyond it they are shed, so they never fill
    /// the queue the served requests need.
    /// </summary>
    internal const int OffPathQueueShare = 4;

    /// <summary>Gets the window geometry every served version has.</summary>
    public WindowGeometry Geometry { get; }

    /// <summary>Gets the number of values per frame (channels, e.g. 6 for <c>ax ay az gx gy gz</c>).</summary>
    internal int Channels => Geometry.Channels.Count;

    /// <summary>Gets the number of frames per window.</summary>
    internal int WindowLength => Geometry.WindowLength;

    /// <summary>Gets the number of values per input window: (context frames + <see cref="WindowLength"/>) × <see cref="Channels"/>.</summary>
    internal int WindowValues => _windowValues;

    /// <summary>Gets the traffic plan in force (published by the rollout controller; immutable).</summary>
    internal TrafficPlan Plan => Volatile.Read(ref _plan);

    /// <inheritdoc />
    TrafficPlan IServingControl.Plan => Plan;

    /// <summary>Describes the traffic plan in force: the stable version, and the candidate or shadow with its share.</summary>
    /// <returns>A line such as <c>1.0.0 90% / 1.1.0 10%</c>.</returns>
    public override string ToString() => Plan.ToString();

    /// <summary>Gets the number of streams holding buffered frames.</summary>
    public int StreamCount => _windower.StreamCount;

    /// <summary>Gets the number of streams evicted so far (idle, or least recently used at the stream cap).</summary>
    public long EvictedStreams => _windower.EvictedStreams;

    /// <summary>Evicts the streams idle for longer than <see cref="ServingOptions.StreamIdleTimeout"/> now (a timer also does it).</summary>
    /// <returns>The number of streams evicted.</returns>
    public int EvictIdleStreams() => _windower.EvictIdle();

    /// <summary>Gets the ground-truth feedback store: report true activities to it; the rollout's accuracy gate reads it.</summary>
    public FeedbackStore Feedback { get; }

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
    /// <exception cref="ArgumentException"><see cref="ServingOptions.ContextFrames"/> is less than the current version reads, or <paramref name="drift"/>'s profile reads other channels than the current version is served (the same channels in another order are fed by name).</exception>
    public static ServingPipeline Open(ModelRegistry registry, ServingOptions? options = null, DeviceDriftMonitor? drift = null, IEnumerable<IServingObserver>? observers = null, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null) =>
        Open(registry, options, drift, observers, loggerFactory, timeProvider, shared: null);

    /// <summary>As the public <c>Open</c>; versions whose bytes the host already has loaded (<paramref name="shared"/>) are served from that instance.</summary>
    internal static ServingPipeline Open(ModelRegistry registry, ServingOptions? options, DeviceDriftMonitor? drift, IEnumerable<IServingObserver>? observers, ILoggerFactory? loggerFactory, TimeProvider? timeProvider, ISharedModels? shared)
    {
        ArgumentNullException.ThrowIfNull(registry);
        options ??= new ServingOptions();
        options.Validate();
        var time = timeProvider ?? TimeProvider.System;
        var current = registry.CurrentVersion
            ?? throw new InvalidOperationException($"The registry '{registry.Root}' has no current version; register a model first (the first registered version becomes current).");
        var models = new HarModelHost(options.Model, loggerFactory, time, shared);
        try
        {
            models.LoadAsync(registry.ReadVerified(current, "serve"), CancellationToken.None).AsTask().GetAwaiter().GetResult();
            var observations = new RolloutObservations(time.GetUtcNow());
            var card = models.GetCard(current);
            if (options.ContextFrames < card.ContextFrames)
            {
                throw new ArgumentException($"ServingOptions.ContextFrames is {options.ContextFrames}, but the current version {current} reads {card.ContextFrames} frames before each window; expected at least {card.ContextFrames} (or null: the current version's).", nameof(options));
            }

            var feedback = new FeedbackStore(card.Labels, card.WindowLength, card.SampleRateHz, v => models.IsLoaded(v) ? models.GetCard(v).Labels : null, time, new FeedbackMetrics(options.MetricsRegistry));
            var rollout = new RolloutObservationsObserver(observations, new ClassOrder(v => models.IsLoaded(v) ? models.GetCard(v).Labels : null));
            var all = new List<IServingObserver> { rollout, new FeedbackObserver(feedback) };
            if (drift is not null)
            {
                var (channelMap, problem) = DriftObserver.ChannelMap(drift.Profile.ChannelNames, card.Channels, current);
                if (problem is not null)
                {
                    throw new ArgumentException(problem, nameof(drift));
                }

                all.Add(new DriftObserver(drift, v => models.IsLoaded(v) ? models.GetCard(v).Labels : null, channelMap));
            }

            all.AddRange(observers ?? []);
            var logger = (ILogger?)loggerFactory?.CreateLogger<ServingPipeline>() ?? NullLogger.Instance;
            var pipeline = new ServingPipeline(models, current, card, options, observations, feedback, [.. all], logger, time);
            rollout.Plan = () => pipeline.Plan;
            return pipeline;
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
    /// <param name="windows">n × <see cref="WindowGeometry.WindowValues"/> (of <see cref="Geometry"/>) values in sensor units, interleaved; must not change until the task completes.</param>
    /// <param name="predictions">Receives the n predictions, in order; at least n entries.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when every window is scored (or, on failure, once none is still being read).</returns>
    /// <exception cref="ArgumentException">The input is not a positive whole number of windows, <paramref name="predictions"/> is too small, or a window holds NaN/infinity.</exception>
    /// <exception cref="InferenceQueueFullException">The served version's batching queue is full.</exception>
    /// <exception cref="ObjectDisposedException">The pipeline was disposed.</exception>
    public ValueTask PredictAsync(string? streamId, ReadOnlyMemory<float> windows, Memory<Prediction> predictions, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var size = _windowValues;
        if (windows.Length == 0 || windows.Length % size != 0)
        {
            throw new ArgumentException(
                $"Input holds {windows.Length} values; expected a positive multiple of {size} ({Geometry}: {Geometry.ContextFrames + WindowLength} frames per window × {Channels} channels, interleaved).",
                nameof(windows));
        }

        var count = windows.Length / size;
        if (predictions.Length < count)
        {
            throw new ArgumentException($"The predictions buffer holds {predictions.Length} entries; {count} windows need {count}.", nameof(predictions));
        }

        var device = string.IsNullOrEmpty(streamId) ? null : streamId;
        _observers.OnSamples(device, windows.Span);
        return ServeAsync(device, device ?? NextAnonymousKey(), windows, count, predictions, cancellationToken);
    }

    /// <summary>
    /// Appends interleaved frames to a stream and scores the windows they complete (routed by
    /// <paramref name="streamId"/>); the observers see the frames and the predictions. Allocates the result
    /// (one array of predictions and one of probabilities per call that completes windows); the overload with
    /// caller buffers allocates nothing.
    /// </summary>
    /// <param name="streamId">The stream (device, session …); a new id starts a new stream.</param>
    /// <param name="samples">Whole frames of <see cref="Geometry"/>.<see cref="WindowGeometry.Channels"/> values each, in time order; must not change until the task completes.</param>
    /// <param name="cancellationToken">Cancels the wait for the predictions (the frames are appended either way).</param>
    /// <returns>One entry per completed window, in stream order (empty when the frames complete none).</returns>
    /// <exception cref="ArgumentException">The stream id is empty, the input is not a whole number of frames, or it holds NaN/infinity.</exception>
    /// <exception cref="InvalidOperationException">The stream is new and the stream limit is reached.</exception>
    /// <exception cref="InferenceQueueFullException">The served version's batching queue is full; the frames were not appended (retry them).</exception>
    /// <exception cref="ObjectDisposedException">The pipeline was disposed.</exception>
    public ValueTask<StreamPrediction[]> AppendAsync(string streamId, ReadOnlyMemory<float> samples, CancellationToken cancellationToken = default)
    {
        var call = StartAppend(streamId, samples, default, default, allocate: true, cancellationToken);
        return new ValueTask<StreamPrediction[]>(call, call.Version);
    }

    /// <summary>
    /// Appends interleaved frames to a stream and scores the windows they complete, writing the results to the
    /// caller's buffers: nothing is allocated per window or per call in steady state. The windows reach the
    /// model as views of the stream's buffer (normalized straight into the batch tensor), and the observers
    /// see the same views: a sample is copied twice on its way, into the stream buffer and into the tensor.
    /// </summary>
    /// <param name="streamId">The stream (device, session …); a new id starts a new stream.</param>
    /// <param name="samples">Whole frames of <see cref="Geometry"/>.<see cref="WindowGeometry.Channels"/> values each, in time order; must not change until the task completes.</param>
    /// <param name="predictions">Receives one entry per completed window, in stream order; room for ⌊frames / stride⌋ + 1 entries is always enough.</param>
    /// <param name="probabilities">Receives the class probabilities, K per window (K = the served version's class count); each prediction's <see cref="Prediction.Probabilities"/> is its slice.</param>
    /// <param name="cancellationToken">Cancels the wait for the predictions (the frames are appended either way).</param>
    /// <returns>The number of windows completed and scored (0 when the frames complete none).</returns>
    /// <exception cref="ArgumentException">The stream id is empty, the input is not a whole number of frames or holds NaN/infinity, or a buffer is too small for the windows completed (the frames were then not appended).</exception>
    /// <exception cref="InvalidOperationException">The stream is new and the stream limit is reached.</exception>
    /// <exception cref="InferenceQueueFullException">The served version's batching queue is full; the frames were not appended (retry them).</exception>
    /// <exception cref="ObjectDisposedException">The pipeline was disposed.</exception>
    public ValueTask<int> AppendAsync(string streamId, ReadOnlyMemory<float> samples, Memory<StreamPrediction> predictions, Memory<float> probabilities, CancellationToken cancellationToken = default)
    {
        var call = StartAppend(streamId, samples, predictions, probabilities, allocate: false, cancellationToken);
        return new ValueTask<int>(call, call.Version);
    }

    /// <summary>
    /// Drops a stream's buffered frames and frees its place in the stream table (<see cref="ServingOptions.MaxStreams"/>),
    /// e.g. when a device disconnects or a host gives its place to another client; the stream's next append starts a new
    /// stream, whose first window needs a whole window of new frames.
    /// </summary>
    /// <param name="streamId">The stream.</param>
    /// <returns><see langword="true"/> if the stream existed.</returns>
    public bool RemoveStream(string streamId)
    {
        ArgumentNullException.ThrowIfNull(streamId);
        return _windower.Remove(streamId);
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

    /// <summary>
    /// Whole windows: finite ones go to the version's batcher in one call (normalized straight from the caller's
    /// memory into the batch tensor: one copy); a call with a NaN/infinite window scores the others one by one and
    /// then throws, so an invalid window fails alone.
    /// </summary>
    private async ValueTask ServeAsync(string? streamId, string key, ReadOnlyMemory<float> windows, int count, Memory<Prediction> predictions, CancellationToken cancellationToken)
    {
        var decision = TrafficRouter.Route(Volatile.Read(ref _plan), key);
        var started = _time.GetTimestamp();
        var served = predictions[..count];
        try
        {
            var model = _models.GetModel(decision.Version);
            var input = WindowsFor(model, windows, count);

            // Every value of the caller's windows is checked, the pipeline's context frames included: a version that
            // reads less context would otherwise accept a window that the candidate, a mirror or the drift monitor refuses.
            if (TensorPrimitives.IsFiniteAll(windows.Span[..(count * _windowValues)]))
            {
                var scoring = model.PredictAsync(input.Span, new float[count * model.Card.ClassCount], served, cancellationToken);
                await scoring.ConfigureAwait(false);
            }
            else
            {
                await ScoreEachAsync(model, input, windows, _windowValues, Geometry.ContextFrames, count, served, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is not ArgumentException)
        {
            // A client's invalid window (ArgumentException) is not the version's failure.
            _observers.OnError(streamId, decision.Version, PredictionRole.Served, count, _time.GetElapsedTime(started), ex);
            throw;
        }

        _observers.OnPredictions(new ServedPredictions(streamId, decision.Version, PredictionRole.Served, Geometry, windows.Span, default, served.Span, default, _time.GetElapsedTime(started), SumServiceTime(served.Span)));
        if (decision.ShadowVersion is { } shadow)
        {
            // A copy: the caller's buffers are reused as soon as this call returns.
            StartShadow(streamId, shadow, decision.IsCandidate, windows.ToArray(), served.ToArray(), []);
        }
    }

    /// <summary>
    /// What <paramref name="model"/> reads of <paramref name="count"/> whole windows of <see cref="Geometry"/>: the same
    /// memory when it reads the pipeline's context, otherwise a copy of each window's last (context + window)
    /// frames (a version that reads less context than the pipeline keeps, e.g. a champion beside a context candidate).
    /// </summary>
    private ReadOnlyMemory<float> WindowsFor(HarModel model, ReadOnlyMemory<float> windows, int count)
    {
        return model.WindowValues == _windowValues ? windows : WindowGeometry.LastOfEach(windows.Span[..(count * _windowValues)], _windowValues, model.WindowValues);
    }

    /// <summary>Runs a shadow (or mirror) version on copies of windows another version served, off the caller's path.</summary>
    /// <remarks>
    /// The start frames go with the copies: feedback labels join the shadow or mirror run's predictions to the same windows.
    /// Off-path runs are best effort: past the off-path budget (<see cref="OffPathQueueShare"/>), or when the version's
    /// queue is full, the copy is shed (counted in <c>har_serving_shed_windows_total</c>), neither an error of the
    /// version nor an observation, so a loaded service compares the versions on fewer windows instead of failing the
    /// candidate for the load its copies add.
    /// </remarks>
    private void StartShadow(string? streamId, string version, bool servedByCandidate, float[] windows, Prediction[] served, long[] starts)
    {
        var role = servedByCandidate ? PredictionRole.Mirror : PredictionRole.Shadow;
        if (Interlocked.Add(ref _offPathWindows, served.Length) > _offPathBudget)
        {
            Interlocked.Add(ref _offPathWindows, -served.Length);
            _observers.OnShed(version, role, served.Length);
            return;
        }

        _ = RunShadowAsync(streamId, version, role, windows, served, starts);
    }

    private async Task RunShadowAsync(string? streamId, string version, PredictionRole role, float[] windows, Prediction[] served, long[] starts)
    {
        var count = served.Length;
        var started = _time.GetTimestamp();
        var other = new Prediction[count];
        try
        {
            var model = _models.GetModel(version);
            await model.PredictAsync(WindowsFor(model, windows, count).Span, new float[count * model.Card.ClassCount], other, CancellationToken.None).ConfigureAwait(false);
        }
        catch (InferenceQueueFullException)
        {
            _observers.OnShed(version, role, count);
            return;
        }
#pragma warning disable CA1031 // a shadow failure is an observation of the shadow, never an error of the served request
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _observers.OnError(streamId, version, role, count, _time.GetElapsedTime(started), ex);
            return;
        }
        finally
        {
            Interlocked.Add(ref _offPathWindows, -count);
        }

        _observers.OnPredictions(new ServedPredictions(streamId, version, role, Geometry, windows, starts, other, served, _time.GetElapsedTime(started), SumServiceTime(other)));
    }

    /// <summary>
    /// Starts every window (so they meet in the micro-batcher), then awaits each one: even when one fails,
    /// every window is awaited before returning, so no batch still reads the caller's buffer.
    /// </summary>
    private static async ValueTask ScoreEachAsync(HarModel model, ReadOnlyMemory<float> windows, ReadOnlyMemory<float> callerWindows, int callerWindowValues, int contextFrames, int count, Memory<Prediction> predictions, CancellationToken cancellationToken)
    {
        var size = model.WindowValues;
        var pending = new ValueTask<Prediction>[count];
        var started = 0;
        Exception? error = null;
        for (; started < count; started++)
        {
            try
            {
                if (!TensorPrimitives.IsFiniteAll(callerWindows.Span.Slice(started * callerWindowValues, callerWindowValues)))
                {
                    throw new ArgumentException(
                        $"Window {started} holds NaN or infinite values; expected finite sensor values in every frame, the {contextFrames} frames of context before the window (ServingOptions.ContextFrames) included.",
                        nameof(windows));
                }

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

    private static TimeSpan SumServiceTime(ReadOnlySpan<Prediction> predictions)
    {
        var total = TimeSpan.Zero;
        foreach (ref readonly var p in predictions)
        {
            total += p.ServiceTime;
        }

        return total;
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
