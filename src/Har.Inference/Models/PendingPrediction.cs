using System.Threading.Tasks.Sources;

namespace Har.Inference.Models;

/// <summary>
/// One call's windows waiting in the micro-batcher, and the caller's awaitable: a pooled, reusable
/// <see cref="IValueTaskSource{TResult}"/> (one window, <see cref="HarModel.PredictAsync(ReadOnlyMemory{float}, CancellationToken)"/>)
/// or <see cref="IValueTaskSource"/> (any number of windows written to the caller's buffers), so the batched
/// path allocates nothing per window or per call in steady state.
/// </summary>
/// <remarks>
/// Results are written to the caller's buffers under a lock that cancellation also takes, so nothing is
/// written after the caller's task completed. The object goes back to the pool once the caller has read
/// the result and every one of its windows has left the batcher (scored, failed or discarded).
/// </remarks>
internal sealed class PendingPrediction : IValueTaskSource<Prediction>, IValueTaskSource, IThreadPoolWorkItem
{
    private readonly MicroBatcher _owner;
    private readonly int _classes;
    // Completed on a thread-pool thread of its own (Execute), never on the batch worker or a canceller's thread, and
    // the continuation then runs inline there: queuing this object costs nothing, whereas the core's own asynchronous
    // dispatch allocates a work item per completion unless the continuation is an async method's state machine.
    private ManualResetValueTaskSourceCore<Prediction> _core = new() { RunContinuationsAsynchronously = false };
    private Exception? _error;
    private Memory<float> _probabilities;
    private Memory<Prediction> _predictions;
    private Prediction _single;
    private CancellationTokenRegistration _registration;
    private int _remaining;
    private int _references;
    private bool _completed;

    public PendingPrediction(MicroBatcher owner, int classes)
    {
        _owner = owner;
        _classes = classes;
    }

    public short Version => _core.Version;

    /// <summary>Prepares for <paramref name="windows"/> windows whose results go to the given buffers.</summary>
    public void Start(int windows, Memory<float> probabilities, Memory<Prediction> predictions)
    {
        _probabilities = probabilities;
        _predictions = predictions;
        _remaining = windows;
        _references = windows + 1;
        _completed = false;
    }

    /// <summary>Cancels the wait with <paramref name="cancellationToken"/> (after the windows are enqueued).</summary>
    public void Register(CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(static (state, token) => ((PendingPrediction)state!).Cancel(token), this);
        }
    }

    /// <summary>Delivers window <paramref name="index"/>'s prediction (its probabilities in <paramref name="probabilities"/>).</summary>
    public void Deliver(int index, in Prediction prediction, ReadOnlySpan<float> probabilities)
    {
        var complete = false;
        lock (this)
        {
            if (!_completed)
            {
                var destination = _probabilities.Slice(index * _classes, _classes);
                probabilities.CopyTo(destination.Span);
                var result = new Prediction(prediction.ClassIndex, prediction.Label, prediction.Confidence, prediction.Entropy, prediction.IsUncertain, destination, prediction.Latency, prediction.ModelVersion) { ServiceTime = prediction.ServiceTime, BatchSize = prediction.BatchSize };
                if (_predictions.IsEmpty)
                {
                    _single = result;
                }
                else
                {
                    _predictions.Span[index] = result;
                }

                complete = --_remaining == 0;
                _completed = complete;
            }
        }

        if (complete)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        Release();
    }

    /// <summary>Fails the call (first failure wins) and lets go of one window.</summary>
    public void Fail(Exception error)
    {
        var complete = false;
        lock (this)
        {
            if (!_completed)
            {
                _completed = complete = true;
            }
        }

        if (complete)
        {
            _error = error;
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        Release();
    }

    /// <summary>Completes the caller's task (queued once the call's outcome is known; the continuation runs here).</summary>
    void IThreadPoolWorkItem.Execute()
    {
        var error = _error;
        if (error is null)
        {
            _core.SetResult(_single);
        }
        else
        {
            _error = null;
            _core.SetException(error);
        }
    }

    public Prediction GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            Release();
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private void Cancel(CancellationToken token)
    {
        var complete = false;
        lock (this)
        {
            if (!_completed)
            {
                _completed = complete = true;
            }
        }

        if (complete)
        {
            _error = new OperationCanceledException(token);
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    private void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0)
        {
            return;
        }

        _registration.Dispose();
        _registration = default;
        _probabilities = default;
        _predictions = default;
        _single = default;
        _core.Reset();
        _owner.Return(this);
    }
}
