using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Har.Inference;

/// <summary>
/// Cuts per-stream sliding windows out of interleaved sensor frames (<c>ax ay az gx gy gz</c> …): a
/// window of <see cref="WindowLength"/> frames starts every <see cref="Stride"/> frames from the
/// stream's first frame, whatever the chunking of the appends.
/// </summary>
/// <remarks>
/// Each stream keeps a sliding buffer of the frames its future windows still need, so windows are
/// handed out as views (<see cref="StreamWindows"/>) without a copy; the copy into the batch tensor
/// (with normalization fused in) is done by <see cref="HarModel"/>. Different streams may be appended
/// to concurrently; appends to one stream must not overlap. Memory is bounded: at most
/// <see cref="StreamWindowerOptions.MaxStreams"/> streams, and streams idle for
/// <see cref="StreamWindowerOptions.IdleTimeout"/> are evicted.
/// </remarks>
public sealed class StreamWindower
{
    private readonly ConcurrentDictionary<string, StreamState> _streams = new(StringComparer.Ordinal);
    private readonly StreamWindowerOptions _options;
    private readonly TimeProvider _time;
    private readonly ClockSource _clock;
    private readonly ulong _channelsReciprocal;
    private readonly Lock _sweepLock = new();
    private readonly long _idleTicks;
    private readonly long _sweepTicks;
    private long _lastSweep;
    private StreamState? _last;
    private long _droppedWindows;
    private long _evictedStreams;

    /// <summary>Initializes a new instance of the <see cref="StreamWindower"/> class with the window geometry of a model card.</summary>
    /// <param name="card">The model card (window length, stride and channel count).</param>
    /// <param name="options">The options, or <see langword="null"/> for the defaults.</param>
    /// <param name="timeProvider">The clock for idle eviction, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    public StreamWindower(ModelCard card, StreamWindowerOptions? options = null, TimeProvider? timeProvider = null)
        : this(ThrowIfNull(card).WindowLength, card.Stride, card.ChannelCount, options, timeProvider)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="StreamWindower"/> class.</summary>
    /// <param name="windowLength">Frames per window.</param>
    /// <param name="stride">Frames between the starts of consecutive windows.</param>
    /// <param name="channels">Values per frame.</param>
    /// <param name="options">The options, or <see langword="null"/> for the defaults.</param>
    /// <param name="timeProvider">The clock for idle eviction, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    public StreamWindower(int windowLength, int stride, int channels, StreamWindowerOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        _options = options ?? new StreamWindowerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxStreams, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_options.IdleTimeout, TimeSpan.Zero, nameof(options));
        _time = timeProvider ?? TimeProvider.System;

        // Idle eviction needs seconds, not nanoseconds. With the system clock, appends stamp the stream with the
        // heartbeat's cached tick count (one memory read) when the timeout is long enough for its resolution, and
        // read the millisecond tick count (Environment.TickCount64) otherwise; never the high-resolution timestamp.
        var system = ReferenceEquals(_time, TimeProvider.System);
        _clock = !system ? ClockSource.Provider
            : _options.IdleTimeout >= HeartbeatMinimumTimeout ? ClockSource.Heartbeat
            : ClockSource.TickCount;
        var frequency = system ? 1000 : _time.TimestampFrequency;
        WindowLength = windowLength;
        Stride = stride;
        Channels = channels;
        _channelsReciprocal = channels == 1 ? 0 : (ulong.MaxValue / (ulong)channels) + 1;
        _idleTicks = ToTimestampTicks(_options.IdleTimeout, frequency);
        if (_clock == ClockSource.Heartbeat)
        {
            HeartbeatClock.EnsureStarted();
        }

        _sweepTicks = ToTimestampTicks(_options.IdleTimeout / 2, frequency);
        _lastSweep = Now();
    }

    /// <summary>Gets the number of frames per window.</summary>
    public int WindowLength { get; }

    /// <summary>Gets the number of frames between the starts of consecutive windows.</summary>
    public int Stride { get; }

    /// <summary>Gets the number of values per frame.</summary>
    public int Channels { get; }

    /// <summary>Gets the number of streams currently buffered.</summary>
    public int StreamCount => _streams.Count;

    /// <summary>Gets the number of windows dropped because they contained NaN or infinite samples (<see cref="InvalidSampleHandling.DropWindow"/>).</summary>
    public long DroppedWindows => Interlocked.Read(ref _droppedWindows);

    /// <summary>Gets the number of streams evicted for being idle.</summary>
    public long EvictedStreams => Interlocked.Read(ref _evictedStreams);

    /// <summary>Gets the number of windows a stream completes over its first <paramref name="frames"/> frames: ⌊(n − L)/S⌋ + 1, or 0 when n &lt; L.</summary>
    /// <param name="frames">Frames appended to the stream so far.</param>
    /// <returns>The window count.</returns>
    public long WindowCount(long frames) => frames < WindowLength ? 0 : ((frames - WindowLength) / Stride) + 1;

    /// <summary>Appends interleaved frames to a stream and returns the windows they complete.</summary>
    /// <param name="streamId">The stream (device, session …); a new id starts a new stream.</param>
    /// <param name="frames">Whole frames of <see cref="Channels"/> values each, in time order.</param>
    /// <returns>Views of the completed windows, valid until the next append to or removal of this stream.</returns>
    /// <exception cref="ArgumentException">The input is not a whole number of frames, or holds NaN/infinity with <see cref="InvalidSampleHandling.Throw"/>.</exception>
    /// <exception cref="InvalidOperationException">The stream is new and <see cref="StreamWindowerOptions.MaxStreams"/> streams are already buffered.</exception>
    public StreamWindows Append(string streamId, ReadOnlySpan<float> frames)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);

        // A device usually sends several chunks in a row: the last stream is checked before the dictionary.
        var last = Volatile.Read(ref _last);
        var state = last is not null && string.Equals(last.Id, streamId, StringComparison.Ordinal) ? last : null;
        return AppendCore(ref state, streamId, frames);
    }

    /// <summary>
    /// Gets a handle to one stream, whose <see cref="WindowStreamHandle.Append"/> skips the lookup by id that
    /// <see cref="Append(string, ReadOnlySpan{float})"/> does on every call (for a host that keeps one
    /// object per connected device). The stream itself is created by the first append, as by id.
    /// </summary>
    /// <param name="streamId">The stream (device, session …).</param>
    /// <returns>A handle; appending through it is the same as appending by <paramref name="streamId"/>.</returns>
    public WindowStreamHandle OpenStream(string streamId)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        return new WindowStreamHandle(this, streamId);
    }

    /// <summary>
    /// One append: one clock read (with the system clock and a timeout of 10 s or more, a read of the
    /// heartbeat's cached tick count), the cached stream (or a lookup when there is none or it was removed
    /// or evicted since), and the buffering.
    /// </summary>
    /// <remarks>
    /// No lock or interlocked instruction on this path: appends to one stream never overlap (the caller's
    /// contract), and eviction and removal only take the stream out of the dictionary and mark it removed,
    /// never touching its buffer. An append that races with the eviction of its stream (a stream that has
    /// received nothing for the whole idle timeout) may still land in the evicted buffer and return its
    /// windows; the stream then starts afresh with the next append, as if that append had come a moment
    /// after the eviction. (A compare-exchange gate here cost 1.5 µs per 400 appends in
    /// <c>WindowingBenchmarks</c>.)
    /// </remarks>
    internal StreamWindows AppendCore(scoped ref StreamState? state, string streamId, ReadOnlySpan<float> frames)
    {
        // n / C as a multiply-high by ⌈2^64 / C⌉ (exact for every 32-bit n; Lemire et al. 2019), cheaper than a division.
        var frameCount = Channels == 1 ? frames.Length : (int)Math.BigMul(_channelsReciprocal, (ulong)frames.Length, out _);
        if (frameCount * Channels != frames.Length)
        {
            ThrowNotWholeFrames(streamId, frames.Length, nameof(frames));
        }

        var now = Now();
        if (now - Volatile.Read(ref _lastSweep) >= _sweepTicks)
        {
            Sweep(now);
        }

        while (true)
        {
            state ??= GetOrAddStream(streamId, now);
            if (!state.Removed)
            {
                if (!ReferenceEquals(Volatile.Read(ref _last), state))
                {
                    Volatile.Write(ref _last, state);
                }

                state.LastSeen = now;

                // Chunks shorter than a window (most of them) usually just extend the buffer: that path is inlined here.
                if (frameCount < WindowLength && state.TryAppendToBuffer(frames, frameCount, WindowLength, Stride, out var count))
                {
                    return state.BufferWindows(count, WindowLength);
                }

                return state.Append(frames, frameCount, this, streamId);
            }

            // Removed or evicted since it was cached: appending starts a new stream, as by id.
            Interlocked.CompareExchange(ref _last, null, state);
            state = null;
        }
    }

    /// <summary>Forgets a stream and its buffered frames.</summary>
    /// <param name="streamId">The stream.</param>
    /// <returns><see langword="true"/> if the stream existed.</returns>
    public bool Remove(string streamId)
    {
        if (!_streams.TryRemove(streamId, out var state))
        {
            return false;
        }

        state.MarkRemoved();
        return true;
    }

    /// <summary>Evicts every stream that has received nothing for <see cref="StreamWindowerOptions.IdleTimeout"/> (also done automatically during appends).</summary>
    /// <returns>The number of streams evicted.</returns>
    public int EvictIdle()
    {
        // On the heartbeat, a stamp may lag the moment of its append by up to HeartbeatClock.MaxLag: compared
        // with the real tick count and that much more, a stream is never evicted before its idle timeout.
        var (now, idle) = _clock == ClockSource.Heartbeat
            ? (Environment.TickCount64, _idleTicks + HeartbeatClock.MaxLag)
            : (Now(), _idleTicks);
        var evicted = 0;
        foreach (var (id, state) in _streams)
        {
            if (now - Volatile.Read(ref state.LastSeen) >= idle && _streams.TryRemove(new KeyValuePair<string, StreamState>(id, state)))
            {
                state.MarkRemoved();
                evicted++;
            }
        }

        Interlocked.Add(ref _evictedStreams, evicted);
        return evicted;
    }

    internal void CountDropped(int windows) => Interlocked.Add(ref _droppedWindows, windows);

    /// <summary>Idle timeouts from this length on are timed with <see cref="HeartbeatClock"/> when the clock is the system clock.</summary>
    internal static readonly TimeSpan HeartbeatMinimumTimeout = TimeSpan.FromSeconds(10);

    private enum ClockSource
    {
        Heartbeat,
        TickCount,
        Provider,
    }

    private long Now() => _clock switch
    {
        ClockSource.Heartbeat => HeartbeatClock.Ticks,
        ClockSource.TickCount => Environment.TickCount64,
        _ => _time.GetTimestamp(),
    };

    /// <summary>A duration in clock units, rounded up (so comparing raw timestamps is the same as comparing elapsed times).</summary>
    private static long ToTimestampTicks(TimeSpan duration, long frequency)
    {
        var ticks = (((Int128)duration.Ticks * frequency) + TimeSpan.TicksPerSecond - 1) / TimeSpan.TicksPerSecond;
        return ticks > long.MaxValue ? long.MaxValue : (long)ticks;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowNotWholeFrames(string streamId, int length, string paramName) =>
        throw new ArgumentException(
            $"Stream '{streamId}': {length} values is not a whole number of frames; expected a multiple of {Channels} (one value per channel per frame).",
            paramName);

    private static ModelCard ThrowIfNull(ModelCard card)
    {
        ArgumentNullException.ThrowIfNull(card);
        return card;
    }

    /// <summary>
    /// Copies <paramref name="source"/> and reports whether every value is finite: x − x is +0 (all bits
    /// clear) for finite x and NaN for NaN and ±infinity, so the bits of every x − x are OR-ed together
    /// and compared with zero once at the end (one subtraction and one OR per vector, no per-vector compare).
    /// </summary>
    internal static unsafe bool CopyFinite(ReadOnlySpan<float> source, Span<float> destination)
    {
        ref var src = ref MemoryMarshal.GetReference(source);
        ref var dst = ref MemoryMarshal.GetReference(destination);
        var length = (nuint)source.Length;
        nuint i = 0;
        if (Vector512.IsHardwareAccelerated && length >= 16)
        {
            // One unaligned vector first, then aligned stores from the destination's next 64-byte boundary
            // (a store straddling two cache lines costs two; the overlap is copied twice, identically).
            var head = Vector512.LoadUnsafe(ref src);
            head.StoreUnsafe(ref dst);
            var bits = (head - head).AsUInt32();
            i = ((64 - ((nuint)Unsafe.AsPointer(ref dst) & 63)) & 63) / sizeof(float);
            for (; i + 16 <= length; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref src, i);
                v.StoreUnsafe(ref dst, i);
                bits |= (v - v).AsUInt32();
            }

            if (i < length)
            {
                // The remainder as one vector ending at the end (overlapping values are copied twice, identically).
                var v = Vector512.LoadUnsafe(ref src, length - 16);
                v.StoreUnsafe(ref dst, length - 16);
                bits |= (v - v).AsUInt32();
            }

            return bits == Vector512<uint>.Zero;
        }

        if (Vector256.IsHardwareAccelerated && length >= 8)
        {
            var bits = Vector256<uint>.Zero;
            for (; i + 8 <= length; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref src, i);
                v.StoreUnsafe(ref dst, i);
                bits |= (v - v).AsUInt32();
            }

            if (i < length)
            {
                var v = Vector256.LoadUnsafe(ref src, length - 8);
                v.StoreUnsafe(ref dst, length - 8);
                bits |= (v - v).AsUInt32();
            }

            return bits == Vector256<uint>.Zero;
        }

        var finite = true;
        for (; i < length; i++)
        {
            var x = Unsafe.Add(ref src, i);
            Unsafe.Add(ref dst, i) = x;
            finite &= float.IsFinite(x);
        }

        return finite;
    }

    private static int FirstNonFinite(ReadOnlySpan<float> frames)
    {
        for (var i = 0; i < frames.Length; i++)
        {
            if (!float.IsFinite(frames[i]))
            {
                return i;
            }
        }

        return -1;
    }

    private void Sweep(long now)
    {
        lock (_sweepLock)
        {
            if (now - _lastSweep < _sweepTicks)
            {
                return;
            }

            Volatile.Write(ref _lastSweep, now);
        }

        EvictIdle();
    }

    private StreamState GetOrAddStream(string streamId, long now)
    {
        if (_streams.TryGetValue(streamId, out var state))
        {
            return state;
        }

        if (_streams.Count >= _options.MaxStreams && EvictIdle() == 0 && _streams.Count >= _options.MaxStreams)
        {
            throw new InvalidOperationException(
                $"Cannot start stream '{streamId}': {_streams.Count} streams are buffered and the limit is {_options.MaxStreams} (StreamWindowerOptions.MaxStreams); remove finished streams or raise the limit.");
        }

        return _streams.GetOrAdd(streamId, static (id, arg) => new StreamState(id, arg.Windower.WindowLength, arg.Windower.Channels) { LastSeen = arg.Now }, (Windower: this, Now: now));
    }

    /// <summary>
    /// One stream's buffer and window plan, touched only by the stream's appends (which never overlap);
    /// removal and eviction only set <see cref="Removed"/>, after which appends go to a new stream.
    /// </summary>
    internal sealed class StreamState(string id, int windowLength, int channels)
    {
        private volatile bool _removed;
        public long LastSeen;
        public long TotalFrames;
        private readonly Queue<long> _badFrames = new();
        private float[] _buffer = new float[4 * windowLength * channels];
        private float[]? _spare;
        private long[] _starts = new long[4];
        private long _bufferStartFrame;
        private int _bufferedFrames;
        private long _nextWindowStart;

        public string Id { get; } = id;

        /// <summary>⌊a / b⌋ for 0 ≤ a, 1 ≤ b, without a division when a &lt; b.</summary>
        private static long FloorDiv(long a, long b) => a < b ? 0 : a / b;

        /// <summary>Gets a value indicating whether the stream was removed or evicted (its appends then go to a new stream).</summary>
        public bool Removed => _removed;

        public void MarkRemoved() => _removed = true;

        /// <summary>
        /// The common append, small enough to inline: a chunk shorter than a window (so no window can be a view of it),
        /// no non-finite frame pending, room in the buffer. Copies the chunk with the NaN/infinity check and plans the
        /// windows it completes; <see langword="false"/> (nothing committed) sends the append to <see cref="Append"/>,
        /// which handles every case (compaction, zero-copy views, non-finite values) and gives the same result.
        /// (Inlined, this path measured 1.71–1.80 times the copy's time against 1.79–1.88 through <see cref="Append"/>,
        /// 50-frame chunks, paired runs.)
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool TryAppendToBuffer(ReadOnlySpan<float> frames, int frameCount, int windowLength, int stride, out int count)
        {
            count = 0;
            var offset = _bufferedFrames * channels;
            if (_badFrames.Count != 0 || offset + frames.Length > _buffer.Length || !CopyFinite(frames, _buffer.AsSpan(offset, frames.Length)))
            {
                return false;
            }

            _bufferedFrames += frameCount;
            var t1 = TotalFrames + frameCount;
            TotalFrames = t1;
            for (; _nextWindowStart + windowLength <= t1; _nextWindowStart += stride)
            {
                if (count == _starts.Length)
                {
                    Array.Resize(ref _starts, count * 2);
                }

                _starts[count++] = _nextWindowStart;
            }

            return true;
        }

        /// <summary>The first <paramref name="count"/> planned windows, all in the buffer.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public StreamWindows BufferWindows(int count, int windowLength) =>
            new(_buffer.AsSpan(0, _bufferedFrames * channels), _bufferStartFrame, default, long.MaxValue, _starts.AsSpan(0, count), windowLength, channels);

        /// <summary>Remembers the stream-relative index of every frame of <paramref name="frames"/> holding a non-finite value.</summary>
        public void MarkBadFrames(ReadOnlySpan<float> frames, int channelCount)
        {
            for (var f = 0; f < frames.Length / channelCount; f++)
            {
                if (!TensorPrimitives.IsFiniteAll(frames.Slice(f * channelCount, channelCount)))
                {
                    _badFrames.Enqueue(TotalFrames + f);
                }
            }
        }

        /// <summary>
        /// Buffers a chunk and returns the windows it completes. Windows that start inside the chunk are
        /// views of the caller's chunk (no copy) when the chunk is long enough to hold some; then only the
        /// frames the windows straddling the previous chunk need, and the tail future windows need, are
        /// copied (the tail into the spare buffer, which becomes the buffer: the views of this call stay
        /// intact). Otherwise the whole chunk is appended to the buffer.
        /// </summary>
        public StreamWindows Append(ReadOnlySpan<float> frames, int frameCount, StreamWindower owner, string streamId)
        {
            var l = owner.WindowLength;
            var stride = owner.Stride;
            var t0 = TotalFrames;
            var t1 = t0 + frameCount;

            // The plan: windows start at _nextWindowStart + k·stride while they end by t1.
            // Appends usually complete at most one window: the 64-bit divisions are skipped then.
            var windows = _nextWindowStart + l <= t1 ? FloorDiv(t1 - l - _nextWindowStart, stride) + 1 : 0;
            var nextAfter = _nextWindowStart + (windows * stride);
            var prefixEnd = t0;
            if (windows > 0 && _nextWindowStart < t0)
            {
                var lastStraddling = _nextWindowStart + (FloorDiv(Math.Min(t1 - l, t0 - 1) - _nextWindowStart, stride) * stride);
                prefixEnd = lastStraddling + l;
            }

            var tailStart = Math.Min(nextAfter, t1);
            var zeroCopy = windows > 0 && nextAfter - stride >= t0 && tailStart >= prefixEnd;

            if (zeroCopy)
            {
                if (!TensorPrimitives.IsFiniteAll(frames))
                {
                    RejectOrMark(frames, owner, streamId);
                }

                var prefix = (int)(prefixEnd - t0);
                if (prefix > 0)
                {
                    EnsureRoom(prefix);
                    frames[..(prefix * channels)].CopyTo(_buffer.AsSpan(_bufferedFrames * channels));
                    _bufferedFrames += prefix;
                }
            }
            else
            {
                EnsureRoom(frameCount);

                // The copy and the NaN/infinity check are one pass; nothing is committed before the check.
                if (!CopyFinite(frames, _buffer.AsSpan(_bufferedFrames * channels, frames.Length)))
                {
                    RejectOrMark(frames, owner, streamId);
                }

                _bufferedFrames += frameCount;
            }

            TotalFrames = t1;
            var count = 0;
            var dropped = 0;
            for (; _nextWindowStart + l <= t1; _nextWindowStart += stride)
            {
                while (_badFrames.Count > 0 && _badFrames.Peek() < _nextWindowStart)
                {
                    _badFrames.Dequeue();
                }

                if (_badFrames.Count > 0 && _badFrames.Peek() < _nextWindowStart + l)
                {
                    dropped++;
                    continue;
                }

                if (count == _starts.Length)
                {
                    Array.Resize(ref _starts, count * 2);
                }

                _starts[count++] = _nextWindowStart;
            }

            if (dropped > 0)
            {
                owner.CountDropped(dropped);
            }

            var bufferView = _buffer.AsSpan(0, _bufferedFrames * channels);
            var bufferStart = _bufferStartFrame;
            if (!zeroCopy)
            {
                return new StreamWindows(bufferView, bufferStart, default, long.MaxValue, _starts.AsSpan(0, count), l, channels);
            }

            // Keep the tail in the spare buffer and make it the buffer; this call's views keep the old one.
            var tail = (int)(t1 - tailStart);
            if (_spare is null || _spare.Length < tail * channels)
            {
                _spare = new float[Math.Max(_buffer.Length, tail * channels)];
            }

            frames[(int)((tailStart - t0) * channels)..].CopyTo(_spare);
            (_buffer, _spare) = (_spare, _buffer);
            _bufferStartFrame = tailStart;
            _bufferedFrames = tail;
            return new StreamWindows(bufferView, bufferStart, frames, t0, _starts.AsSpan(0, count), l, channels);
        }

        private void RejectOrMark(ReadOnlySpan<float> frames, StreamWindower owner, string streamId)
        {
            if (owner._options.InvalidSamples == InvalidSampleHandling.Throw)
            {
                var firstIndex = FirstNonFinite(frames);
                throw new ArgumentException(
                    $"Stream '{streamId}': frame {TotalFrames + (firstIndex / channels)} channel {firstIndex % channels} is {frames[firstIndex]}; expected finite sensor values (NaN and infinity are rejected).",
                    nameof(frames));
            }

            MarkBadFrames(frames, channels);
        }

        /// <summary>
        /// Makes room for <paramref name="frames"/> more frames. Lazy compaction: only when they do not fit
        /// are the frames no future window needs dropped; with room for four windows at most L − 1 frames
        /// move per ~3 L frames appended.
        /// </summary>
        private void EnsureRoom(int frames)
        {
            if ((_bufferedFrames + frames) * channels <= _buffer.Length)
            {
                return;
            }

            var keepFrom = Math.Min(_nextWindowStart, TotalFrames);
            var drop = (int)(keepFrom - _bufferStartFrame);
            if (drop > 0)
            {
                var keep = _bufferedFrames - drop;
                _buffer.AsSpan(drop * channels, keep * channels).CopyTo(_buffer);
                _bufferedFrames = keep;
                _bufferStartFrame = keepFrom;
            }

            var needed = (_bufferedFrames + frames) * channels;
            if (needed > _buffer.Length)
            {
                var grown = new float[Math.Max(needed, _buffer.Length * 2)];
                _buffer.AsSpan(0, _bufferedFrames * channels).CopyTo(grown);
                _buffer = grown;
            }
        }
    }
}
