using System.Collections.Concurrent;
using System.Globalization;
using Har.Inference;

namespace Har.Deployment;

/// <summary>
/// Ground truth that arrives late (a user confirms an activity, a diary, a labelled study): the true
/// activity of a stream over a frame or time range, joined to the predictions every model version made on
/// those windows (served, shadow and mirrored runs alike), so the rollout's accuracy gate can compare the
/// candidate and the champion on the same labelled windows. One store per <see cref="ServingPipeline"/>
/// (<see cref="ServingPipeline.Feedback"/>); thread-safe.
/// </summary>
/// <remarks>
/// The pipeline records, per stream, a bounded ring of its recent windows (start frame, arrival time,
/// version, role, predicted class) without allocating; a label joins the windows held when it arrives,
/// and each window is labelled at most once. A frame range [start, end) labels the windows whose frames
/// all lie in it; a time range labels the windows whose span — from (arrival − window length ÷ sample
/// rate) to arrival, arrival being when the prediction was made — lies in it, which assumes the device
/// streams live at the model card's sample rate. Whole-window requests that name a stream can be
/// labelled by time only. Predictions are compared with the label by activity name, through each
/// version's own card.
/// </remarks>
public sealed partial class FeedbackStore
{
    private string[] _activities;
    private readonly Func<string, IReadOnlyList<string>?> _labelsOf;
    private readonly long _windowTicks;
    private readonly int _windowLength;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, StreamRing> _streams = new(StringComparer.Ordinal);
    private readonly Lock _versionLock = new();
    private readonly Lock _labelledLock = new();
    private readonly LabelledWindow[] _labelled;
    private readonly FeedbackMetrics? _metrics;
    private VersionInfo[] _versions = [];
    private long _labelledTotal;
    private readonly LabelOutbox<ShippedLabel> _shipped;
    private readonly LabelOutbox<ForwardedLabel> _forwarded;

    internal FeedbackStore(IReadOnlyList<string> activities, int windowLength, double sampleRateHz, Func<string, IReadOnlyList<string>?> labelsOf, TimeProvider time, FeedbackMetrics? metrics = null, FeedbackLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(activities);
        ArgumentOutOfRangeException.ThrowIfLessThan(windowLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(sampleRateHz, 0);
        _activities = [.. activities];
        _windowLength = windowLength;
        _windowTicks = (long)Math.Round(windowLength / sampleRateHz * TimeSpan.TicksPerSecond);
        _labelsOf = labelsOf;
        _time = time;
        _metrics = metrics;
        Limits = limits ?? new FeedbackLimits();
        _labelled = new LabelledWindow[Limits.LabelledWindows];
        _shipped = new(Limits.LabelledWindows);
        _forwarded = new(Limits.LabelledWindows);
    }

    /// <summary>
    /// Gets the activity names a label may carry: the served model's labels in class order, then any activity a version
    /// that has made predictions since names and they lack (a candidate that added <c>RUNNING</c>: its windows can be
    /// labelled as such, and the champion is wrong on them).
    /// </summary>
    public IReadOnlyList<string> Activities => Volatile.Read(ref _activities);

    internal FeedbackLimits Limits { get; }

    /// <summary>Gets the number of streams whose recent windows are held.</summary>
    internal int StreamCount => _streams.Count;

    /// <summary>
    /// Reports the true activity of a stream over frames [<paramref name="startFrame"/>, <paramref name="endFrame"/>)
    /// (stream-relative, as in <see cref="StreamPrediction.StartFrame"/>); labels every held window whose frames all lie in the range.
    /// </summary>
    /// <param name="streamId">The stream (device) id the frames were appended to.</param>
    /// <param name="activity">The true activity, one of <see cref="Activities"/> (case-insensitive).</param>
    /// <param name="startFrame">The first frame of the range.</param>
    /// <param name="endFrame">The frame after the range's last one.</param>
    /// <returns>The number of windows labelled now (0 when the stream's windows in the range were already labelled, evicted or never predicted).</returns>
    /// <exception cref="ArgumentException">The stream id is empty, the activity is unknown, or the range is empty, inverted or negative.</exception>
    public int Report(string streamId, string activity, long startFrame, long endFrame)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        var truth = ActivityIndex(activity);
        if (startFrame < 0 || endFrame <= startFrame)
        {
            throw new ArgumentException(Invariant($"Frame range [{startFrame}, {endFrame}) is empty, inverted or negative; expected 0 ≤ startFrame < endFrame."), nameof(endFrame));
        }

        _forwarded.Add(new ForwardedLabel(streamId, Activities[truth], startFrame, endFrame, null, null));
        return Join(streamId, truth, startFrame, endFrame, byTime: false);
    }

    /// <summary>
    /// Reports the true activity of a stream between <paramref name="from"/> and <paramref name="to"/>; labels
    /// every held window of the stream whose span (its arrival minus the window's duration at the card's sample rate, to its arrival) lies in the range.
    /// </summary>
    /// <param name="streamId">The stream (device) id.</param>
    /// <param name="activity">The true activity, one of <see cref="Activities"/> (case-insensitive).</param>
    /// <param name="from">When the activity started.</param>
    /// <param name="to">When it ended.</param>
    /// <returns>The number of windows labelled now.</returns>
    /// <exception cref="ArgumentException">The stream id is empty, the activity is unknown, or <paramref name="to"/> is not after <paramref name="from"/>.</exception>
    public int Report(string streamId, string activity, DateTimeOffset from, DateTimeOffset to)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        var truth = ActivityIndex(activity);
        if (to <= from)
        {
            throw new ArgumentException(Invariant($"Time range [{from:O}, {to:O}] is empty or inverted; expected from < to."), nameof(to));
        }

        _forwarded.Add(new ForwardedLabel(streamId, Activities[truth], null, null, from, to));
        return Join(streamId, truth, from.UtcTicks, to.UtcTicks, byTime: true);
    }

    /// <summary>
    /// Records the windows one version predicted for one call (the <see cref="FeedbackObserver"/>'s hot path: no
    /// allocation for a known stream and version). Whole windows (no start frames) are recorded with start −1: joinable by time only.
    /// </summary>
    /// <param name="streamId">The stream, or <see langword="null"/> for an anonymous request (not recorded).</param>
    /// <param name="versionName">The version that made the predictions.</param>
    /// <param name="starts">Each window's start frame (shadow and mirror runs carry the served call's); empty for whole windows.</param>
    /// <param name="predictions">The predictions, one per window.</param>
    internal void Record(string? streamId, string versionName, ReadOnlySpan<long> starts, ReadOnlySpan<Prediction> predictions)
    {
        if (streamId is null || predictions.IsEmpty)
        {
            return; // an anonymous request cannot be labelled
        }

        var version = Version(versionName);
        var ring = Stream(streamId);
        if (ring is null)
        {
            _metrics?.NotHeld(predictions.Length);
            return;
        }

        var arrival = _time.GetUtcNow().UtcTicks;
        lock (ring)
        {
            ring.LastUsed = arrival;
            for (var i = 0; i < predictions.Length; i++)
            {
                ring.Add(i < starts.Length ? starts[i] : -1, arrival, version.Id, Canonical(version, predictions[i].ClassIndex));
            }
        }
    }

    /// <summary>Records one prediction directly (the simulation, which has no pipeline).</summary>
    internal void Record(string streamId, long startFrame, string version, int predictedClass, DateTimeOffset arrival)
    {
        var info = Version(version);
        var ring = Stream(streamId);
        if (ring is null)
        {
            _metrics?.NotHeld(1);
            return;
        }

        lock (ring)
        {
            ring.LastUsed = arrival.UtcTicks;
            ring.Add(startFrame, arrival.UtcTicks, info.Id, Canonical(info, predictedClass));
        }
    }

    /// <summary>What the labelled windows held say about <paramref name="candidate"/> against <paramref name="stable"/>.</summary>
    internal AccuracyCounts Count(string candidate, string stable)
    {
        var versions = Volatile.Read(ref _versions);
        var c = Array.FindIndex(versions, v => v.Name == candidate);
        var s = Array.FindIndex(versions, v => v.Name == stable);
        var counts = default(AccuracyCounts);
        lock (_labelledLock)
        {
            var held = (int)Math.Min(_labelledTotal, _labelled.Length);
            for (var i = 0; i < held; i++)
            {
                ref readonly var w = ref _labelled[i];
                var pc = c < 0 ? Absent : w.PredictionOf(c);
                var ps = s < 0 ? Absent : w.PredictionOf(s);
                counts = counts.Add(pc, ps, w.Truth);
            }
        }

        return counts;
    }

    /// <summary>Gets the labelled windows and correct predictions of <paramref name="version"/> among those held (for tests and metrics).</summary>
    internal (long Labelled, long Correct) Accuracy(string version)
    {
        foreach (var v in Volatile.Read(ref _versions))
        {
            if (v.Name == version)
            {
                return (Interlocked.Read(ref v.Labelled), Interlocked.Read(ref v.Correct));
            }
        }

        return (0, 0);
    }

    private const short Absent = -2;

    private int ActivityIndex(string activity)
    {
        ArgumentNullException.ThrowIfNull(activity);
        return IndexOf(activity) is var i and >= 0
            ? i
            : throw new ArgumentException($"Unknown activity '{activity}'; expected one of: {string.Join(", ", Activities)}.", nameof(activity));
    }

    /// <summary>The activity's index among <see cref="Activities"/> (case-insensitive), or −1.</summary>
    private int IndexOf(string? activity) => activity is null ? -1 : Array.FindIndex(Volatile.Read(ref _activities), a => string.Equals(a, activity, StringComparison.OrdinalIgnoreCase));

    private int Join(string streamId, int truth, long from, long to, bool byTime)
    {
        if (!_streams.TryGetValue(streamId, out var ring))
        {
            return 0;
        }

        // Entries of one window (the served run and its shadow or mirror) share a start frame: group them.
        var matched = new List<(long Start, long Arrival, int Version, short Predicted)>();
        lock (ring)
        {
            ring.Match(from, to, byTime, _windowLength, _windowTicks, matched);
        }

        if (matched.Count == 0)
        {
            return 0;
        }

        matched.Sort(static (x, y) => x.Start != y.Start ? x.Start.CompareTo(y.Start) : x.Arrival.CompareTo(y.Arrival));
        var windows = 0;
        var i = 0;
        while (i < matched.Count)
        {
            // One window: the same start frame, runs within one window's duration of the first (a stream that
            // restarted reuses start frames later), each version once.
            var w = new LabelledWindow { Truth = (short)truth, Version0 = -1, Version1 = -1, Version2 = -1 };
            var (start, arrival, _, _) = matched[i];
            var j = i;
            do
            {
                w.Set(matched[j].Version, matched[j].Predicted);
                j++;
            }
            while (j < matched.Count && start >= 0 && matched[j].Start == start && matched[j].Arrival - arrival <= _windowTicks && w.PredictionOf(matched[j].Version) == Absent);

            Add(w);
            windows++;
            i = j;
        }

        return windows;
    }

    private void Add(in LabelledWindow window, bool ship = true)
    {
        var versions = Volatile.Read(ref _versions);
        if (ship && _shipped.IsKeeping)
        {
            _shipped.Add(Ship(versions, window));
        }

        if (ship && _journal is { } journal)
        {
            journal.Append(Ship(versions, window));
        }

        lock (_labelledLock)
        {
            var slot = (int)(_labelledTotal % _labelled.Length);
            if (_labelledTotal >= _labelled.Length)
            {
                Tally(versions, _labelled[slot], -1);
            }

            _labelled[slot] = window;
            _labelledTotal++;
            Tally(versions, window, +1);
        }

        if (_metrics is not null)
        {
            foreach (var v in versions)
            {
                if (window.PredictionOf(v.Id) != Absent)
                {
                    _metrics.Labelled(v.Name, Interlocked.Read(ref v.Labelled), Interlocked.Read(ref v.Correct));
                }
            }
        }

        static void Tally(VersionInfo[] versions, in LabelledWindow w, int sign)
        {
            foreach (var v in versions)
            {
                var p = w.PredictionOf(v.Id);
                if (p != Absent)
                {
                    Interlocked.Add(ref v.Labelled, sign);
                    if (p == w.Truth)
                    {
                        Interlocked.Add(ref v.Correct, sign);
                    }
                }
            }
        }
    }

    private static short Canonical(VersionInfo version, int classIndex) =>
        (uint)classIndex < (uint)version.ToCanonical.Length ? version.ToCanonical[classIndex] : (short)-1;

    private VersionInfo Version(string name)
    {
        foreach (var v in Volatile.Read(ref _versions))
        {
            if (ReferenceEquals(v.Name, name) || v.Name == name)
            {
                return v;
            }
        }

        lock (_versionLock)
        {
            foreach (var v in _versions)
            {
                if (v.Name == name)
                {
                    return v;
                }
            }

            // Map the version's class indexes to the activity names' order. An activity the store does not know yet (a
            // version that added a class) is appended, so that labels may name it; indexes already given never change.
            var labels = _labelsOf(name) ?? _activities;
            var activities = _activities;
            var map = new short[labels.Count];
            for (var i = 0; i < map.Length; i++)
            {
                var k = Array.FindIndex(activities, a => string.Equals(a, labels[i], StringComparison.OrdinalIgnoreCase));
                if (k < 0 && activities.Length < short.MaxValue)
                {
                    activities = [.. activities, labels[i]];
                    k = activities.Length - 1;
                }

                map[i] = (short)k;
            }

            Volatile.Write(ref _activities, activities);

            var info = new VersionInfo(name, _versions.Length, map);
            Volatile.Write(ref _versions, [.. _versions, info]);
            return info;
        }
    }

    /// <summary>
    /// The ring of a stream, or null when the store is full and every stream it holds made a prediction within
    /// <see cref="FeedbackLimits.MinimumIdleForEviction"/>: a flood of new stream ids cannot push out the windows of the
    /// devices that are streaming (whose labels would then join nothing); the new stream's windows are not held.
    /// </summary>
    private StreamRing? Stream(string streamId)
    {
        if (_streams.TryGetValue(streamId, out var ring))
        {
            return ring;
        }

        if (_streams.Count >= Limits.Streams && !EvictLeastRecentlyUsed())
        {
            return null;
        }

        return _streams.GetOrAdd(streamId, static (_, capacity) => new StreamRing(capacity), Limits.WindowsPerStream);
    }

    /// <summary>Removes the least recently used stream if it has been idle for <see cref="FeedbackLimits.MinimumIdleForEviction"/>; false when none is.</summary>
    private bool EvictLeastRecentlyUsed()
    {
        string? oldest = null;
        var oldestUse = long.MaxValue;
        foreach (var (id, ring) in _streams)
        {
            var used = Volatile.Read(ref ring.LastUsed);
            if (used < oldestUse)
            {
                oldestUse = used;
                oldest = id;
            }
        }

        if (oldest is null || _time.GetUtcNow().UtcTicks - oldestUse < Limits.MinimumIdleForEviction.Ticks)
        {
            return false;
        }

        _streams.TryRemove(oldest, out _);
        return true;
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private sealed class VersionInfo(string name, int id, short[] toCanonical)
    {
        public long Labelled;
        public long Correct;

        public string Name { get; } = name;

        public int Id { get; } = id;

        public short[] ToCanonical { get; } = toCanonical;
    }

    /// <summary>One stream's recent windows, oldest overwritten first; grows by doubling up to its capacity.</summary>
    private sealed class StreamRing(int capacity)
    {
        public long LastUsed;
        private long[] _start = new long[Math.Min(64, capacity)];
        private long[] _arrival = new long[Math.Min(64, capacity)];
        private int[] _version = new int[Math.Min(64, capacity)];
        private short[] _predicted = new short[Math.Min(64, capacity)];
        private bool[] _labelled = new bool[Math.Min(64, capacity)];
        private int _next;
        private int _count;

        public void Add(long start, long arrival, int version, short predicted)
        {
            if (_count == _start.Length && _start.Length < capacity)
            {
                Grow();
            }

            _start[_next] = start;
            _arrival[_next] = arrival;
            _version[_next] = version;
            _predicted[_next] = predicted;
            _labelled[_next] = false;
            _next = (_next + 1) % _start.Length;
            _count = Math.Min(_count + 1, _start.Length);
        }

        public void Match(long from, long to, bool byTime, int windowLength, long windowTicks, List<(long, long, int, short)> matched)
        {
            for (var i = 0; i < _count; i++)
            {
                if (_labelled[i])
                {
                    continue;
                }

                var hit = byTime
                    ? _arrival[i] - windowTicks >= from && _arrival[i] <= to
                    : _start[i] >= from && _start[i] + windowLength <= to;
                if (hit)
                {
                    _labelled[i] = true;
                    matched.Add((_start[i], _arrival[i], _version[i], _predicted[i]));
                }
            }
        }

        private void Grow()
        {
            // The ring is full and in order from _next: unroll it into arrays twice as large.
            var size = Math.Min(capacity, _start.Length * 2);
            _start = Unroll(_start, size);
            _arrival = Unroll(_arrival, size);
            _version = Unroll(_version, size);
            _predicted = Unroll(_predicted, size);
            _labelled = Unroll(_labelled, size);
            _next = _count;
        }

        private T[] Unroll<T>(T[] source, int size)
        {
            var target = new T[size];
            var head = source.Length - _next;
            Array.Copy(source, _next, target, 0, head);
            Array.Copy(source, 0, target, head, _next);
            return target;
        }
    }

    /// <summary>One labelled window: its true class and the (canonical) class each version predicted on it (up to three versions).</summary>
    private struct LabelledWindow
    {
        public short Truth;
        public int Version0;
        public short Predicted0;
        public int Version1;
        public short Predicted1;
        public int Version2;
        public short Predicted2;

        public readonly short PredictionOf(int version) =>
            Version0 == version ? Predicted0 : Version1 == version ? Predicted1 : Version2 == version ? Predicted2 : Absent;

        public void Set(int version, short predicted)
        {
            if (Version0 < 0 || Version0 == version)
            {
                (Version0, Predicted0) = (version, predicted);
            }
            else if (Version1 < 0 || Version1 == version)
            {
                (Version1, Predicted1) = (version, predicted);
            }
            else if (Version2 < 0 || Version2 == version)
            {
                (Version2, Predicted2) = (version, predicted);
            }
        }
    }
}

/// <summary>How much the <see cref="FeedbackStore"/> holds (its memory bound).</summary>
internal sealed class FeedbackLimits
{
    /// <summary>
    /// Gets the most streams whose windows are held; a new one beyond it evicts the least recently used if that one has
    /// made no prediction for <see cref="MinimumIdleForEviction"/>, and is otherwise not held (its windows are counted in
    /// <c>har_feedback_windows_not_held_total</c>).
    /// </summary>
    public int Streams { get; init; } = 4_096;

    /// <summary>
    /// Gets how long a held stream must have made no prediction before a new stream may take its place: the streams that are
    /// streaming keep their windows (and their labels something to join) however many new stream ids arrive.
    /// </summary>
    public TimeSpan MinimumIdleForEviction { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Gets the most recent windows (served, shadow and mirrored runs) held per stream, 23 bytes each: 1,024 ≈ 11 min of a
    /// 50 Hz stream with stride 64 and a mirror (17 min with stride 100). A ring grows to it only as its stream produces windows.
    /// </summary>
    public int WindowsPerStream { get; init; } = 1_024;

    /// <summary>Gets the most recent labelled windows the accuracy gate and metrics read.</summary>
    public int LabelledWindows { get; init; } = 65_536;
}

/// <summary>
/// The candidate's and the champion's correct and labelled counts on the labelled windows held: the
/// paired 2×2 table where both predicted the same window (<see cref="BothRight"/> … <see cref="BothWrong"/>),
/// and each version's own totals over every window it predicted.
/// </summary>
internal readonly record struct AccuracyCounts(long CandidateLabelled, long CandidateCorrect, long StableLabelled, long StableCorrect, long BothRight, long StableOnlyRight, long CandidateOnlyRight, long BothWrong)
{
    public long Pairs => BothRight + StableOnlyRight + CandidateOnlyRight + BothWrong;

    public AccuracyCounts Add(short candidate, short stable, short truth)
    {
        const short absent = -2;
        var (cl, cc, sl, sc, rr, sr, cr, ww) = (CandidateLabelled, CandidateCorrect, StableLabelled, StableCorrect, BothRight, StableOnlyRight, CandidateOnlyRight, BothWrong);
        if (candidate != absent)
        {
            cl++;
            cc += candidate == truth ? 1 : 0;
        }

        if (stable != absent)
        {
            sl++;
            sc += stable == truth ? 1 : 0;
        }

        if (candidate != absent && stable != absent)
        {
            switch ((candidate == truth, stable == truth))
            {
                case (true, true): rr++; break;
                case (false, true): sr++; break;
                case (true, false): cr++; break;
                default: ww++; break;
            }
        }

        return new(cl, cc, sl, sc, rr, sr, cr, ww);
    }
}
