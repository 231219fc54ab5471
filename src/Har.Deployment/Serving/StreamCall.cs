using System.Threading.Tasks.Sources;
using Har.Inference;

namespace Har.Deployment;

/// <summary>
/// One stream append through the <see cref="ServingPipeline"/>, pooled: the caller's awaitable (an
/// <see cref="IValueTaskSource{TResult}"/> of the number of windows, or of an allocated result array), the held
/// stream, the route, the scratch predictions and window starts, and the continuation the batcher completes.
/// Goes back to the pool once the caller has read the result.
/// </summary>
internal sealed class StreamCall : IValueTaskSource<int>, IValueTaskSource<StreamPrediction[]>
{
    private readonly StreamCallPool _pool;
    private readonly ServingPipeline _pipeline;
    private readonly Action _onScored;
    private ManualResetValueTaskSourceCore<int> _core;
    private Prediction[] _scored = new Prediction[4];
    private long[] _starts = new long[4];
    private Memory<StreamPrediction> _destination;
    private Memory<float> _probabilities;
    private StreamPrediction[]? _result;
    private bool _allocate;
    private StreamHold _hold;
    private ValueTask _scoring;

    public StreamCall(StreamCallPool pool, ServingPipeline pipeline)
    {
        _pool = pool;
        _pipeline = pipeline;
        _onScored = OnScored;
    }

    public short Version => _core.Version;

    public string StreamId { get; private set; } = string.Empty;

    public ReadOnlyMemory<float> Samples { get; private set; }

    public CancellationToken CancellationToken { get; private set; }

    public int Count { get; private set; }

    public RouteDecision Decision { get; private set; }

    public long Started { get; private set; }

    /// <summary>Gets the predictions the batcher wrote, one per window.</summary>
    public Memory<Prediction> Scored => _scored.AsMemory(0, Count);

    /// <summary>Gets the windows' stream-relative first frames.</summary>
    public ReadOnlySpan<long> Starts => _starts.AsSpan(0, Count);

    public void Begin(string streamId, ReadOnlyMemory<float> samples, Memory<StreamPrediction> destination, Memory<float> probabilities, bool allocate, CancellationToken cancellationToken)
    {
        StreamId = streamId;
        Samples = samples;
        _destination = destination;
        _probabilities = probabilities;
        _allocate = allocate;
        CancellationToken = cancellationToken;
        Count = 0;
    }

    /// <summary>Sizes the scratch for the completed windows, checks (or allocates) the caller's buffers; returns where the probabilities go.</summary>
    public Memory<float> Prepare(StreamWindows windows, int classes)
    {
        var count = windows.Count;
        if (_allocate)
        {
            _result = new StreamPrediction[count];
            _probabilities = new float[count * classes];
        }
        else if (_destination.Length < count || _probabilities.Length < count * classes)
        {
            throw new ArgumentException(
                $"Stream '{StreamId}': the frames complete {count} windows of {classes} classes; the buffers hold {_destination.Length} predictions and {_probabilities.Length} probabilities (expected at least {count} and {count * classes}). The frames were not appended.",
                _destination.Length < count ? "predictions" : "probabilities");
        }

        if (_scored.Length < count)
        {
            _scored = new Prediction[Math.Max(count, _scored.Length * 2)];
            _starts = new long[_scored.Length];
        }

        for (var i = 0; i < count; i++)
        {
            _starts[i] = windows.GetStartFrame(i);
        }

        Count = count;
        return _probabilities[..(count * classes)];
    }

    /// <summary>Takes over the held stream while the windows are scored.</summary>
    public void Hold(StreamHold hold, RouteDecision decision, long started)
    {
        _hold = hold;
        Decision = decision;
        Started = started;
    }

    /// <summary>Gives the held stream back (to release or undo it).</summary>
    public StreamHold Unhold()
    {
        var hold = _hold;
        _hold = default;
        return hold;
    }

    public void AwaitScoring(ValueTask scoring)
    {
        if (scoring.IsCompleted)
        {
            _scoring = scoring;
            OnScored();
            return;
        }

        _scoring = scoring;
        scoring.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onScored);
    }

    /// <summary>Copies the scored predictions, with their start frames, to the caller's buffer (or the result array).</summary>
    public void WriteResults()
    {
        var destination = _allocate ? _result.AsSpan() : _destination.Span;
        for (var i = 0; i < Count; i++)
        {
            destination[i] = new StreamPrediction(_starts[i], _scored[i]);
        }
    }

    public void Complete(int count)
    {
        Clear();
        _core.SetResult(count);
    }

    public void Fail(Exception error)
    {
        Clear();
        _result = null;
        _core.SetException(error);
    }

    int IValueTaskSource<int>.GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            Return();
        }
    }

    StreamPrediction[] IValueTaskSource<StreamPrediction[]>.GetResult(short token)
    {
        try
        {
            return _core.GetResult(token) == 0 ? [] : _result!;
        }
        finally
        {
            Return();
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private void OnScored()
    {
        var scoring = _scoring;
        _scoring = default;
        Exception? error = null;
        try
        {
            scoring.GetAwaiter().GetResult();
        }
#pragma warning disable CA1031 // handed to the pipeline, which tells the observers and fails the caller's task
        catch (Exception ex)
#pragma warning restore CA1031
        {
            error = ex;
        }

        _pipeline.Finish(this, error);
    }

    /// <summary>Drops every reference to the caller's data once the call is over (the result array stays until it is read).</summary>
    private void Clear()
    {
        Array.Clear(_scored, 0, Count);
        _destination = default;
        _probabilities = default;
        Samples = default;
        Decision = default;
        _hold = default;
    }

    private void Return()
    {
        _result = null;
        StreamId = string.Empty;
        CancellationToken = default;
        _core.Reset();
        _pool.Return(this);
    }
}

/// <summary>The pipeline's pool of <see cref="StreamCall"/>s (grows to the peak of concurrent appends, keeps at most 1,024).</summary>
internal sealed class StreamCallPool(ServingPipeline pipeline)
{
    private const int MaxKept = 1024;
    private readonly Stack<StreamCall> _free = new();
    private readonly Lock _gate = new();

    public StreamCall Rent()
    {
        lock (_gate)
        {
            if (_free.Count > 0)
            {
                return _free.Pop();
            }
        }

        return new StreamCall(this, pipeline);
    }

    public void Return(StreamCall call)
    {
        lock (_gate)
        {
            if (_free.Count < MaxKept)
            {
                _free.Push(call);
            }
        }
    }
}
