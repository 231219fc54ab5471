namespace Har.Drift;

/// <summary>
/// Bounded memory of one device's (one stream's) physics evidence from the windows already scored: the still-to-still
/// turns (for the gyroscope's rotation consistency) and the still postures (for the gravity magnitude along each
/// accelerometer axis). Pass the same instance to <see cref="DriftScorer.Score(ReadOnlySpan{float}, DeviceHistory, ReadOnlySpan{long})"/>
/// for consecutive windows of one session, so that a minute of only walking is still judged on the turns and
/// postures the device showed earlier; <see cref="DriftMonitor"/> keeps one for its stream.
/// </summary>
/// <remarks>
/// <para>Only the past of the same device enters a verdict: a window is judged on its own evidence plus the evidence
/// of earlier frames (causal), never on later data and never on other devices. Memory is bounded: at most
/// <see cref="MaxRotationPairs"/> pairs (the most recent) and <see cref="MaxStillBlocksPerDirection"/> still blocks per
/// gravity direction (±x, ±y, ±z; the most recent of each, so an hour of standing does not push out the one time the
/// device lay flat).</para>
/// <para>Use one instance per device and session, and <see cref="Clear"/> it when the device is re-mounted,
/// recalibrated or replaced: evidence from before such a change would otherwise be mixed with evidence after it.
/// Thread-safe.</para>
/// </remarks>
internal sealed class DeviceHistory
{
    /// <summary>The most still-to-still pairs kept (the most recent).</summary>
    public const int MaxRotationPairs = 512;

    /// <summary>The most still 2-second blocks kept per dominant gravity direction (the most recent).</summary>
    public const int MaxStillBlocksPerDirection = 64;

    private readonly Lock _gate = new();
    private readonly Queue<RotationPair> _pairs = new();
    private readonly Queue<StillBlock>[] _blocks = [new(), new(), new(), new(), new(), new()];
    private long _committedEnd;

    /// <summary>Gets the end (exclusive frame index in the stream) of the frames whose evidence has been taken in.</summary>
    public long FramesSeen
    {
        get
        {
            lock (_gate)
            {
                return _committedEnd;
            }
        }
    }

    /// <summary>Gets the number of still-to-still pairs held.</summary>
    public int RotationPairs
    {
        get
        {
            lock (_gate)
            {
                return _pairs.Count;
            }
        }
    }

    /// <summary>Gets the number of still 2-second blocks held.</summary>
    public int StillBlocks
    {
        get
        {
            lock (_gate)
            {
                return _blocks.Sum(b => b.Count);
            }
        }
    }

    /// <summary>Gets the device's own earlier minutes for the within-device comparisons (guarded by the caller's scoring lock).</summary>
    internal SelfBaseline Self { get; } = new();

    /// <summary>Gets the device's sequential alarm state (guarded by the caller's scoring lock).</summary>
    internal AlarmState Alarm { get; } = new();

    /// <summary>Forgets all evidence (device re-mounted, recalibrated or replaced); frame positions restart at 0.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            Self.Clear();
            Alarm.Reset();
            _pairs.Clear();
            foreach (var b in _blocks)
            {
                b.Clear();
            }

            _committedEnd = 0;
        }
    }

    /// <summary>The evidence of frames before <paramref name="windowStart"/> (absolute stream index): items starting earlier.</summary>
    /// <remarks>With <paramref name="horizon"/>, only items starting at most that many frames before the window count, so a fault that starts mid-session outweighs the healthy evidence before it within a few minutes.</remarks>
    internal (List<RotationPair> Pairs, List<double[]> Blocks) Before(long windowStart, long horizon = long.MaxValue)
    {
        lock (_gate)
        {
            var from = horizon == long.MaxValue ? long.MinValue : windowStart - horizon;
            var pairs = _pairs.Where(p => p.Start < windowStart && p.Start >= from).ToList();
            var blocks = _blocks.SelectMany(q => q).Where(b => b.Start < windowStart && b.Start >= from).Select(b => b.Mean).ToList();
            return (pairs, blocks);
        }
    }

    /// <summary>
    /// Takes in the evidence of the window [<paramref name="windowStart"/>, <paramref name="windowEnd"/>) (items with
    /// frame indices relative to the window). Items starting before the end of what was already taken in are skipped,
    /// so overlapping windows never count the same evidence twice.
    /// </summary>
    internal void Commit(long windowStart, long windowEnd, IEnumerable<RotationPair> pairs, IEnumerable<StillBlock> blocks)
    {
        lock (_gate)
        {
            var from = _committedEnd;
            foreach (var p in pairs)
            {
                if (windowStart + p.Start >= from)
                {
                    _pairs.Enqueue(p with { Start = windowStart + p.Start, End = windowStart + p.End });
                    if (_pairs.Count > MaxRotationPairs)
                    {
                        _pairs.Dequeue();
                    }
                }
            }

            foreach (var b in blocks)
            {
                if (windowStart + b.Start < from)
                {
                    continue;
                }

                var v = b.Mean;
                var k = Math.Abs(v[0]) >= Math.Abs(v[1]) ? (Math.Abs(v[0]) >= Math.Abs(v[2]) ? 0 : 2) : (Math.Abs(v[1]) >= Math.Abs(v[2]) ? 1 : 2);
                var q = _blocks[(2 * k) + (v[k] < 0 ? 1 : 0)];
                q.Enqueue(b with { Start = windowStart + b.Start });
                if (q.Count > MaxStillBlocksPerDirection)
                {
                    q.Dequeue();
                }
            }

            _committedEnd = Math.Max(_committedEnd, windowEnd);
        }
    }

    /// <summary>Writes the evidence, the device's own earlier minutes and its alarm state (guarded by the caller's scoring lock).</summary>
    internal void Save(StateWriter w)
    {
        lock (_gate)
        {
            w.Write(_committedEnd);
            w.Write(_pairs.Count);
            foreach (var p in _pairs)
            {
                w.Write(p.Start);
                w.Write(p.End);
                w.Write(p.Gains);
                w.Write(p.Misfits);
                w.Write(p.Turn);
                w.Write(p.From);
                w.Write(p.To);
                w.Write(p.Quiet);
            }

            foreach (var q in _blocks)
            {
                w.Write(q.Count);
                foreach (var b in q)
                {
                    w.Write(b.Start);
                    w.Write(b.Mean);
                }
            }
        }

        Self.Save(w);
        Alarm.Save(w);
    }

    /// <summary>
    /// Replaces everything with what <see cref="Save"/> wrote, every frame position moved <paramref name="shift"/> frames
    /// earlier (a restarted stream numbers its frames from 0 again: the saved evidence then lies before them).
    /// </summary>
    internal void Restore(StateReader r, long shift)
    {
        lock (_gate)
        {
            _pairs.Clear();
            _committedEnd = r.ReadInt64() - shift;
            var pairs = r.ReadCount(MaxRotationPairs, "rotation pairs");
            for (var i = 0; i < pairs; i++)
            {
                var start = r.ReadInt64() - shift;
                var end = r.ReadInt64() - shift;
                _pairs.Enqueue(new RotationPair(start, end, r.ReadDoubles(MaxMaps, "gains"), r.ReadDoubles(MaxMaps, "misfits"))
                {
                    Turn = r.ReadDoubles(9, "turn"),
                    From = r.ReadDoubles(3, "from"),
                    To = r.ReadDoubles(3, "to"),
                    Quiet = r.ReadBoolean(),
                });
            }

            foreach (var q in _blocks)
            {
                q.Clear();
                var blocks = r.ReadCount(MaxStillBlocksPerDirection, "still blocks");
                for (var i = 0; i < blocks; i++)
                {
                    q.Enqueue(new StillBlock(r.ReadInt64() - shift, r.ReadDoubles(3, "still block mean")));
                }
            }
        }

        Self.Restore(r, shift);
        Alarm.Restore(r);
    }

    /// <summary>The most gyroscope maps a saved pair may carry (the checks use 13).</summary>
    private const int MaxMaps = 64;
}
