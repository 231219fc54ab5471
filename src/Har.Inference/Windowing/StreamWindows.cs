namespace Har.Inference;

/// <summary>
/// The windows an append to a <see cref="StreamWindower"/> completed, as views (no copy) into the
/// stream's buffer or into the appended chunk itself. Valid until the next append to, or removal of,
/// the same stream, and while the appended chunk is unchanged.
/// </summary>
public readonly ref struct StreamWindows
{
    private readonly ReadOnlySpan<float> _buffer;
    private readonly ReadOnlySpan<float> _chunk;
    private readonly ReadOnlySpan<long> _starts;
    private readonly long _bufferStartFrame;
    private readonly long _chunkStartFrame;
    private readonly int _channels;

    /// <summary>Frames skipped at the start of every window (see <see cref="Last"/>).</summary>
    private readonly int _skip;

    /// <summary>Windows starting before <paramref name="chunkStartFrame"/> are in the stream's buffer, the others in the appended chunk.</summary>
    internal StreamWindows(ReadOnlySpan<float> buffer, long bufferStartFrame, ReadOnlySpan<float> chunk, long chunkStartFrame, ReadOnlySpan<long> starts, int windowLength, int channels, int contextFrames = 0)
    {
        _buffer = buffer;
        _bufferStartFrame = bufferStartFrame;
        _chunk = chunk;
        _chunkStartFrame = chunkStartFrame;
        _starts = starts;
        WindowLength = windowLength;
        _channels = channels;
        ContextFrames = contextFrames;
    }

    private StreamWindows(StreamWindows all, int frames)
    {
        _buffer = all._buffer;
        _bufferStartFrame = all._bufferStartFrame;
        _chunk = all._chunk;
        _chunkStartFrame = all._chunkStartFrame;
        _starts = all._starts;
        _channels = all._channels;
        _skip = all._skip + (all.WindowLength - frames);
        WindowLength = frames;
        ContextFrames = all.ContextFrames - (all.WindowLength - frames);
    }

    /// <summary>Gets the number of completed windows.</summary>
    public int Count => _starts.Length;

    /// <summary>Gets the number of frames in each window.</summary>
    internal int WindowLength { get; }

    /// <summary>Gets the number of values in each window (frames × channels).</summary>
    internal int WindowValues => WindowLength * _channels;

    /// <summary>Gets the number of frames of each window that come before the span it labels (<see cref="ModelCard.ContextFrames"/>).</summary>
    internal int ContextFrames { get; }

    /// <summary>The same windows, each cut to its last <paramref name="frames"/> frames (less context, same labelled span).</summary>
    /// <param name="frames">At least the labelled span (<see cref="WindowLength"/> − <see cref="ContextFrames"/>), at most <see cref="WindowLength"/>.</param>
    internal StreamWindows Last(int frames) => new(this, frames);

    /// <summary>Gets window <paramref name="index"/>: <see cref="WindowLength"/> interleaved frames in sensor units.</summary>
    /// <param name="index">The window, 0 ≤ index &lt; <see cref="Count"/>.</param>
    /// <returns>A view of the window's values.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative or not less than <see cref="Count"/>.</exception>
    public ReadOnlySpan<float> this[int index]
    {
        get
        {
            var start = _starts[CheckIndex(index)];
            return start >= _chunkStartFrame
                ? _chunk.Slice((int)(start - _chunkStartFrame + _skip) * _channels, WindowValues)
                : _buffer.Slice((int)(start - _bufferStartFrame + _skip) * _channels, WindowValues);
        }
    }

    /// <summary>Gets the stream-relative index of the first frame of window <paramref name="index"/> (0 = the stream's first frame).</summary>
    /// <param name="index">The window, 0 ≤ index &lt; <see cref="Count"/>.</param>
    /// <returns>The frame index.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative or not less than <see cref="Count"/>.</exception>
    public long GetStartFrame(int index) => _starts[CheckIndex(index)];

    private int CheckIndex(int index)
    {
        if ((uint)index >= (uint)_starts.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"The append completed {_starts.Length} window(s); expected an index from 0 to Count - 1 ({_starts.Length - 1}).");
        }

        return index;
    }

    /// <summary>
    /// Copies the raw windows one after the other into <paramref name="destination"/>. To score them, hand the windows
    /// to <see cref="HarModel.PredictAsync(StreamWindows, Memory{float}, Memory{Prediction}, CancellationToken)"/> instead:
    /// it copies each window (normalized) straight into the batch tensor.
    /// </summary>
    /// <param name="destination">At least <see cref="Count"/> × <see cref="WindowValues"/> values.</param>
    /// <exception cref="InvalidOperationException">The append completed no window (check <see cref="Count"/> first): there is nothing to copy.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is too small.</exception>
    internal void CopyTo(Span<float> destination)
    {
        if (Count == 0)
        {
            throw new InvalidOperationException(
                $"The append completed no window (a window needs {WindowLength} frames and the stream has not reached the next one yet); there is nothing to copy. Check Count before copying or scoring.");
        }

        var size = WindowValues;
        if (destination.Length < Count * size)
        {
            throw new ArgumentException($"Destination holds {destination.Length} values; {Count} windows need {Count * size}.", nameof(destination));
        }

        for (var i = 0; i < Count; i++)
        {
            this[i].CopyTo(destination.Slice(i * size, size));
        }
    }
}
