using System.Collections.Concurrent;
using Har.Inference.Metrics;
using Har.Inference.Windowing;

namespace Har.Inference;

/// <summary>Receives the windows an append completed, while they are valid (see <see cref="StreamWindower.Append{TState, TResult}(string, ReadOnlySpan{float}, TState, StreamWindowsHandler{TState, TResult})"/>).</summary>
/// <typeparam name="TState">The caller's state (pass what the handler needs, so it captures nothing).</typeparam>
/// <typeparam name="TResult">What the handler returns, e.g. the <see cref="ValueTask"/> of <see cref="HarModel.PredictAsync(StreamWindows, Memory{float}, Memory{Prediction}, CancellationToken)"/>.</typeparam>
/// <param name="windows">The completed windows; valid only during the call.</param>
/// <param name="state">The caller's state.</param>
/// <returns>The handler's result.</returns>
internal delegate TResult StreamWindowsHandler<TState, TResult>(StreamWindows windows, TState state);

/// <summary>
/// Cuts per-stream sliding windows out of interleaved sensor frames (<c>ax ay az gx gy gz</c> …): a
/// window of <see cref="WindowLength"/> frames starts every <see cref="Stride"/> frames from the
/// stream's first frame, whatever the chunking of the appends.
/// </summary>
/// <remarks>
/// <para>
/// For a model that also reads frames before each window (<see cref="ModelCard.ContextFrames"/>), each window
/// handed out is the card's context and window long (longer with <see cref="StreamWindowerOptions.ContextFrames"/>): its context, then the window it labels. A
/// stream's first windows have less history than that, so the windower starts every stream with
/// <see cref="ModelCard.ContextFrames"/> copies of its first frame, as the training windows were padded; the
/// windows are then cut at the same frames as a model without context would cut them, and
/// <see cref="StreamWindows.GetStartFrame"/> gives the first frame of the labelled window.
/// </para>
/// <para>
/// Each stream keeps a sliding buffer of the frames its future windows still need, so windows are
/// handed out as views (<see cref="StreamWindows"/>) without a copy; the copy into the batch tensor
/// (with normalization fused in) is done by <see cref="HarModel"/>. Different streams may be appended
/// to concurrently; appends to one stream must not overlap (an overlapping append throws
/// <see cref="InvalidOperationException"/>). Memory is bounded: at most <see cref="StreamWindowerOptions.MaxStreams"/>
/// streams (then the least recently used idle one is evicted, or <see cref="StreamLimitExceededException"/>);
/// a timer (<see cref="TimeProvider"/>) evicts streams idle for <see cref="StreamWindowerOptions.IdleTimeout"/>
/// and trims streams silent for one sweep period to the frames their next window needs (less than one
/// window). Dispose the windower to stop the timer.
/// </para>
/// </remarks>
public sealed class StreamWindower : IDisposable
{
    private readonly ConcurrentDictionary<string, StreamState> _streams = new(StringComparer.Ordinal);
    private readonly StreamWindowerOptions _options;
    private readonly TimeProvider _time;
    private readonly ClockSource _clock;
    private readonly ulong _channelsReciprocal;
    private readonly long _idleTicks;
    private readonly long _sweepTicks;
    private readonly long _minimumIdleTicks;
    private readonly long _unlimitedFrames;
    private readonly ITimer _sweepTimer;
    private readonly string _geometry;
    private readonly int _contextFrames;
    private StreamState? _last;
    private long _droppedWindows;
    private long _evictedStreams;
    private int _disposed;

    /// <summary>Initializes a new instance of the <see cref="StreamWindower"/> class with the window geometry of a model card.</summary>
    /// <param name="card">The model card (window length, context frames, stride and channel count).</param>
    /// <param name="options">The options, or <see langword="null"/> for the defaults.</param>
    /// <param name="timeProvider">The clock for idle eviction and the sweep timer, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="StreamWindowerOptions.ContextFrames"/> is less than the card's <see cref="ModelCard.ContextFrames"/>, or an option is out of range.</exception>
    public StreamWindower(ModelCard card, StreamWindowerOptions? options = null, TimeProvider? timeProvider = null)
        : this(ThrowIfNull(card).WindowLength + ContextOf(card, options), card.Stride, card.ChannelCount, options, timeProvider, ContextOf(card, options))
    {
    }

    /// <summary>Initializes a new instance of the <see cref="StreamWindower"/> class.</summary>
    /// <param name="windowLength">Frames per window.</param>
    /// <param name="stride">Frames between the starts of consecutive windows.</param>
    /// <param name="channels">Values per frame.</param>
    /// <param name="options">The options, or <see langword="null"/> for the defaults.</param>
    /// <param name="timeProvider">The clock for idle eviction and the sweep timer, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <param name="contextFrames">Frames of each window that come before the span it labels; a stream starts with this many copies of its first frame.</param>
    internal StreamWindower(int windowLength, int stride, int channels, StreamWindowerOptions? options = null, TimeProvider? timeProvider = null, int contextFrames = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowLength, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(contextFrames);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(contextFrames, windowLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        _options = options ?? new StreamWindowerOptions();
        if (new Models.StreamWindowerOptionsValidator().Validate(null, _options) is { Failed: true } invalid)
        {
            // The same rules as the options' data annotations (and AddHarInference's validation), naming the option.
            throw new ArgumentOutOfRangeException(nameof(options), $"Invalid StreamWindowerOptions: {invalid.FailureMessage}");
        }
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
        _contextFrames = contextFrames;
        _geometry = contextFrames == 0
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{windowLength}x{stride}x{channels}")
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{contextFrames}+{windowLength - contextFrames}x{stride}x{channels}");
        _channelsReciprocal = channels == 1 ? 0 : (ulong.MaxValue / (ulong)channels) + 1;
        _idleTicks = ToTimestampTicks(_options.IdleTimeout, frequency);
        _minimumIdleTicks = ToTimestampTicks(_options.MinimumIdleForEviction, frequency);
        _unlimitedFrames = (long)_options.MaxWindowsPerAppend * stride;
        if (_clock == ClockSource.Heartbeat)
        {
            HeartbeatClock.EnsureStarted();
        }

        SweepPeriod = TimeSpan.FromTicks(Math.Clamp(_options.IdleTimeout.Ticks / 4, TimeSpan.TicksPerMillisecond, MaxSweepPeriod.Ticks));
        _sweepTicks = ToTimestampTicks(SweepPeriod, frequency);

        // The timer holds the windower weakly: a windower nobody disposed is still collected (its timer then stops).
        _sweepTimer = _time.CreateTimer(static s => Sweep((WeakReference<StreamWindower>)s!), new WeakReference<StreamWindower>(this), SweepPeriod, SweepPeriod);
        InferenceMeter.Track(this);
    }

    /// <summary>Gets the number of frames per window (for a model with context frames, the context and the labelled window).</summary>
    public int WindowLength { get; }

    /// <summary>Gets the number of frames each window holds before the span it labels (copies of the stream's first frame where the stream has not begun).</summary>
    internal int ContextFrames => _contextFrames;

    /// <summary>The context a windower for <paramref name="card"/> keeps: <see cref="StreamWindowerOptions.ContextFrames"/>, else the card's.</summary>
    private static int ContextOf(ModelCard card, StreamWindowerOptions? options)
    {
        var context = options?.ContextFrames ?? card.ContextFrames;
        if (context < card.ContextFrames || context > 1 << 20)
        {
            throw new ArgumentOutOfRangeException(nameof(options), context, $"StreamWindowerOptions.ContextFrames is {context}; model {card} reads {card.ContextFrames} frames before each window, so expected {card.ContextFrames} to {1 << 20} frames.");
        }

        return context;
    }

    /// <summary>Gets the number of frames between the starts of consecutive windows.</summary>
    public int Stride { get; }

    /// <summary>Gets the number of values per frame.</summary>
    public int Channels { get; }

    /// <summary>Gets the number of streams currently buffered.</summary>
    public int StreamCount => _streams.Count;

    /// <summary>Gets the number of windows dropped because they contained NaN or infinite samples (<see cref="InvalidSampleHandling.DropWindow"/>).</summary>
    internal long DroppedWindows => Interlocked.Read(ref _droppedWindows);

    /// <summary>Gets the number of streams evicted (idle for the timeout, or least recently used at the stream limit).</summary>
    public long EvictedStreams => Interlocked.Read(ref _evictedStreams);

    /// <summary>The longest time between two idle sweeps.</summary>
    internal static readonly TimeSpan MaxSweepPeriod = TimeSpan.FromSeconds(15);

    /// <summary>Idle timeouts from this length on are timed with <see cref="HeartbeatClock"/> when the clock is the system clock.</summary>
    internal static readonly TimeSpan HeartbeatMinimumTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Gets how often the timer sweeps: a quarter of the idle timeout, between 1 ms and 15 s.</summary>
    internal TimeSpan SweepPeriod { get; }

    internal InvalidSampleHandling InvalidSamples => _options.InvalidSamples;

    internal int MaxStreams => _options.MaxStreams;

    internal string Geometry => _geometry;

    /// <summary>Gets the bytes held by every stream's buffers (for tests and diagnostics).</summary>
    internal long RetainedBytes
    {
        get
        {
            long bytes = 0;
            foreach (var (_, state) in _streams)
            {
                bytes += state.RetainedBytes;
            }

            return bytes;
        }
    }

    /// <summary>Gets the number of windows a stream completes over its first <paramref name="frames"/> frames: ⌊(n − L)/S⌋ + 1, or 0 when n &lt; L, where n counts the context's copies of the first frame too.</summary>
    /// <param name="frames">Frames appended to the stream so far.</param>
    /// <returns>The window count.</returns>
    internal long WindowCount(long frames)
    {
        var n = frames > 0 ? frames + _contextFrames : 0;
        return n < WindowLength ? 0 : ((n - WindowLength) / Stride) + 1;
    }

    /// <summary>Appends interleaved frames to a stream and returns the windows they complete.</summary>
    /// <param name="streamId">The stream (device, session …); a new id starts a new stream.</param>
    /// <param name="frames">Whole frames of <see cref="Channels"/> values each, in time order.</param>
    /// <returns>Views of the completed windows, valid until the next append to or removal of this stream.</returns>
    /// <exception cref="ArgumentException">The input is not a whole number of frames, or holds NaN/infinity with <see cref="InvalidSampleHandling.Throw"/>; nothing was appended.</exception>
    /// <exception cref="WindowLimitExceededException">The frames would complete more than <see cref="StreamWindowerOptions.MaxWindowsPerAppend"/> windows; nothing was appended.</exception>
    /// <exception cref="StreamLimitExceededException">The stream is new, <see cref="StreamWindowerOptions.MaxStreams"/> streams are buffered and none could be evicted.</exception>
    /// <exception cref="InvalidOperationException">Another append to the same stream is in progress.</exception>
    public StreamWindows Append(string streamId, ReadOnlySpan<float> frames)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        var state = CachedState(streamId);
        var windows = AppendCore(ref state, streamId, frames);
        state!.Exit();
        return windows;
    }

    /// <summary>
    /// Appends interleaved frames to a stream and hands the windows they complete to <paramref name="handler"/>
    /// while they are valid, all or nothing: if the handler throws (e.g. <see cref="InferenceQueueFullException"/>),
    /// the append is undone, so the stream is as before the call and a retry does not append the frames twice.
    /// </summary>
    /// <typeparam name="TState">The handler's state.</typeparam>
    /// <typeparam name="TResult">The handler's result.</typeparam>
    /// <param name="streamId">The stream (device, session …); a new id starts a new stream.</param>
    /// <param name="frames">Whole frames of <see cref="Channels"/> values each, in time order.</param>
    /// <param name="state">Passed to <paramref name="handler"/> (so a static lambda captures nothing).</param>
    /// <param name="handler">Receives the windows (also when there are none); runs while the stream is held.</param>
    /// <returns>What <paramref name="handler"/> returned.</returns>
    /// <exception cref="ArgumentException">The input is not a whole number of frames, or holds NaN/infinity with <see cref="InvalidSampleHandling.Throw"/>; nothing was appended.</exception>
    /// <exception cref="WindowLimitExceededException">The frames would complete more than <see cref="StreamWindowerOptions.MaxWindowsPerAppend"/> windows; nothing was appended.</exception>
    /// <exception cref="StreamLimitExceededException">The stream is new, <see cref="StreamWindowerOptions.MaxStreams"/> streams are buffered and none could be evicted.</exception>
    /// <exception cref="InvalidOperationException">Another append to the same stream is in progress.</exception>
    internal TResult Append<TState, TResult>(string streamId, ReadOnlySpan<float> frames, TState state, StreamWindowsHandler<TState, TResult> handler)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        ArgumentNullException.ThrowIfNull(handler);
        var stream = CachedState(streamId);
        return AppendAndHandle(ref stream, streamId, frames, state, handler);
    }

    /// <summary>
    /// Gets a handle to one stream, whose <see cref="WindowStreamHandle.Append(ReadOnlySpan{float})"/> skips the lookup by id that
    /// <see cref="Append(string, ReadOnlySpan{float})"/> does on every call (for a host that keeps one
    /// object per connected device). The stream itself is created by the first append, as by id.
    /// </summary>
    /// <param name="streamId">The stream (device, session …).</param>
    /// <returns>A handle; appending through it is the same as appending by <paramref name="streamId"/>.</returns>
    internal WindowStreamHandle OpenStream(string streamId)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        return new WindowStreamHandle(this, streamId);
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

    /// <summary>Evicts every stream that has received nothing for <see cref="StreamWindowerOptions.IdleTimeout"/> (also done by a timer, and at the stream limit).</summary>
    /// <returns>The number of streams evicted.</returns>
    public int EvictIdle() => SweepCore(trim: false);

    /// <summary>Stops the sweep timer. The streams stay usable (idle ones are then evicted only at the stream limit or by <see cref="EvictIdle"/>).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _sweepTimer.Dispose();
            InferenceMeter.Untrack(this);
        }
    }

    internal void CountDropped(int windows) => Interlocked.Add(ref _droppedWindows, windows);

    internal TResult AppendAndHandle<TState, TResult>(scoped ref StreamState? stream, string streamId, ReadOnlySpan<float> frames, TState state, StreamWindowsHandler<TState, TResult> handler)
    {
        var windows = AppendCore(ref stream, streamId, frames);
        try
        {
            return handler(windows, state);
        }
        catch
        {
            UndoHeld(stream!, streamId); // a stream this refused append created is not left behind, empty, in the table
            throw;
        }
        finally
        {
            stream!.Exit();
        }
    }

    /// <summary>
    /// One append: one clock read (with the system clock and a timeout of 10 s or more, a read of the
    /// heartbeat's cached tick count), the cached stream (or a lookup when there is none or it was removed
    /// or evicted since), the stream's gate, and the buffering. Returns with the gate held (the caller exits it).
    /// </summary>
    /// <remarks>
    /// The gate is one interlocked instruction per append; it makes overlapping appends to one stream fail
    /// loudly, lets the sweep trim and evict only streams no append is using, and keeps the state for an undo
    /// until the caller lets go. A stream removed while an append holds it takes that append's frames with it;
    /// the next append starts a new stream under the same id.
    /// </remarks>
    internal StreamWindows AppendCore(scoped ref StreamState? state, string streamId, ReadOnlySpan<float> frames)
    {
        if (!TryAppendCore(ref state, streamId, frames, out var windows))
        {
            ThrowBusy(streamId);
        }

        return windows;
    }

    /// <summary>
    /// Appends interleaved frames to a stream and keeps the stream held until <paramref name="hold"/> is disposed, so the
    /// views of the windows the frames complete (<see cref="StreamHold.Windows"/>) stay valid across awaits: until they are
    /// scored (<see cref="HarModel.PredictAsync(StreamWindows, Memory{float}, Memory{Prediction}, CancellationToken)"/> copies
    /// them into the batch tensor) and whatever else reads them (e.g. drift monitoring) is done, without copying them out.
    /// Meanwhile other appends to the stream are refused and the idle sweep leaves it alone.
    /// </summary>
    /// <param name="streamId">The stream (device, session …); a new id starts a new stream.</param>
    /// <param name="frames">Whole frames of <see cref="Channels"/> values each, in time order; must not change until the hold is disposed (windows may be views of them).</param>
    /// <param name="hold">The hold: dispose it exactly once, or <see cref="StreamHold.Undo"/> the append instead.</param>
    /// <returns><see langword="false"/>, with nothing appended, when another append or hold of the stream is in progress (retry once it is over).</returns>
    /// <exception cref="ArgumentException">The input is not a whole number of frames, or holds NaN/infinity with <see cref="InvalidSampleHandling.Throw"/>; nothing was appended.</exception>
    /// <exception cref="WindowLimitExceededException">The frames would complete more than <see cref="StreamWindowerOptions.MaxWindowsPerAppend"/> windows; nothing was appended.</exception>
    /// <exception cref="StreamLimitExceededException">The stream is new, <see cref="StreamWindowerOptions.MaxStreams"/> streams are buffered and none could be evicted.</exception>
    public bool TryAppendAndHold(string streamId, ReadOnlyMemory<float> frames, out StreamHold hold)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        var state = CachedState(streamId);
        if (!TryAppendCore(ref state, streamId, frames.Span, out var windows))
        {
            hold = default;
            return false;
        }

        hold = new StreamHold(this, state!, streamId, frames, windows.Count, state!.BeginHold());
        return true;
    }

    /// <summary>Undoes a held append (the stream is as before it; a stream it created is removed).</summary>
    internal void UndoHeld(StreamState stream, string streamId)
    {
        CountDropped(-stream.Undo());
        if (stream.TotalFrames == 0 && _streams.TryRemove(new KeyValuePair<string, StreamState>(streamId, stream)))
        {
            stream.MarkRemoved();
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowBusy(string streamId) =>
        throw new InvalidOperationException($"Stream '{streamId}': another append to this stream is in progress; appends to one stream must not overlap.");

    /// <summary>As <see cref="AppendCore"/>; <see langword="false"/> (nothing appended, no gate held) when another append holds the stream.</summary>
    private bool TryAppendCore(scoped ref StreamState? state, string streamId, ReadOnlySpan<float> frames, out StreamWindows windows)
    {
        // n / C as a multiply-high by ⌈2^64 / C⌉ (exact for every 32-bit n; Lemire et al. 2019), cheaper than a division.
        var frameCount = Channels == 1 ? frames.Length : (int)Math.BigMul(_channelsReciprocal, (ulong)frames.Length, out _);
        if (frameCount * Channels != frames.Length)
        {
            ThrowNotWholeFrames(streamId, frames.Length, nameof(frames));
        }

        var now = Now();
        while (true)
        {
            state ??= GetOrAddStream(streamId, now);
            if (!state.TryEnter())
            {
                if (!state.Removed)
                {
                    windows = default;
                    return false;
                }
            }
            else if (state.Removed)
            {
                state.Exit();
            }
            else
            {
                try
                {
                    windows = AppendEntered(state, streamId, frames, frameCount, now);
                    return true;
                }
                catch
                {
                    state.Exit();
                    throw;
                }
            }

            // Removed or evicted since it was cached: appending starts a new stream, as by id.
            Interlocked.CompareExchange(ref _last, null, state);
            state = null;
        }
    }

    private StreamWindows AppendEntered(StreamState state, string streamId, ReadOnlySpan<float> frames, int frameCount, long now)
    {
        // A new stream of a model with context starts with that many copies of its first frame (see the remarks).
        var padding = _contextFrames > 0 && frameCount > 0 && state.TotalFrames == 0 ? _contextFrames : 0;
        if (frameCount + padding > _unlimitedFrames)
        {
            var windows = state.WindowsFor(frameCount + padding, WindowLength, Stride);
            if (windows > _options.MaxWindowsPerAppend)
            {
                InferenceMeter.CountRefusal(InferenceMeter.WindowLimit);
                throw new WindowLimitExceededException(_options.MaxWindowsPerAppend, windows, streamId);
            }
        }

        if (!ReferenceEquals(Volatile.Read(ref _last), state))
        {
            Volatile.Write(ref _last, state);
        }

        state.LastSeen = now;
        state.Snapshot();
        if (padding > 0)
        {
            state.PadStart(frames[..Channels], padding, this, streamId);
        }

        // Chunks shorter than a window (most of them) usually just extend the buffer: that path is inlined here.
        if (frameCount < WindowLength && state.TryAppendToBuffer(frames, frameCount, WindowLength, Stride, out var count))
        {
            return state.BufferWindows(count, WindowLength);
        }

        return state.Append(frames, frameCount, this, streamId);
    }

    /// <summary>The last stream appended to, if it is <paramref name="streamId"/> (a device usually sends several chunks in a row).</summary>
    private StreamState? CachedState(string streamId)
    {
        var last = Volatile.Read(ref _last);
        return last is not null && string.Equals(last.Id, streamId, StringComparison.Ordinal) ? last : null;
    }

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

    private static void Sweep(WeakReference<StreamWindower> target)
    {
        if (target.TryGetTarget(out var windower))
        {
            windower.SweepCore(trim: true);
        }
    }

    /// <summary>Evicts streams idle for the timeout; with <paramref name="trim"/>, trims streams silent for a sweep period.</summary>
    private int SweepCore(bool trim)
    {
        // On the heartbeat, a stamp may lag the moment of its append by up to HeartbeatClock.MaxLag: compared
        // with the real tick count and that much more, a stream is never evicted before its idle timeout.
        var (now, idle) = _clock == ClockSource.Heartbeat
            ? (Environment.TickCount64, _idleTicks + HeartbeatClock.MaxLag)
            : (Now(), _idleTicks);
        var evicted = 0;
        foreach (var (id, state) in _streams)
        {
            var silent = now - Volatile.Read(ref state.LastSeen);
            if (silent >= idle)
            {
                if (TryEvict(id, state))
                {
                    evicted++;
                }
            }
            else if (trim && silent >= _sweepTicks && !state.Trimmed && state.TryEnterSweep())
            {
                if (!state.Removed && now - Volatile.Read(ref state.LastSeen) >= _sweepTicks)
                {
                    state.Trim();
                }

                state.Exit();
            }
        }

        CountEvicted(evicted, InferenceMeter.Idle);
        return evicted;
    }

    /// <summary>Evicts a stream no append is using.</summary>
    private bool TryEvict(string id, StreamState state)
    {
        if (!state.TryEnterSweep())
        {
            return false;
        }

        var removed = _streams.TryRemove(new KeyValuePair<string, StreamState>(id, state));
        if (removed)
        {
            state.MarkRemoved();
        }

        state.Exit();
        return removed;
    }

    private void CountEvicted(int evicted, object reason)
    {
        if (evicted > 0)
        {
            Interlocked.Add(ref _evictedStreams, evicted);
            InferenceMeter.CountEvictions(evicted, reason);
        }
    }

    private StreamState GetOrAddStream(string streamId, long now)
    {
        if (_streams.TryGetValue(streamId, out var state))
        {
            return state;
        }

        if (_streams.Count >= _options.MaxStreams && EvictIdle() == 0 && _streams.Count >= _options.MaxStreams && !EvictLeastRecentlyUsed(now))
        {
            InferenceMeter.CountRefusal(InferenceMeter.StreamLimit);
            throw new StreamLimitExceededException(_options.MaxStreams, streamId);
        }

        return _streams.GetOrAdd(streamId, static (id, arg) => new StreamState(id, arg.Windower.WindowLength, arg.Windower.Channels, arg.Windower.ContextFrames) { LastSeen = arg.Now }, (Windower: this, Now: now));
    }

    /// <summary>At the stream limit: evicts the least recently used stream if it has been silent for <see cref="StreamWindowerOptions.MinimumIdleForEviction"/>.</summary>
    private bool EvictLeastRecentlyUsed(long now)
    {
        while (true)
        {
            string? oldestId = null;
            StreamState? oldest = null;
            foreach (var (id, state) in _streams)
            {
                if (oldest is null || Volatile.Read(ref state.LastSeen) < Volatile.Read(ref oldest.LastSeen))
                {
                    (oldestId, oldest) = (id, state);
                }
            }

            if (oldest is null || now - Volatile.Read(ref oldest.LastSeen) < _minimumIdleTicks)
            {
                return false;
            }

            if (TryEvict(oldestId!, oldest))
            {
                CountEvicted(1, InferenceMeter.LeastRecentlyUsed);
                return true;
            }

            if (!oldest.Removed)
            {
                return false; // in use right now: not idle
            }
        }
    }
}
