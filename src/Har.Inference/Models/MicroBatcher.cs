namespace Har.Inference.Models;

/// <summary>
/// The micro-batcher and the run slots of one <see cref="HarModel"/>. Callers' windows are normalized
/// straight into a slot of the batch being filled (a pinned <see cref="BatchBuffer"/>) while the call is
/// still on the caller's thread, so a window from a stream's buffer reaches the tensor in one copy and
/// may change as soon as the call returns. A free worker takes the next full batch, or the batch being
/// filled (at once, or once its first window has waited <see cref="HarModelOptions.MaxBatchWait"/>), and
/// runs it on the thread pool; batches form by themselves while the workers are busy.
/// </summary>
/// <remarks>
/// Nothing is allocated per window or per call in steady state: buffers and <see cref="PendingPrediction"/>s
/// are pooled (the buffer pool grows up to workers + queue capacity / batch size + 1 and stays), a run is
/// queued as this object (an <see cref="IThreadPoolWorkItem"/>), and the <see cref="HarModelOptions.Workers"/>
/// limit is a semaphore shared with the synchronous <c>Predict</c> path.
/// </remarks>
internal sealed class MicroBatcher : IThreadPoolWorkItem, IDisposable
{
    private readonly HarModel _model;
    private readonly Windowing.WindowNormalizer _normalizer;
    private readonly Func<BatchBuffer> _createBuffer;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _workers;
    private readonly int _workerCount;
    private readonly Stack<BatchBuffer> _free = new();
    private readonly Queue<BatchBuffer> _ready = new();
    private readonly List<BatchBuffer> _all = [];
    private readonly Stack<PendingPrediction> _pending = new();
    private readonly TimeProvider _time;
    private readonly ITimer? _timer;
    private readonly int _maxBatch;
    private readonly int _capacity;
    private readonly int _classes;
    private readonly TimeSpan _maxWait;
    private BatchBuffer? _filling;
    private long _fillingSince;
    private int _queued;
    private int _dispatched;
    private bool _timerArmed;
    private bool _disposed;
    private long _pinnedBytes;

    public MicroBatcher(HarModel model, Windowing.WindowNormalizer normalizer, Func<BatchBuffer> createBuffer, HarModelOptions options, int maxBatch, int classes, TimeProvider time)
    {
        _model = model;
        _normalizer = normalizer;
        _createBuffer = createBuffer;
        _workerCount = options.Workers;
        _workers = new SemaphoreSlim(_workerCount, _workerCount);
        _maxBatch = maxBatch;
        _capacity = options.QueueCapacity;
        _maxWait = options.MaxBatchWait;
        _classes = classes;
        _time = time;
        for (var i = 0; i < _workerCount; i++)
        {
            _free.Push(Create());
        }

        if (_maxWait > TimeSpan.Zero)
        {
            _timer = time.CreateTimer(static s => ((MicroBatcher)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Gets the bytes pinned by the batch buffers made so far.</summary>
    public long PinnedBytes => Interlocked.Read(ref _pinnedBytes);

    /// <summary>Gets the buffers made at start (for the warm-up).</summary>
    public IEnumerable<BatchBuffer> Buffers
    {
        get
        {
            lock (_gate)
            {
                return [.. _all];
            }
        }
    }

    /// <summary>
    /// Enqueues the windows, all or none, each normalized into a slot (the windows are known to be finite);
    /// the returned source completes when every window is scored.
    /// </summary>
    public PendingPrediction Enqueue<TWindows>(scoped in TWindows windows, Memory<float> probabilities, Memory<Prediction> predictions)
        where TWindows : IWindowSource, allows ref struct
    {
        var count = windows.Count;
        PendingPrediction pending;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, _model);
            if (_queued + count > _capacity)
            {
                throw new InferenceQueueFullException(count == 1
                    ? $"Model {_model}: the batching queue is full ({_capacity} windows waiting, HarModelOptions.QueueCapacity); retry later or shed load."
                    : $"Model {_model}: the batching queue cannot take {count} windows ({_queued} of {_capacity} waiting, HarModelOptions.QueueCapacity); nothing was enqueued; retry later or shed load.");
            }

            pending = _pending.Count > 0 ? _pending.Pop() : new PendingPrediction(this, _classes);
            pending.Start(count, probabilities, predictions);
            var now = _time.GetTimestamp();
            for (var i = 0; i < count; i++)
            {
                if (_filling is null)
                {
                    _filling = _free.Count > 0 ? _free.Pop() : Create();
                    _fillingSince = now;
                }

                var slot = _filling.Count;
                _normalizer.NormalizeUnchecked(windows[i], _filling.InputSlot(slot));
                _filling.Owners[slot] = pending;
                _filling.Indexes[slot] = i;
                _filling.Enqueued[slot] = now;
                if (++_filling.Count == _maxBatch)
                {
                    _ready.Enqueue(_filling);
                    _filling = null;
                }
            }

            _queued += count;
            DispatchLocked();
        }

        return pending;
    }

    /// <summary>Takes a worker and a free buffer for a synchronous run on the caller's thread.</summary>
    public BatchBuffer RentForCaller(CancellationToken shutdown)
    {
        // Wait(0) first: waiting with a cancelable token registers a callback (an allocation) even when a worker is free.
        try
        {
            if (!_workers.Wait(0, CancellationToken.None))
            {
                _workers.Wait(shutdown);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            throw new ObjectDisposedException(nameof(HarModel), $"Model {_model} was disposed.");
        }

        lock (_gate)
        {
            if (_disposed)
            {
                ReleaseWorkerLocked();
                throw new ObjectDisposedException(nameof(HarModel), $"Model {_model} was disposed.");
            }

            return _free.Count > 0 ? _free.Pop() : Create();
        }
    }

    /// <summary>Returns what <see cref="RentForCaller"/> gave; the worker goes to queued windows if there are any.</summary>
    public void ReturnFromCaller(BatchBuffer buffer)
    {
        lock (_gate)
        {
            _free.Push(buffer);
            ReleaseWorkerLocked();
        }
    }

    /// <summary>Runs queued batches until there are none (thread-pool work item; one per dispatched worker).</summary>
    public void Execute()
    {
        BatchBuffer? batch;
        lock (_gate)
        {
            _dispatched--;
            batch = TakeLocked();
            if (batch is null)
            {
                ReleaseWorkerLocked();
                return;
            }
        }

        while (batch is not null)
        {
            try
            {
                _model.RunBatch(batch);
            }
            finally
            {
                Array.Clear(batch.Owners, 0, batch.Count);
                batch.Count = 0;
            }

            lock (_gate)
            {
                _free.Push(batch);
                batch = TakeLocked();
                if (batch is null)
                {
                    ReleaseWorkerLocked();
                }
            }
        }
    }

    public void Return(PendingPrediction pending)
    {
        lock (_gate)
        {
            _pending.Push(pending);
        }
    }

    /// <summary>Fails every queued window with <see cref="ObjectDisposedException"/>, waits for running batches and releases the buffers.</summary>
    public void Dispose()
    {
        List<BatchBuffer> waiting = [];
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            waiting.AddRange(_ready);
            _ready.Clear();
            if (_filling is not null)
            {
                waiting.Add(_filling);
                _filling = null;
            }

            _queued = 0;
        }

        foreach (var batch in waiting)
        {
            for (var i = 0; i < batch.Count; i++)
            {
                batch.Owners[i]!.Fail(new ObjectDisposedException(nameof(HarModel), $"Model {_model} was disposed before the window ran."));
                batch.Owners[i] = null;
            }

            batch.Count = 0;
        }

        _timer?.Dispose();
        for (var i = 0; i < _workerCount; i++)
        {
            _workers.Wait();
        }

        foreach (var buffer in _all)
        {
            buffer.Dispose();
        }

        _workers.Dispose();
    }

    private BatchBuffer Create()
    {
        var buffer = _createBuffer();
        _all.Add(buffer);
        Interlocked.Add(ref _pinnedBytes, buffer.PinnedBytes);
        _model.OnMemoryChanged();
        return buffer;
    }

    /// <summary>
    /// Starts workers for the batches that are ready to run (each dispatched worker takes one when it starts); a partial
    /// batch that is not due yet, with a worker free and none dispatched, arms the timer for when it is.
    /// </summary>
    private void DispatchLocked()
    {
        while (true)
        {
            while (!_disposed && _dispatched < RunnableLocked() && _workers.Wait(0))
            {
                _dispatched++;
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            }

            if (_disposed || _timer is null || _timerArmed || _filling is null || _ready.Count > 0 || _dispatched > 0 || _workers.CurrentCount == 0)
            {
                return;
            }

            // A partial batch waits for more windows until its first has waited MaxBatchWait. The clock is read again
            // here: when the wait ran out since the look above (a preempted thread, a loaded machine), the batch is due
            // now and is dispatched on the next pass; neither arming the timer nor dispatching would leave its callers
            // waiting for a window that never comes.
            var remaining = _maxWait - _time.GetElapsedTime(_fillingSince);
            if (remaining > TimeSpan.Zero)
            {
                _timerArmed = true;
                _timer.Change(remaining, Timeout.InfiniteTimeSpan);
                return;
            }
        }
    }

    /// <summary>The number of batches a worker may take now.</summary>
    private int RunnableLocked() => _ready.Count + (_filling is not null && FillingDueLocked() ? 1 : 0);

    private bool FillingDueLocked() => _maxWait <= TimeSpan.Zero || _time.GetElapsedTime(_fillingSince) >= _maxWait;

    private BatchBuffer? TakeLocked()
    {
        BatchBuffer? batch = null;
        if (_disposed)
        {
            return null;
        }

        if (_ready.Count > 0)
        {
            batch = _ready.Dequeue();
        }
        else if (_filling is not null && FillingDueLocked())
        {
            batch = _filling;
            _filling = null;
        }

        if (batch is not null)
        {
            _queued -= batch.Count;
        }

        return batch;
    }

    /// <summary>Gives the worker back, or to queued windows if a batch is due.</summary>
    private void ReleaseWorkerLocked()
    {
        _workers.Release();
        DispatchLocked();
    }

    private void OnTimer()
    {
        lock (_gate)
        {
            _timerArmed = false;
            DispatchLocked();
        }
    }
}

/// <summary>Windows to score: a span of whole windows, or a windower's views.</summary>
internal interface IWindowSource
{
    /// <summary>Gets the number of windows.</summary>
    int Count { get; }

    /// <summary>Gets whether every value is known to be finite (a windower checked it as frames were appended).</summary>
    bool IsChecked { get; }

    /// <summary>Gets window <paramref name="index"/>.</summary>
    ReadOnlySpan<float> this[int index] { get; }
}
