using System.Diagnostics;
using Har.Inference.Models;
using Microsoft.ML.OnnxRuntime;

namespace Har.Inference;

/// <summary>The scoring engine behind <see cref="HarModel"/>'s public methods: runs, softmax/scores, observers.</summary>
public sealed partial class HarModel
{
    internal static void ValidateOptions(HarModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var result = new HarModelOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new ArgumentException($"Invalid HarModelOptions: {result.FailureMessage}", nameof(options));
        }
    }

    /// <summary>Called when the batcher made another batch buffer: the memory gauge follows.</summary>
    internal void OnMemoryChanged() => _metrics?.SetMemory(MemoryBytes);

    /// <summary>Runs one batch the micro-batcher filled and completes its callers; never throws.</summary>
    internal void RunBatch(BatchBuffer batch)
    {
        var count = batch.Count;
        var delivered = 0;
        try
        {
            var runStarted = Stopwatch.GetTimestamp();
            var output = Run(batch, count);
            var service = ServiceShare(runStarted, count);
            var k = Card.ClassCount;
            var now = _time.GetTimestamp();
            var predictions = batch.Predictions;
            for (var i = 0; i < count; i++)
            {
                predictions[i] = Score(output.Slice(i * k, k), batch.Probabilities.AsMemory(i * k, k), _time.GetElapsedTime(batch.Enqueued[i], now), service, count);
            }

            Notify(predictions.AsSpan(0, count));
            for (; delivered < count; delivered++)
            {
                batch.Owners[delivered]!.Deliver(batch.Indexes[delivered], predictions[delivered], batch.Probabilities.AsSpan(delivered * k, k));
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            for (var i = delivered; i < count; i++)
            {
                batch.Owners[i]!.Fail(ex);
            }
        }
    }

    private ValueTask EnqueueAll<TWindows>(scoped in TWindows windows, int count, Memory<float> probabilities, Memory<Prediction> predictions, CancellationToken cancellationToken)
        where TWindows : IWindowSource, allows ref struct
    {
        if (count == 0)
        {
            return ValueTask.CompletedTask;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        var pending = _batcher.Enqueue(windows, probabilities, predictions);
        pending.Register(cancellationToken);
        return new ValueTask(pending, pending.Version);
    }

    private void PredictCore<TWindows>(scoped in TWindows windows, Memory<float> probabilities, Span<Prediction> predictions)
        where TWindows : IWindowSource, allows ref struct
    {
        var n = windows.Count;
        ThrowIfTooSmall(n, probabilities.Length, predictions.Length);
        if (n == 0)
        {
            return;
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var k = Card.ClassCount;
        var buffer = _batcher.RentForCaller(_shutdown.Token);
        try
        {
            for (var offset = 0; offset < n; offset += _maxBatch)
            {
                var batch = Math.Min(_maxBatch, n - offset);
                var started = _time.GetTimestamp();
                for (var i = 0; i < batch; i++)
                {
                    if (windows.IsChecked)
                    {
                        // StreamWindower checked every frame as it was appended.
                        _normalizer.NormalizeUnchecked(windows[offset + i], buffer.InputSlot(i));
                    }
                    else if (!_normalizer.Normalize(windows[offset + i], buffer.InputSlot(i)))
                    {
                        throw new ArgumentException($"Window {offset + i} holds NaN or infinite values; model {Card} expects finite sensor values.");
                    }
                }

                var runStarted = Stopwatch.GetTimestamp();
                var output = Run(buffer, batch);
                var service = ServiceShare(runStarted, batch);
                var latency = _time.GetElapsedTime(started);
                var batchPredictions = predictions.Slice(offset, batch);
                for (var i = 0; i < batch; i++)
                {
                    batchPredictions[i] = Score(output.Slice(i * k, k), probabilities.Slice((offset + i) * k, k), latency, service, batch);
                }

                Notify(batchPredictions);
            }
        }
        finally
        {
            _batcher.ReturnFromCaller(buffer);
        }
    }

    private ReadOnlySpan<float> Run(BatchBuffer buffer, int batch)
    {
        try
        {
            _metrics?.ObserveRun(batch);
            return buffer.Run(batch);
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or TimeoutException)
        {
            ReportFailure(batch, ex);
            throw;
        }
    }

    // Kept out of Run: a lambda capturing Run's parameters would allocate its closure on every call.
    private void ReportFailure(int batch, Exception error)
    {
        // A run the model's own disposal stopped is no failure of the model: an Error with a stack trace at every shutdown
        // and every unloaded version (found from outside, a host stopping after a promotion) taught operators to ignore it.
        if (Volatile.Read(ref _disposed) != 0 && error is TimeoutException)
        {
            Log.RunStoppedByDispose(_logger, Card.ToString(), batch);
        }
        else
        {
            Log.RunFailed(_logger, Card.ToString(), batch, error);
        }

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

    /// <summary>One window's share of a run that started at <paramref name="runStarted"/> (monotonic clock) and scored <paramref name="windows"/> windows; at least one tick.</summary>
    private static TimeSpan ServiceShare(long runStarted, int windows)
    {
        var elapsed = Stopwatch.GetElapsedTime(runStarted);
        return TimeSpan.FromTicks(Math.Max(1, elapsed.Ticks / windows));
    }

    private Prediction Score(ReadOnlySpan<float> output, Memory<float> probabilities, TimeSpan latency, TimeSpan service, int batch)
    {
        var p = probabilities.Span;
        if (_logits)
        {
            Predictions.ProbabilityMath.StableSoftmax(output, p);
        }
        else
        {
            output.CopyTo(p);
        }

        var index = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(p);
        var confidence = p[index];
        return new Prediction(index, _labels[index], confidence, Predictions.ProbabilityMath.Entropy(p), confidence < UncertaintyThreshold, probabilities, latency, Card.ModelVersion) { ServiceTime = service, BatchSize = batch };
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

    /// <summary>How many frames one input window holds, for error messages: with context frames, how they split.</summary>
    private string FramesPerWindow => Card.ContextFrames == 0
        ? $"{Card.WindowLength} frames"
        : $"{Card.InputFrames} frames: {Card.ContextFrames} frames of context, then the {Card.WindowLength}-frame window the prediction labels";

    private void ThrowIfNotWholeWindows(int length, string paramName)
    {
        if (length % WindowValues != 0)
        {
            throw new ArgumentException(
                $"Input holds {length} values, which is not a whole number of windows; expected a multiple of {WindowValues} ({FramesPerWindow} × {Card.ChannelCount} channels {string.Join(' ', Card.Channels)}).",
                paramName);
        }
    }

    private void ThrowIfNotOneWindow(int length, string paramName)
    {
        if (length != WindowValues)
        {
            throw new ArgumentException($"Window holds {length} values; model {Card} expects {WindowValues} ({FramesPerWindow} × {Card.ChannelCount} channels).", paramName);
        }
    }

    /// <summary>
    /// The windows this model reads: as they are when their geometry is the card's; each window's last
    /// context + window frames when a windower kept more context before the same labelled window
    /// (a pipeline serving versions that read different contexts); otherwise refused.
    /// </summary>
    private StreamWindows Fit(StreamWindows windows)
    {
        if (windows.Count == 0 || (windows.WindowValues == WindowValues && windows.ContextFrames == Card.ContextFrames))
        {
            return windows;
        }

        if (windows.WindowLength - windows.ContextFrames == Card.WindowLength && windows.ContextFrames > Card.ContextFrames && windows.WindowValues / windows.WindowLength == Card.ChannelCount)
        {
            return windows.Last(Card.InputFrames);
        }

        throw new ArgumentException($"Windows of {windows.WindowValues} values ({windows.WindowLength} frames, {windows.ContextFrames} of them context) do not fit model {Card}; expected {WindowValues} ({FramesPerWindow} × {Card.ChannelCount} channels), or the same window after more context.", nameof(windows));
    }

    private void ThrowIfTooSmall(int windows, int probabilities, int predictions)
    {
        var k = Card.ClassCount;
        if (probabilities < windows * k)
        {
            throw new ArgumentException($"Probabilities buffer holds {probabilities} values; {windows} windows × {k} classes need {windows * k}.", nameof(probabilities));
        }

        if (predictions < windows)
        {
            throw new ArgumentException($"Predictions buffer holds {predictions} entries; expected at least {windows} (one per window).", nameof(predictions));
        }
    }

    private void ThrowNotFinite(ReadOnlySpan<float> windows)
    {
        var index = 0;
        while (index < windows.Length && float.IsFinite(windows[index]))
        {
            index++;
        }

        throw new ArgumentException($"Window {index / WindowValues} holds NaN or infinite values (value {index % WindowValues}); model {Card} expects finite sensor values. Nothing was enqueued.", nameof(windows));
    }

    /// <summary>Whole windows one after the other in a span.</summary>
    private readonly ref struct SpanWindows(ReadOnlySpan<float> windows, int size) : IWindowSource
    {
        private readonly ReadOnlySpan<float> _windows = windows;

        public int Count => _windows.Length / size;

        public bool IsChecked => false;

        public ReadOnlySpan<float> this[int index] => _windows.Slice(index * size, size);
    }

    /// <summary>The views of a <see cref="StreamWindower"/> append (finite: checked as frames were appended).</summary>
    private readonly ref struct ViewWindows(StreamWindows windows) : IWindowSource
    {
        private readonly StreamWindows _windows = windows;

        public int Count => _windows.Count;

        public bool IsChecked => true;

        public ReadOnlySpan<float> this[int index] => _windows[index];
    }
}
