using Har.Inference.Windowing;

namespace Har.Inference;

/// <summary>
/// A stream of a <see cref="StreamWindower"/> held after an append (<see cref="StreamWindower.TryAppendAndHold"/>): until
/// the hold is disposed, <see cref="Windows"/> are valid views of the stream's buffer or of the appended frames (no copy),
/// across awaits; other appends to the stream are refused and the idle sweep skips it.
/// </summary>
/// <remarks>Dispose it exactly once (a second dispose of a copy does nothing), or <see cref="Undo"/> the append instead.</remarks>
public readonly struct StreamHold : IDisposable
{
    private readonly StreamWindower? _owner;
    private readonly StreamState? _state;
    private readonly string? _streamId;
    private readonly ReadOnlyMemory<float> _frames;
    private readonly int _count;
    private readonly int _hold;

    internal StreamHold(StreamWindower owner, StreamState state, string streamId, ReadOnlyMemory<float> frames, int count, int hold)
    {
        _owner = owner;
        _state = state;
        _streamId = streamId;
        _frames = frames;
        _count = count;
        _hold = hold;
    }

    /// <summary>Gets the windows the held append completed (none for a default or released hold).</summary>
    /// <exception cref="InvalidOperationException">The hold was disposed or undone.</exception>
    public StreamWindows Windows
    {
        get
        {
            if (_state is null)
            {
                return default;
            }

            if (_state.Holds != _hold)
            {
                throw new InvalidOperationException($"Stream '{_streamId}': the hold was released; its windows are no longer valid.");
            }

            return _state.LastWindows(_frames.Span, _count, _owner!.WindowLength);
        }
    }

    /// <summary>Undoes the held append (the stream is as before it, so a retry does not append the frames twice) and releases the stream.</summary>
    public void Undo()
    {
        if (_state is not null && _state.EndHold(_hold))
        {
            _owner!.UndoHeld(_state, _streamId!);
            _state.Exit();
        }
    }

    /// <summary>Releases the stream: its windows are no longer valid, and the next append may go ahead.</summary>
    public void Dispose()
    {
        if (_state is not null && _state.EndHold(_hold))
        {
            _state.Exit();
        }
    }
}
