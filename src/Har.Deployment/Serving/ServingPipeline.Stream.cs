using System.Collections.Concurrent;
using Har.Inference;

namespace Har.Deployment;

/// <summary>
/// The stream path: append (the stream is held), route, hand the windows' views to the version's batcher (which
/// normalizes them straight into the batch tensor), then — once they are scored — the observers read the same
/// views, the stream is released and the caller's task completes. A pooled <see cref="StreamCall"/> carries one
/// call through, so nothing is allocated per window or per call in steady state.
/// </summary>
public sealed partial class ServingPipeline
{
    private readonly StreamCallPool _calls;

    // Callers waiting for a stream another append holds (rare: one device sending two chunks at once).
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiters = new(StringComparer.Ordinal);
    private int _waitEntries;

    private StreamCall StartAppend(string streamId, ReadOnlyMemory<float> samples, Memory<StreamPrediction> predictions, Memory<float> probabilities, bool allocate, CancellationToken cancellationToken)
    {
        var call = _calls.Rent();
        call.Begin(streamId, samples, predictions, probabilities, allocate, cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            ArgumentException.ThrowIfNullOrEmpty(streamId);
            Append(call);
        }
#pragma warning disable CA1031 // delivered to the caller through the call's task
        catch (Exception ex)
#pragma warning restore CA1031
        {
            call.Fail(ex);
        }

        return call;
    }

    /// <summary>Appends the call's frames holding the stream and starts scoring; waits (off the caller's path) if another append holds the stream.</summary>
    private void Append(StreamCall call)
    {
        if (!_windower.TryAppendAndHold(call.StreamId, call.Samples, out var hold))
        {
            _ = AppendWhenReleasedAsync(call);
            return;
        }

        Serve(call, hold);
    }

    /// <summary>Scores the windows of a held append (the hold passes to the call, or is undone if scoring cannot start).</summary>
    private void Serve(StreamCall call, StreamHold hold)
    {
        StreamWindows windows;
        int count;
        try
        {
            windows = hold.Windows;
            count = windows.Count;
            _observers.OnSamples(call.StreamId, call.Samples.Span);
        }
        catch
        {
            Release(call.StreamId, hold);
            throw;
        }

        if (count == 0)
        {
            Release(call.StreamId, hold);
            call.Complete(0);
            return;
        }

        var decision = TrafficRouter.Route(Volatile.Read(ref _plan), call.StreamId);
        ValueTask scoring;
        try
        {
            var model = _models.GetModel(decision.Version);
            var probabilities = call.Prepare(windows, model.Card.ClassCount);
            call.Hold(hold, decision, _time.GetTimestamp());
            scoring = model.PredictAsync(windows, probabilities, call.Scored, call.CancellationToken);
        }
        catch
        {
            // Refused before any window was enqueued (a buffer too small, the queue full, the version gone): the
            // append is undone, so the stream is as before the call and a retry does not append the frames twice.
            call.Unhold();
            hold.Undo();
            Wake(call.StreamId);
            throw;
        }

        call.AwaitScoring(scoring);
    }

    /// <summary>Called once the batcher scored (or failed, or cancelled) the call's windows.</summary>
    internal void Finish(StreamCall call, Exception? error)
    {
        var hold = call.Unhold();
        var count = call.Count;
        var decision = call.Decision;
        var latency = _time.GetElapsedTime(call.Started);
        try
        {
            if (error is null)
            {
                var windows = hold.Windows;
                var served = call.Scored.Span[..count];
                var starts = call.Starts;
                _observers.OnPredictions(new ServedPredictions(call.StreamId, decision.Version, Geometry, windows, starts, served, latency, SumServiceTime(served)));
                call.WriteResults();
                if (decision.ShadowVersion is { } shadow)
                {
                    // Copies: the stream's buffer changes with its next append.
                    var copy = new float[count * _windowValues];
                    for (var i = 0; i < count; i++)
                    {
                        windows[i].CopyTo(copy.AsSpan(i * _windowValues, _windowValues));
                    }

                    StartShadow(call.StreamId, shadow, decision.IsCandidate, copy, served.ToArray(), starts.ToArray());
                }
            }
            else if (!call.CancellationToken.IsCancellationRequested && error is not ArgumentException)
            {
                _observers.OnError(call.StreamId, decision.Version, PredictionRole.Served, count, latency, error);
            }
        }
        finally
        {
            Release(call.StreamId, hold);
        }

        if (error is null)
        {
            call.Complete(count);
        }
        else
        {
            call.Fail(error);
        }
    }

    private void Release(string streamId, StreamHold hold)
    {
        hold.Dispose();
        Wake(streamId);
    }

    private void Wake(string streamId)
    {
        // A full fence between letting go of the stream and looking for waiters (a waiter registers, then tries).
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _waitEntries) > 0 && _waiters.TryRemove(streamId, out var released))
        {
            Interlocked.Decrement(ref _waitEntries);
            released.TrySetResult();
        }
    }

    /// <summary>
    /// Another append holds the stream: waits until it is released, then appends. A waiter registers before it
    /// tries once more, and a releaser looks for waiters after it let go, so no release goes unnoticed.
    /// </summary>
    private async Task AppendWhenReleasedAsync(StreamCall call)
    {
        try
        {
            while (true)
            {
                if (!_waiters.TryGetValue(call.StreamId, out var released))
                {
                    var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    released = _waiters.GetOrAdd(call.StreamId, created);
                    if (ReferenceEquals(released, created))
                    {
                        Interlocked.Increment(ref _waitEntries);
                    }
                }

                // Registered (a full fence): the holder's release now finds this entry, or the stream is free already.
                Interlocked.MemoryBarrier();
                if (_windower.TryAppendAndHold(call.StreamId, call.Samples, out var hold))
                {
                    Serve(call, hold); // its release wakes the others waiting on the entry (and removes it)
                    return;
                }

                await released.Task.WaitAsync(call.CancellationToken).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // delivered to the caller through the call's task
        catch (Exception ex)
#pragma warning restore CA1031
        {
            call.Fail(ex);
        }
    }
}
