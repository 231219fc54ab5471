using Har.Inference.Windowing;

namespace Har.Inference;

/// <summary>
/// A handle to one stream of a <see cref="StreamWindower"/> (from <see cref="StreamWindower.OpenStream"/>):
/// appending through it is the same as appending by its <see cref="Id"/>, without looking the stream up on every call.
/// </summary>
/// <remarks>
/// Eviction, removal and the stream cap apply as to appends by id: if the stream was removed or evicted,
/// the next append starts a new stream under the same id. Like appends by id, appends through handles of
/// the same stream must not overlap.
/// </remarks>
internal sealed class WindowStreamHandle
{
    private readonly StreamWindower _owner;
    private StreamState? _state;

    internal WindowStreamHandle(StreamWindower owner, string id)
    {
        _owner = owner;
        Id = id;
    }

    /// <summary>Gets the stream's id.</summary>
    public string Id { get; }

    /// <summary>Appends interleaved frames to the stream and returns the windows they complete (see <see cref="StreamWindower.Append(string, ReadOnlySpan{float})"/>).</summary>
    /// <param name="frames">Whole frames of <see cref="StreamWindower.Channels"/> values each, in time order.</param>
    /// <returns>Views of the completed windows, valid until the next append to or removal of this stream.</returns>
    /// <exception cref="ArgumentException">The input is not a whole number of frames, or holds NaN/infinity with <see cref="InvalidSampleHandling.Throw"/>; nothing was appended.</exception>
    /// <exception cref="WindowLimitExceededException">The frames would complete more than <see cref="StreamWindowerOptions.MaxWindowsPerAppend"/> windows; nothing was appended.</exception>
    /// <exception cref="StreamLimitExceededException">The stream is new (or was evicted), the stream limit is reached and none could be evicted.</exception>
    /// <exception cref="InvalidOperationException">Another append to the same stream is in progress.</exception>
    public StreamWindows Append(ReadOnlySpan<float> frames)
    {
        var windows = _owner.AppendCore(ref _state, Id, frames);
        _state!.Exit();
        return windows;
    }

    /// <summary>Appends frames and hands the windows to <paramref name="handler"/>, all or nothing (see <see cref="StreamWindower.Append{TState, TResult}(string, ReadOnlySpan{float}, TState, StreamWindowsHandler{TState, TResult})"/>).</summary>
    /// <typeparam name="TState">The handler's state.</typeparam>
    /// <typeparam name="TResult">The handler's result.</typeparam>
    /// <param name="frames">Whole frames of <see cref="StreamWindower.Channels"/> values each, in time order.</param>
    /// <param name="state">Passed to <paramref name="handler"/>.</param>
    /// <param name="handler">Receives the windows while they are valid; if it throws, the append is undone.</param>
    /// <returns>What <paramref name="handler"/> returned.</returns>
    public TResult Append<TState, TResult>(ReadOnlySpan<float> frames, TState state, StreamWindowsHandler<TState, TResult> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return _owner.AppendAndHandle(ref _state, Id, frames, state, handler);
    }
}
