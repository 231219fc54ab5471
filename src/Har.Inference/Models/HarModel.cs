using System.Diagnostics;
using System.Numerics.Tensors;
using Har.Inference.Metrics;
using Har.Inference.Models;
using Har.Inference.Windowing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace Har.Inference;

/// <summary>
/// One loaded, warmed-up model version: its validated <see cref="ModelCard"/>, one shared ONNX Runtime
/// session, pre-allocated pinned batch buffers with I/O bindings, and a micro-batcher. Safe for
/// concurrent callers; several versions can be resident side by side.
/// </summary>
/// <remarks>
/// Windows are passed in sensor units, interleaved (<c>ax ay az gx gy gz</c> per frame, time-major);
/// the model's normalization is fused into the copy into the batch tensor. The span-based
/// <see cref="Predict(ReadOnlySpan{float}, Memory{float}, Span{Prediction})"/> and the buffer-based
/// <c>PredictAsync</c> overloads allocate nothing in steady state; <c>PredictAsync</c> combines concurrent
/// callers' windows into one run.
/// </remarks>
public sealed partial class HarModel : IDisposable, IAsyncDisposable
{
    private readonly InferenceSession _session;
    private readonly MicroBatcher _batcher;
    private readonly WindowNormalizer _normalizer;
    private readonly IPredictionObserver[] _observers;
    private readonly InferenceMetrics? _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly string[] _labels;
    private readonly bool _logits;
    private readonly int _maxBatch;
    private readonly long _fileBytes;
    private readonly Timer? _watchdog;
    private readonly long _runLimit;
    private readonly string _runLimitReason;
    private int _disposed;

    private HarModel(string modelPath, HarModelOptions options, ILoggerFactory? loggerFactory, TimeProvider? timeProvider)
    {
        _logger = (ILogger?)loggerFactory?.CreateLogger<HarModel>() ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        ModelPath = Path.GetFullPath(modelPath);

        using (var sessionOptions = OrtRuntime.CreateSessionOptions(options))
        {
            try
            {
                _session = new InferenceSession(ModelPath, sessionOptions);
            }
            catch (OnnxRuntimeException ex)
            {
                throw new ModelCardException(null, $"'{modelPath}' is not a loadable ONNX model: {ex.Message}", ex);
            }
        }

        MicroBatcher? batcher = null;
        try
        {
            Card = ModelCard.FromSession(_session);
            _normalizer = WindowNormalizer.FromCard(Card);
            _labels = [.. Card.Labels];
            _logits = Card.Output == ModelOutputKind.Logits;
            // A graph with a fixed batch axis runs exactly that many windows every time (padded when fewer wait).
            _maxBatch = Card.FixedBatchSize > 0 ? Card.FixedBatchSize : options.MaxBatchSize;
            UncertaintyThreshold = options.UncertaintyThreshold;
            WindowValues = Card.InputFrames * Card.ChannelCount;
            _fileBytes = new FileInfo(ModelPath).Length;

            var (inputName, outputName) = (_session.InputNames[0], _session.OutputNames[0]);
            var (session, maxBatch, card) = (_session, _maxBatch, Card);
            batcher = new MicroBatcher(this, _normalizer, () => new BatchBuffer(session, inputName, outputName, maxBatch, card.InputFrames, card.ChannelCount, card.ClassCount, card.FixedBatchSize), options, _maxBatch, Card.ClassCount, _time);
            _batcher = batcher;

            // The watchdog: a run (the warm-up's included) that takes longer than RunTimeout is stopped, on the
            // monotonic clock whatever the TimeProvider, so a graph that never finishes cannot hold a worker, a
            // caller or the load itself for ever.
            _runLimit = (long)(options.RunTimeout.TotalSeconds * Stopwatch.Frequency);
            _runLimitReason = $"it ran longer than HarModelOptions.RunTimeout ({options.RunTimeout})";
            var period = TimeSpan.FromTicks(Math.Clamp(options.RunTimeout.Ticks / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerSecond));
            _watchdog = new Timer(static s => ((HarModel)s!).Watch(), this, period, period);

            // Warm-up: every buffer runs its smallest and largest batch once, so the first caller pays nothing. The
            // first run's windows are varied probes, and its outputs must be what the card says they are.
            var started = _time.GetTimestamp();
            var first = true;
            foreach (var buffer in batcher.Buffers)
            {
                if (first)
                {
                    OutputCheck.Probe(buffer, Card, outputName);
                    first = false;
                }

                buffer.InputSlot(0).Clear();
                buffer.Run(1);
                buffer.Run(_maxBatch);
            }

            var warmUp = _time.GetElapsedTime(started);
            if (_session.OutputNames.Count > 1)
            {
                Log.FirstOfSeveralOutputs(_logger, Card.ToString(), outputName, string.Join(", ", _session.OutputNames));
            }

            if (Card.FixedBatchSize > 0)
            {
                Log.FixedBatchAxis(_logger, Card.ToString(), inputName, Card.FixedBatchSize);
            }

            _observers = [.. options.Observers];
            if (options.EnableMetrics)
            {
                _metrics = new InferenceMetrics(options.MetricsRegistry ?? Prometheus.Metrics.DefaultRegistry, Card.ModelVersion, () => MemoryBytes);
                _metrics.SetMemory(MemoryBytes);
            }

            IsReady = true;
            Log.ModelLoaded(_logger, Card.ToString(), ModelPath, options.Workers, _maxBatch, warmUp.TotalMilliseconds);
        }
        catch (TimeoutException ex)
        {
            _watchdog?.Dispose();
            batcher?.Dispose();
            _session.Dispose();
            throw new ModelCardException(null, $"Model {Card} did not finish its warm-up: {ex.Message} Expected a graph that scores a batch of windows well within that.", ex);
        }
        catch
        {
            _watchdog?.Dispose();
            batcher?.Dispose();
            _session.Dispose();
            throw;
        }
    }

    /// <summary>The watchdog's tick: stops every run that has taken longer than the run timeout.</summary>
    private void Watch()
    {
        var now = Stopwatch.GetTimestamp();
        foreach (var buffer in _batcher.Buffers)
        {
            if (buffer.Terminate(now, _runLimit, _runLimitReason))
            {
                Log.RunStopped(_logger, Card.ToString(), _runLimitReason);
            }
        }
    }

    /// <summary>Gets the model's validated card.</summary>
    public ModelCard Card { get; }

    /// <summary>Gets the model's version (<see cref="ModelCard.ModelVersion"/>).</summary>
    public string Version => Card.ModelVersion;

    /// <summary>Gets the full path of the loaded ONNX file.</summary>
    public string ModelPath { get; }

    /// <summary>Gets the number of values in one input window: (<see cref="ModelCard.ContextFrames"/> + <see cref="ModelCard.WindowLength"/>) × channels.</summary>
    public int WindowValues { get; }

    /// <summary>Gets the confidence below which predictions are flagged uncertain.</summary>
    internal float UncertaintyThreshold { get; }

    /// <summary>Gets whether the model is loaded, warmed up and not disposed.</summary>
    public bool IsReady { get; private set; }

    /// <summary>Gets the bytes the model holds: the ONNX file plus the pinned batch buffers made so far.</summary>
    internal long MemoryBytes => _fileBytes + _batcher.PinnedBytes;

    /// <summary>Loads, validates and warms up a model.</summary>
    /// <param name="modelPath">The <c>.onnx</c> file.</param>
    /// <param name="options">The options, or <see langword="null"/> for the defaults.</param>
    /// <param name="loggerFactory">Where log messages go, or <see langword="null"/>.</param>
    /// <param name="timeProvider">The clock for latencies and batching waits, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <returns>The ready model; dispose it to release the session and buffers.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist, or the path is a folder.</exception>
    /// <exception cref="ModelCardException">The file is not a loadable ONNX model, or its card is missing, malformed or disagrees with the graph.</exception>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public static HarModel Load(string modelPath, HarModelOptions? options = null, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        ModelFile.EnsureExists(modelPath);

        options ??= new HarModelOptions();
        ValidateOptions(options);
        return new HarModel(modelPath, options, loggerFactory, timeProvider);
    }

    /// <summary>
    /// Scores windows on the calling thread without allocating: <paramref name="windows"/> holds whole windows
    /// one after the other (sensor units); probabilities go to <paramref name="probabilities"/> (K per window) and
    /// the predictions, whose <see cref="Prediction.Probabilities"/> slice that buffer, to <paramref name="predictions"/>.
    /// </summary>
    /// <param name="windows">n × <see cref="WindowValues"/> values.</param>
    /// <param name="probabilities">At least n × K values.</param>
    /// <param name="predictions">At least n entries.</param>
    /// <exception cref="ArgumentException">The input is not a whole number of windows, a destination is too small, or a window holds NaN/infinity.</exception>
    public void Predict(ReadOnlySpan<float> windows, Memory<float> probabilities, Span<Prediction> predictions)
    {
        ThrowIfNotWholeWindows(windows.Length, nameof(windows));
        PredictCore(new SpanWindows(windows, WindowValues), probabilities, predictions);
    }

    /// <summary>Scores the windows a <see cref="StreamWindower"/> append completed on the calling thread, without allocating (see the span overload).</summary>
    /// <param name="windows">The windows (their geometry must be the card's).</param>
    /// <param name="probabilities">At least <see cref="StreamWindows.Count"/> × K values.</param>
    /// <param name="predictions">At least <see cref="StreamWindows.Count"/> entries.</param>
    /// <exception cref="ArgumentException">The windows' geometry is not the card's, or a destination is too small.</exception>
    internal void Predict(StreamWindows windows, Memory<float> probabilities, Span<Prediction> predictions)
    {
        windows = Fit(windows);
        PredictCore(new ViewWindows(windows), probabilities, predictions);
    }

    /// <summary>Scores one window on the calling thread (allocates the result's probabilities).</summary>
    /// <param name="window">Exactly <see cref="WindowValues"/> values in sensor units.</param>
    /// <returns>The prediction.</returns>
    /// <exception cref="ArgumentException">The window has the wrong length or holds NaN/infinity.</exception>
    public Prediction Predict(ReadOnlySpan<float> window)
    {
        ThrowIfNotOneWindow(window.Length, nameof(window));
        Span<Prediction> one = new Prediction[1];
        PredictCore(new SpanWindows(window, WindowValues), new float[Card.ClassCount], one);
        return one[0];
    }

    /// <summary>Scores every window a <see cref="StreamWindower"/> append completed on the calling thread (allocates the results).</summary>
    /// <param name="windows">The windows.</param>
    /// <returns>One prediction per window, in order.</returns>
    public Prediction[] Predict(StreamWindows windows)
    {
        var predictions = new Prediction[windows.Count];
        Predict(windows, new float[windows.Count * Card.ClassCount], predictions);
        return predictions;
    }

    /// <summary>
    /// Scores one window through the micro-batcher, which combines concurrent callers' windows into one
    /// run (up to <see cref="HarModelOptions.MaxBatchSize"/>, waiting at most <see cref="HarModelOptions.MaxBatchWait"/>).
    /// The window is copied (normalized) into the batch before this method returns; the result's probabilities
    /// are allocated (the buffer-based overloads allocate nothing).
    /// </summary>
    /// <param name="window">Exactly <see cref="WindowValues"/> values in sensor units.</param>
    /// <param name="cancellationToken">Cancels the wait (a window already in a batch still runs, its result is discarded).</param>
    /// <returns>This window's prediction.</returns>
    /// <exception cref="ArgumentException">The window has the wrong length or holds NaN/infinity.</exception>
    /// <exception cref="InferenceQueueFullException">The queue already holds <see cref="HarModelOptions.QueueCapacity"/> windows.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public ValueTask<Prediction> PredictAsync(ReadOnlyMemory<float> window, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ThrowIfNotOneWindow(window.Length, nameof(window));
        var span = window.Span;
        if (!TensorPrimitives.IsFiniteAll(span))
        {
            throw new ArgumentException($"Window holds NaN or infinite values; model {Card} expects finite sensor values.", nameof(window));
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<Prediction>(cancellationToken);
        }

        var pending = _batcher.Enqueue(new SpanWindows(span, WindowValues), new float[Card.ClassCount], default);
        pending.Register(cancellationToken);
        return new ValueTask<Prediction>(pending, pending.Version);
    }

    /// <summary>
    /// Scores whole windows through the micro-batcher without allocating: before this method returns every
    /// window is normalized straight from <paramref name="windows"/> into a slot of a pinned batch tensor (one
    /// copy; the span may change as soon as the call returns); the task completes when all are scored.
    /// </summary>
    /// <param name="windows">n × <see cref="WindowValues"/> values in sensor units, interleaved.</param>
    /// <param name="probabilities">At least n × K values: window i's probabilities go to [i × K, (i + 1) × K).</param>
    /// <param name="predictions">At least n entries; each prediction's <see cref="Prediction.Probabilities"/> is its slice of <paramref name="probabilities"/>.</param>
    /// <param name="cancellationToken">Cancels the wait: the task completes at once, and the buffers are not written after that.</param>
    /// <returns>A task that completes when every window is scored; await it once.</returns>
    /// <exception cref="ArgumentException">The input is not a whole number of windows, a buffer is too small, or a window holds NaN/infinity; nothing was enqueued.</exception>
    /// <exception cref="InferenceQueueFullException">The queue cannot take all n windows (<see cref="HarModelOptions.QueueCapacity"/>); nothing was enqueued.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public ValueTask PredictAsync(ReadOnlySpan<float> windows, Memory<float> probabilities, Memory<Prediction> predictions, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ThrowIfNotWholeWindows(windows.Length, nameof(windows));
        var count = windows.Length / WindowValues;
        ThrowIfTooSmall(count, probabilities.Length, predictions.Length);
        if (!TensorPrimitives.IsFiniteAll(windows))
        {
            ThrowNotFinite(windows);
        }

        return EnqueueAll(new SpanWindows(windows, WindowValues), count, probabilities, predictions, cancellationToken);
    }

    /// <summary>
    /// Scores the windows a <see cref="StreamWindower"/> append completed through the micro-batcher without
    /// allocating: before this method returns every window is normalized straight from the view (the stream's
    /// buffer or the appended chunk) into a slot of a pinned batch tensor, so the views may be invalidated (by the
    /// next append) as soon as it returns. This is the one copy from a stream to the model.
    /// </summary>
    /// <param name="windows">
    /// The windows (their geometry must be the card's, or, from a windower keeping more context than this model reads,
    /// the card's window after a longer context: the model then reads each window's last <see cref="WindowValues"/>
    /// values); zero windows complete at once.
    /// </param>
    /// <param name="probabilities">At least <see cref="StreamWindows.Count"/> × K values: window i's go to [i × K, (i + 1) × K).</param>
    /// <param name="predictions">At least <see cref="StreamWindows.Count"/> entries; each prediction's probabilities are its slice of <paramref name="probabilities"/>.</param>
    /// <param name="cancellationToken">Cancels the wait: the task completes at once, and the buffers are not written after that.</param>
    /// <returns>A task that completes when every window is scored; await it once.</returns>
    /// <exception cref="ArgumentException">The windows' geometry is not the card's, or a buffer is too small; nothing was enqueued.</exception>
    /// <exception cref="InferenceQueueFullException">The queue cannot take all the windows; nothing was enqueued.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public ValueTask PredictAsync(StreamWindows windows, Memory<float> probabilities, Memory<Prediction> predictions, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        windows = Fit(windows);
        ThrowIfTooSmall(windows.Count, probabilities.Length, predictions.Length);
        return EnqueueAll(new ViewWindows(windows), windows.Count, probabilities, predictions, cancellationToken);
    }

    /// <summary>Returns <c>name@version</c>.</summary>
    /// <returns>The model's identity.</returns>
    public override string ToString() => Card.ToString();

    /// <summary>
    /// Stops the batcher (queued windows fail with <see cref="ObjectDisposedException"/>), stops the runs in progress
    /// rather than waiting for them (their windows fail with <see cref="TimeoutException"/>) and releases the session and buffers.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        IsReady = false;
        _watchdog?.Dispose();
        _shutdown.Cancel();

        // A run in progress is stopped rather than waited for: disposing (a host shutting down, a version unloaded)
        // must not hang on a graph that takes long.
        var now = Stopwatch.GetTimestamp();
        foreach (var buffer in _batcher.Buffers)
        {
            buffer.Terminate(now, 0, "the model is being disposed");
        }

        _batcher.Dispose();
        _session.Dispose();
        _shutdown.Dispose();
        _metrics?.Remove();
        Log.ModelDisposed(_logger, Card.ToString());
    }

    /// <inheritdoc cref="Dispose"/>
    /// <returns>A task that completes when the model is disposed.</returns>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
