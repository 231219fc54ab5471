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
internal sealed class PendingPrediction : IValueTaskSource<Prediction>, IValueTaskSource
{
    private readonly MicroBatcher _owner;
    private readonly int _classes;
    private ManualResetValueTaskSourceCore<Prediction> _core = new() { RunContinuationsAsynchronously = true };
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
                var result = prediction with { Probabilities = destination };
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
            _core.SetResult(_single);
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
            _core.SetException(error);
        }

        Release();
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
            _core.SetException(new OperationCanceledException(token));
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
