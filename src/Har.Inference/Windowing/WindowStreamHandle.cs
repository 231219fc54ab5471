namespace Har.Inference;

/// <summary>
/// A handle to one stream of a <see cref="StreamWindower"/> (from <see cref="StreamWindower.OpenStream"/>):
/// appending through it is the same as <see cref="StreamWindower.Append(string, ReadOnlySpan{float})"/>
/// with its <see cref="Id"/>, without looking the stream up on every call.
/// </summary>
/// <remarks>
/// Eviction, removal and the stream cap apply as to appends by id: if the stream was removed or evicted,
/// the next append starts a new stream under the same id. Like appends by id, appends through handles of
/// the same stream must not overlap.
/// </remarks>
public sealed class WindowStreamHandle
{
    private readonly StreamWindower _owner;
    private StreamWindower.StreamState? _state;

    internal WindowStreamHandle(StreamWindower owner, string id)
    {
        _owner = owner;
        Id = id;
    }

    /// <summary>Gets the stream's id.</summary>
    public string Id { get; }

    /// <summary>Appends interleaved frames to the stream and returns the windows they complete.</summary>
    /// <param name="frames">Whole frames of <see cref="StreamWindower.Channels"/> values each, in time order.</param>
    /// <returns>Views of the completed windows, valid until the next append to or removal of this stream.</returns>
    /// <exception cref="ArgumentException">The input is not a whole number of frames, or holds NaN/infinity with <see cref="InvalidSampleHandling.Throw"/>.</exception>
    /// <exception cref="InvalidOperationException">The stream is new (or was evicted) and <see cref="StreamWindowerOptions.MaxStreams"/> streams are already buffered.</exception>
    public StreamWindows Append(ReadOnlySpan<float> frames) => _owner.AppendCore(ref _state, Id, frames);
}
