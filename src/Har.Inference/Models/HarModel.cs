using System.Diagnostics.CodeAnalysis;
using System.Numerics.Tensors;
using System.Threading.Channels;
using Har.Inference.Metrics;
using Har.Inference.Models;
using Har.Inference.Predictions;
using Har.Inference.Windowing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace Har.Inference;

/// <summary>
/// One loaded, warmed-up model version: its validated <see cref="ModelCard"/>, one shared ONNX Runtime
/// session, pre-allocated pinned buffers with I/O bindings per worker, and a micro-batcher. Safe for
/// concurrent callers; several versions can be resident side by side.
/// </summary>
/// <remarks>
/// Windows are passed in sensor units, interleaved (<c>ax ay az gx gy gz</c> per frame, time-major);
/// the model's normalization is fused into the copy into the batch tensor. The span-based
/// <see cref="Predict(ReadOnlySpan{float}, Memory{float}, Span{Prediction})"/> allocates nothing in
/// steady state; <see cref="PredictAsync"/> combines concurrent callers' windows into one run.
/// </remarks>
public sealed class HarModel : IDisposable, IAsyncDisposable
{
    private readonly InferenceSession _session;
    /// <summary>The shortest part a batch is split into when other workers are idle.</summary>
    private const int MinSplitWindows = 8;

    private readonly InferenceWorker[] _workers;
    private readonly Stack<InferenceWorker> _free;
    private readonly SemaphoreSlim _available;
    private readonly WindowNormalizer _normalizer;
    private readonly Channel<BatchRequest> _queue;
    private readonly Task[] _batchLoops;
    private readonly IPredictionObserver[] _observers;
    private readonly InferenceMetrics? _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly string[] _labels;
    private readonly bool _logits;
    private readonly int _maxBatch;
    private readonly TimeSpan _maxWait;
    private readonly int _queueCapacity;
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

        var workers = new List<InferenceWorker>();
        try
        {
            Card = ModelCard.FromSession(_session);
            _normalizer = WindowNormalizer.FromCard(Card);
            _labels = [.. Card.Labels];
            _logits = Card.Output == ModelOutputKind.Logits;
            _maxBatch = options.MaxBatchSize;
            _maxWait = options.MaxBatchWait;
            _queueCapacity = options.QueueCapacity;
            UncertaintyThreshold = options.UncertaintyThreshold;
            WindowValues = Card.WindowLength * Card.ChannelCount;

            var inputName = _session.InputNames[0];
            var outputName = _session.OutputNames[0];
            for (var i = 0; i < options.Workers; i++)
            {
                workers.Add(new InferenceWorker(_session, inputName, outputName, _maxBatch, Card.WindowLength, Card.ChannelCount, Card.ClassCount));
            }

            // Warm-up: every worker runs its smallest and largest batch once, so the first caller pays nothing.
            var started = _time.GetTimestamp();
            foreach (var w in workers)
            {
                w.InputSlot(0).Clear();
                w.Run(1);
                w.Run(_maxBatch);
            }

            var warmUp = _time.GetElapsedTime(started);
            MemoryBytes = new FileInfo(ModelPath).Length + workers.Sum(w => w.PinnedBytes);
            _workers = [.. workers];
            _free = new Stack<InferenceWorker>(_workers);
            _available = new SemaphoreSlim(_workers.Length, _workers.Length);
            _observers = [.. options.Observers];
            if (options.EnableMetrics)
            {
                _metrics = new InferenceMetrics(options.MetricsRegistry ?? Prometheus.Metrics.DefaultRegistry, Card.ModelVersion);
                _metrics.SetMemory(MemoryBytes);
            }

            _queue = Channel.CreateBounded<BatchRequest>(new BoundedChannelOptions(_queueCapacity)
            {
                FullMode = BoundedChannelFullMode.Wait,
                SingleReader = false,
                SingleWriter = false,
            });
            _batchLoops = new Task[_workers.Length];
            for (var i = 0; i < _batchLoops.Length; i++)
            {
                _batchLoops[i] = Task.Run(BatchLoopAsync);
            }

            IsReady = true;
            Log.ModelLoaded(_logger, Card.ToString(), ModelPath, _workers.Length, _maxBatch, warmUp.TotalMilliseconds);
        }
        catch
        {
            foreach (var w in workers)
            {
                w.Dispose();
            }

            _session.Dispose();
            throw;
        }
    }

    /// <summary>Gets the model's validated card.</summary>
    public ModelCard Card { get; }

    /// <summary>Gets the model's version (<see cref="ModelCard.ModelVersion"/>).</summary>
    public string Version => Card.ModelVersion;

    /// <summary>Gets the full path of the loaded ONNX file.</summary>
    public string ModelPath { get; }

    /// <summary>Gets the number of values in one window: window length × channels.</summary>
    public int WindowValues { get; }

    /// <summary>Gets the confidence below which predictions are flagged uncertain.</summary>
    public float UncertaintyThreshold { get; }

    /// <summary>Gets whether the model is loaded, warmed up and not disposed.</summary>
    public bool IsReady { get; private set; }

    /// <summary>Gets the bytes the model holds: the ONNX file plus the pinned input/output buffers.</summary>
    public long MemoryBytes { get; }

    /// <summary>Loads, validates and warms up a model.</summary>
    /// <param name="modelPath">The <c>.onnx</c> file.</param>
    /// <param name="options">The options, or <see langword="null"/> for the defaults.</param>
    /// <param name="loggerFactory">Where log messages go, or <see langword="null"/>.</param>
    /// <param name="timeProvider">The clock for latencies and batching waits, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <returns>The ready model; dispose it to release the session and buffers.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ModelCardException">The file is not a loadable ONNX model, or its card is missing, malformed or disagrees with the graph.</exception>
    public static HarModel Load(string modelPath, HarModelOptions? options = null, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        if (!File.Exists(modelPath))
        {
            throw new FileNotFoundException($"Model file '{modelPath}' does not exist.", modelPath);
        }

        options ??= new HarModelOptions();
        ValidateOptions(options);
        return new HarModel(modelPath, options, loggerFactory, timeProvider);
    }

    /// <summary>
    /// Scores windows without allocating: <paramref name="windows"/> holds whole windows one after the
    /// other (sensor units); probabilities go to <paramref name="probabilities"/> (K per window) and
    /// the predictions, whose <see cref="Prediction.Probabilities"/> slice that buffer, to <paramref name="predictions"/>.
    /// </summary>
    /// <param name="windows">n × <see cref="WindowValues"/> values.</param>
    /// <param name="probabilities">At least n × K values.</param>
    /// <param name="predictions">At least n entries.</param>
    /// <exception cref="ArgumentException">The input is not a whole number of windows, a destination is too small, or a window holds NaN/infinity.</exception>
    public void Predict(ReadOnlySpan<float> windows, Memory<float> probabilities, Span<Prediction> predictions)
    {
        if (windows.Length % WindowValues != 0)
        {
            throw new ArgumentException(
                $"Input holds {windows.Length} values, which is not a whole number of windows; expected a multiple of {WindowValues} ({Card.WindowLength} frames × {Card.ChannelCount} channels {string.Join(' ', Card.Channels)}).",
                nameof(windows));
        }

        PredictCore(new WindowSource(windows, WindowValues), probabilities, predictions);
    }

    /// <summary>Scores the windows a <see cref="StreamWindower"/> append completed, without allocating (see the span overload).</summary>
    /// <param name="windows">The windows (their geometry must be the card's).</param>
    /// <param name="probabilities">At least <see cref="StreamWindows.Count"/> × K values.</param>
    /// <param name="predictions">At least <see cref="StreamWindows.Count"/> entries.</param>
    public void Predict(StreamWindows windows, Memory<float> probabilities, Span<Prediction> predictions)
    {
        if (windows.WindowValues != WindowValues && windows.Count > 0)
        {
            throw new ArgumentException($"Windows of {windows.WindowValues} values do not fit model {Card}; expected {WindowValues} ({Card.WindowLength} frames × {Card.ChannelCount} channels).", nameof(windows));
        }

        PredictCore(new WindowSource(windows), probabilities, predictions);
    }

    /// <summary>Scores one window (allocates the result's probabilities).</summary>
    /// <param name="window">Exactly <see cref="WindowValues"/> values in sensor units.</param>
    /// <returns>The prediction.</returns>
    public Prediction Predict(ReadOnlySpan<float> window)
    {
        if (window.Length != WindowValues)
        {
            throw new ArgumentException($"Window holds {window.Length} values; model {Card} expects {WindowValues} ({Card.WindowLength} frames × {Card.ChannelCount} channels).", nameof(window));
        }

        Span<Prediction> one = new Prediction[1];
        PredictCore(new WindowSource(window, WindowValues), new float[Card.ClassCount], one);
        return one[0];
    }

    /// <summary>Scores every window a <see cref="StreamWindower"/> append completed (allocates the results).</summary>
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
    /// </summary>
    /// <param name="window">Exactly <see cref="WindowValues"/> values in sensor units; must not change until the task completes.</param>
    /// <param name="cancellationToken">Cancels the wait (a window already in a running batch still runs, its result is discarded).</param>
    /// <returns>This window's prediction.</returns>
    /// <exception cref="ArgumentException">The window has the wrong length or holds NaN/infinity.</exception>
    /// <exception cref="InferenceQueueFullException">The queue already holds <see cref="HarModelOptions.QueueCapacity"/> windows.</exception>
    public ValueTask<Prediction> PredictAsync(ReadOnlyMemory<float> window, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (window.Length != WindowValues)
        {
            throw new ArgumentException($"Window holds {window.Length} values; model {Card} expects {WindowValues} ({Card.WindowLength} frames × {Card.ChannelCount} channels).", nameof(window));
        }

        if (!TensorPrimitives.IsFiniteAll(window.Span))
        {
            throw new ArgumentException($"Window holds NaN or infinite values; model {Card} expects finite sensor values.", nameof(window));
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<Prediction>(cancellationToken);
        }

        var request = new BatchRequest(window, _time.GetTimestamp());
        if (!_queue.Writer.TryWrite(request))
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            throw new InferenceQueueFullException(
                $"Model {Card}: the batching queue is full ({_queueCapacity} windows waiting, HarModelOptions.QueueCapacity); retry later or shed load.");
        }

        if (cancellationToken.CanBeCanceled)
        {
            request.Registration = cancellationToken.Register(static (s, ct) => ((BatchRequest)s!).TrySetCanceled(ct), request);
        }

        return new ValueTask<Prediction>(request.Task);
    }

    /// <summary>Returns <c>name@version</c>.</summary>
    /// <returns>The model's identity.</returns>
    public override string ToString() => Card.ToString();

    /// <summary>Stops the batcher (queued windows fail with <see cref="ObjectDisposedException"/>), waits for running batches and releases the session and buffers.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        IsReady = false;
        _queue.Writer.TryComplete();
        _shutdown.Cancel();
        try
        {
            Task.WaitAll(_batchLoops);
        }
        catch (AggregateException)
        {
            // The loops end with cancellation; nothing to report.
        }

        while (_queue.Reader.TryRead(out var pending))
        {
            pending.TrySetException(new ObjectDisposedException(nameof(HarModel), $"Model {Card} was disposed before the window ran."));
        }

        for (var i = 0; i < _workers.Length; i++)
        {
            _available.Wait();
        }

        foreach (var w in _workers)
        {
            w.Dispose();
        }

        _session.Dispose();
        _available.Dispose();
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

    internal static void ValidateOptions(HarModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var result = new HarModelOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new ArgumentException($"Invalid HarModelOptions: {result.FailureMessage}", nameof(options));
        }
    }

    private void PredictCore(WindowSource windows, Memory<float> probabilities, Span<Prediction> predictions)
    {
        var n = windows.Count;
        var k = Card.ClassCount;
        if (probabilities.Length < n * k)
        {
            throw new ArgumentException($"Probabilities buffer holds {probabilities.Length} values; {n} windows × {k} classes need {n * k}.", nameof(probabilities));
        }

        if (predictions.Length < n)
        {
            throw new ArgumentException($"Predictions buffer holds {predictions.Length} entries; expected at least {n} (one per window).", nameof(predictions));
        }

        if (n == 0)
        {
            return;
        }

        var worker = Rent();
        try
        {
            for (var offset = 0; offset < n; offset += _maxBatch)
            {
                var batch = Math.Min(_maxBatch, n - offset);
                var started = _time.GetTimestamp();
                for (var i = 0; i < batch; i++)
                {
                    Fill(worker, i, windows[offset + i], offset + i, windows.IsChecked);
                }

                var output = Run(worker, batch);
                var latency = _time.GetElapsedTime(started);
                var batchPredictions = predictions.Slice(offset, batch);
                for (var i = 0; i < batch; i++)
                {
                    var memory = probabilities.Slice((offset + i) * k, k);
                    batchPredictions[i] = Score(output.Slice(i * k, k), memory, latency);
                }

                Notify(batchPredictions);
            }
        }
        finally
        {
            Return(worker);
        }
    }

    private void Fill(InferenceWorker worker, int slot, ReadOnlySpan<float> window, int windowIndex, bool alreadyChecked)
    {
        if (alreadyChecked)
        {
            // StreamWindower checked every frame as it was appended.
            _normalizer.NormalizeUnchecked(window, worker.InputSlot(slot));
        }
        else if (!_normalizer.Normalize(window, worker.InputSlot(slot)))
        {
            throw new ArgumentException($"Window {windowIndex} holds NaN or infinite values; model {Card} expects finite sensor values.");
        }
    }

    private ReadOnlySpan<float> Run(InferenceWorker worker, int batch)
    {
        try
        {
            _metrics?.ObserveRun(batch);
            return worker.Run(batch);
        }
        catch (OnnxRuntimeException ex)
        {
            ReportFailure(batch, ex);
            throw;
        }
    }

    // Kept out of Run: a lambda capturing Run's parameters would allocate its closure on every call.
    private void ReportFailure(int batch, Exception error)
    {
        Log.RunFailed(_logger, Card.ToString(), batch, error);
        _metrics?.OnError(Card, batch, error);
        foreach (var o in _observers)
        {
            try
            {
                o.OnError(Card, batch, error);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Log.ObserverFailed(_logger, o.GetType().Name, Card.ToString(), ex);
            }
        }
    }

    private Prediction Score(ReadOnlySpan<float> output, Memory<float> probabilities, TimeSpan latency)
    {
        var p = probabilities.Span;
        if (_logits)
        {
            ProbabilityMath.StableSoftmax(output, p);
        }
        else
        {
            output.CopyTo(p);
        }

        var index = TensorPrimitives.IndexOfMax(p);
        var confidence = p[index];
        return new Prediction(index, _labels[index], confidence, ProbabilityMath.Entropy(p), confidence < UncertaintyThreshold, probabilities, latency, Card.ModelVersion);
    }

    private void Notify(ReadOnlySpan<Prediction> predictions)
    {
        _metrics?.OnPredictions(Card, predictions);
        foreach (var o in _observers)
        {
            try
            {
                o.OnPredictions(Card, predictions);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Log.ObserverFailed(_logger, o.GetType().Name, Card.ToString(), ex);
            }
        }
    }

    private InferenceWorker Rent()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        try
        {
            // Wait(0) first: waiting with a cancelable token registers a callback (an allocation) even when a worker is free.
            if (!_available.Wait(0))
            {
                _available.Wait(_shutdown.Token);
            }
        }
        catch (OperationCanceledException)
        {
            throw new ObjectDisposedException(nameof(HarModel), $"Model {Card} was disposed.");
        }

        lock (_free)
        {
            return _free.Pop();
        }
    }

    private async ValueTask<InferenceWorker> RentAsync()
    {
        await _available.WaitAsync(_shutdown.Token).ConfigureAwait(false);
        lock (_free)
        {
            return _free.Pop();
        }
    }

    private void Return(InferenceWorker worker)
    {
        lock (_free)
        {
            _free.Push(worker);
        }

        _available.Release();
    }

    private async Task BatchLoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new BatchRequest[_maxBatch];
        var predictions = new Prediction[_maxBatch];
        try
        {
            while (await reader.WaitToReadAsync(_shutdown.Token).ConfigureAwait(false))
            {
                var n = Drain(reader, batch, 0);
                if (n > 0 && n < _maxBatch && _maxWait > TimeSpan.Zero)
                {
                    n = await WaitForMoreAsync(reader, batch, n).ConfigureAwait(false);
                }

                if (n > 0)
                {
                    await RunBatchAsync(batch, predictions, n).ConfigureAwait(false);
                    Array.Clear(batch, 0, n);
                }
            }
        }
        catch (OperationCanceledException) when (_shutdown.IsCancellationRequested)
        {
            // Disposed: windows this loop had already taken fail like the ones still queued.
            foreach (var request in batch)
            {
                request?.TrySetException(new ObjectDisposedException(nameof(HarModel), $"Model {Card} was disposed before the window ran."));
            }
        }
    }

    private int Drain(ChannelReader<BatchRequest> reader, BatchRequest[] batch, int n)
    {
        while (n < _maxBatch && reader.TryRead(out var request))
        {
            if (!request.Task.IsCompleted)
            {
                batch[n++] = request;
            }
        }

        return n;
    }

    private async Task<int> WaitForMoreAsync(ChannelReader<BatchRequest> reader, BatchRequest[] batch, int n)
    {
        var started = _time.GetTimestamp();
        while (n < _maxBatch)
        {
            var remaining = _maxWait - _time.GetElapsedTime(started);
            if (remaining <= TimeSpan.Zero)
            {
                break;
            }

            var more = reader.WaitToReadAsync(_shutdown.Token).AsTask();
            var timeout = Task.Delay(remaining, _time, _shutdown.Token);
            if (await Task.WhenAny(more, timeout).ConfigureAwait(false) != more || !await more.ConfigureAwait(false))
            {
                break;
            }

            n = Drain(reader, batch, n);
        }

        return n;
    }

    private async Task RunBatchAsync(BatchRequest[] batch, Prediction[] predictions, int n)
    {
        var worker = await RentAsync().ConfigureAwait(false);
        var valid = 0;
        for (var i = 0; i < n; i++)
        {
            if (!batch[i].Task.IsCompleted)
            {
                batch[valid++] = batch[i];
            }
        }

        Array.Clear(batch, valid, n - valid);
        if (valid == 0)
        {
            Return(worker);
            return;
        }

        // Workers left idle while one runs the whole batch would waste their cores: when concurrent callers
        // arrive together (they all wait for the same batch, so they resubmit together), one batch loop would
        // otherwise take every window and the other workers would see none. Split the batch across the idle
        // workers, each part at least MinSplitWindows long so each run still amortises its fixed cost.
        var parts = 1;
        InferenceWorker[]? extra = null;
        while (valid / (parts + 1) >= MinSplitWindows && TryRent(out var idle))
        {
            extra ??= new InferenceWorker[_workers.Length];
            extra[parts - 1] = idle;
            parts++;
        }

        if (extra is null)
        {
            RunOn(worker, batch, predictions, 0, valid);
            return;
        }

        var others = new Task[parts - 1];
        var size = valid / parts;
        var start = valid - ((parts - 1) * size);
        for (var p = 0; p < parts - 1; p++)
        {
            var (w, from) = (extra[p], start + (p * size));
            others[p] = Task.Run(() => RunOn(w, batch, predictions, from, size));
        }

        try
        {
            RunOn(worker, batch, predictions, 0, start);
        }
        finally
        {
            // The batch array is reused by the loop: no part may still read it when this returns.
            await Task.WhenAll(others).ConfigureAwait(false);
        }
    }

    /// <summary>Runs <paramref name="count"/> windows of the batch from <paramref name="start"/> on one worker, completes their callers and returns the worker.</summary>
    private void RunOn(InferenceWorker worker, BatchRequest[] batch, Prediction[] predictions, int start, int count)
    {
        try
        {
            var k = Card.ClassCount;
            for (var i = 0; i < count; i++)
            {
                _normalizer.NormalizeUnchecked(batch[start + i].Window.Span, worker.InputSlot(i)); // checked at enqueue
            }

            ReadOnlySpan<float> output;
            try
            {
                output = Run(worker, count);
            }
            catch (OnnxRuntimeException ex)
            {
                for (var i = 0; i < count; i++)
                {
                    batch[start + i].TrySetException(ex);
                }

                return;
            }

            var now = _time.GetTimestamp();
            for (var i = 0; i < count; i++)
            {
                predictions[start + i] = Score(output.Slice(i * k, k), new float[k], _time.GetElapsedTime(batch[start + i].Enqueued, now));
            }

            Notify(predictions.AsSpan(start, count));
            for (var i = 0; i < count; i++)
            {
                batch[start + i].Complete(predictions[start + i]);
            }
        }
        finally
        {
            Return(worker);
        }
    }

    private bool TryRent([NotNullWhen(true)] out InferenceWorker? worker)
    {
        if (Volatile.Read(ref _disposed) != 0 || !_available.Wait(0))
        {
            worker = null;
            return false;
        }

        lock (_free)
        {
            worker = _free.Pop();
            return true;
        }
    }

    /// <summary>One window waiting in the micro-batcher, and the caller's task.</summary>
    private sealed class BatchRequest(ReadOnlyMemory<float> window, long enqueued)
        : TaskCompletionSource<Prediction>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public ReadOnlyMemory<float> Window { get; } = window;

        public long Enqueued { get; } = enqueued;

        public CancellationTokenRegistration Registration { get; set; }

        public void Complete(Prediction prediction)
        {
            TrySetResult(prediction);
            Registration.Dispose();
        }
    }

    /// <summary>Windows either contiguous in one span or views of a <see cref="StreamWindows"/>.</summary>
    private readonly ref struct WindowSource
    {
        private readonly ReadOnlySpan<float> _contiguous;
        private readonly StreamWindows _stream;
        private readonly int _size;
        private readonly bool _isStream;

        public WindowSource(ReadOnlySpan<float> contiguous, int size)
        {
            _contiguous = contiguous;
            _size = size;
            Count = contiguous.Length / size;
        }

        public WindowSource(StreamWindows stream)
        {
            _stream = stream;
            _isStream = true;
            Count = stream.Count;
        }

        public int Count { get; }

        /// <summary>Gets whether the windows are known to be finite (they come from a <see cref="StreamWindower"/>).</summary>
        public bool IsChecked => _isStream;

        public ReadOnlySpan<float> this[int index] => _isStream ? _stream[index] : _contiguous.Slice(index * _size, _size);
    }
}
