namespace Har.Drift;

/// <summary>
/// A device's own earlier minutes, for the within-device comparisons: the gravity directions of its 2-second blocks,
/// and per scored window its noise floor and gait cadence. Bounded (the most recent <see cref="MaxBlocks"/> blocks and
/// <see cref="MaxWindows"/> windows); only frames before the window being scored are compared with (causal).
/// </summary>
internal sealed class SelfBaseline
{
    /// <summary>The most block directions kept.</summary>
    public const int MaxBlocks = 900;

    /// <summary>The most per-window summaries kept.</summary>
    public const int MaxWindows = 60;

    /// <summary>Blocks of earlier frames needed before the direction shift is computed.</summary>
    public const int MinBlocks = 15;

    /// <summary>Quantile over a window's blocks of their angle to the device's earlier directions.</summary>
    public const double ShiftQuantile = 0.25;

    /// <summary>Earlier windows needed before the noise and cadence ratios are computed.</summary>
    public const int MinWindows = 1;

    private readonly Queue<(long Start, double[] Direction, bool Dynamic)> _blocks = new();
    private readonly Queue<(long End, double[] NoiseFloor, double Cadence, double GyroScale)> _windows = new();
    private long _committedEnd;

    /// <summary>Forgets everything.</summary>
    public void Clear()
    {
        _blocks.Clear();
        _windows.Clear();
        _committedEnd = 0;
    }

    /// <summary>Writes the earlier blocks and windows.</summary>
    public void Save(StateWriter w)
    {
        w.Write(_committedEnd);
        w.Write(_blocks.Count);
        foreach (var (start, direction, dynamic) in _blocks)
        {
            w.Write(start);
            w.Write(direction);
            w.Write(dynamic);
        }

        w.Write(_windows.Count);
        foreach (var (end, noise, cadence, gyro) in _windows)
        {
            w.Write(end);
            w.Write(noise);
            w.Write(cadence);
            w.Write(gyro);
        }
    }

    /// <summary>Replaces everything with what <see cref="Save"/> wrote, every frame position moved <paramref name="shift"/> frames earlier.</summary>
    public void Restore(StateReader r, long shift)
    {
        Clear();
        _committedEnd = r.ReadInt64() - shift;
        var blocks = r.ReadCount(MaxBlocks, "self-baseline blocks");
        for (var i = 0; i < blocks; i++)
        {
            _blocks.Enqueue((r.ReadInt64() - shift, r.ReadDoubles(3, "block direction"), r.ReadBoolean()));
        }

        var windows = r.ReadCount(MaxWindows, "self-baseline windows");
        for (var i = 0; i < windows; i++)
        {
            _windows.Enqueue((r.ReadInt64() - shift, r.ReadDoubles(MaxChannels, "noise floor"), r.ReadDouble(), r.ReadDouble()));
        }
    }

    /// <summary>The most channels a saved noise floor may have.</summary>
    private const int MaxChannels = 256;

    /// <summary>Compares a window (starting at stream frame <paramref name="windowStart"/>) with the device's earlier frames, then takes it in.</summary>
    public SelfComparison CompareAndCommit(SelfFeatures f, long windowStart, long windowEnd)
    {
        // Each block against the nearest earlier block of the same kind (gait with gait, postures with postures; any
        // when the kind was never seen); a low quantile over the window's blocks, because a rotation moves every block
        // while a posture the device had not shown before moves only its own.
        var earlier = new List<(double[] Direction, bool Dynamic)>();
        foreach (var b in _blocks)
        {
            if (b.Start + 1 <= windowStart)
            {
                earlier.Add((b.Direction, b.Dynamic));
            }
        }

        var shift = double.NaN;
        if (earlier.Count >= MinBlocks && f.Directions.Count > 0)
        {
            var hasDynamic = earlier.Any(e => e.Dynamic);
            var hasStatic = earlier.Any(e => !e.Dynamic);
            var angles = new double[f.Directions.Count];
            for (var i = 0; i < angles.Length; i++)
            {
                var (_, u, dyn) = f.Directions[i];
                var sameKindOnly = dyn ? hasDynamic : hasStatic;
                var best = -1.0;
                foreach (var (v, vd) in earlier)
                {
                    if (!sameKindOnly || vd == dyn)
                    {
                        best = Math.Max(best, (u[0] * v[0]) + (u[1] * v[1]) + (u[2] * v[2]));
                    }
                }

                angles[i] = Math.Acos(Math.Clamp(best, -1, 1)) * 180 / Math.PI;
            }

            shift = SelfFeatures.Percentile(angles, ShiftQuantile);
        }

        var noise = new List<double[]>();
        var cadences = new List<double>();
        var gyros = new List<double>();
        foreach (var w in _windows)
        {
            if (w.End <= windowStart)
            {
                noise.Add(w.NoiseFloor);
                if (!double.IsNaN(w.Cadence))
                {
                    cadences.Add(w.Cadence);
                }

                if (!double.IsNaN(w.GyroScale))
                {
                    gyros.Add(w.GyroScale);
                }
            }
        }

        var noiseRatio = new double[f.NoiseFloor.Length];
        for (var c = 0; c < noiseRatio.Length; c++)
        {
            if (noise.Count < MinWindows || double.IsNaN(f.NoiseFloor[c]))
            {
                noiseRatio[c] = double.NaN;
                continue;
            }

            var earlierFloors = noise.Select(x => x[c]).Where(x => !double.IsNaN(x)).ToArray();
            var med = earlierFloors.Length > 0 ? ImuPhysics.Median(earlierFloors) : double.NaN;
            noiseRatio[c] = med > 0 ? f.NoiseFloor[c] / med : double.NaN;
        }

        var cadenceRatio = cadences.Count >= MinWindows && !double.IsNaN(f.Cadence) ? f.Cadence / ImuPhysics.Median([.. cadences]) : double.NaN;
        var gyroRatio = gyros.Count >= MinWindows && !double.IsNaN(f.GyroscopeScale) ? f.GyroscopeScale / ImuPhysics.Median([.. gyros]) : double.NaN;

        // Take in the window's frames not seen before (overlapping windows never count a block twice).
        foreach (var d in f.Directions)
        {
            if (windowStart + d.Start >= _committedEnd)
            {
                _blocks.Enqueue((windowStart + d.Start, d.Direction, d.Dynamic));
                if (_blocks.Count > MaxBlocks)
                {
                    _blocks.Dequeue();
                }
            }
        }

        _windows.Enqueue((windowEnd, f.NoiseFloor, f.Cadence, f.GyroscopeScale));
        if (_windows.Count > MaxWindows)
        {
            _windows.Dequeue();
        }

        _committedEnd = Math.Max(_committedEnd, windowEnd);
        return new SelfComparison(shift, earlier.Count, noiseRatio, cadenceRatio, gyroRatio);
    }
}

/// <summary>A window against the device's own earlier frames (NaN where there was nothing to compare with).</summary>
/// <param name="DirectionShift">Lower quartile over the window's blocks of the angle (degrees) to the nearest gravity direction of the device's earlier blocks.</param>
/// <param name="EarlierBlocks">Earlier blocks compared with.</param>
/// <param name="NoiseRatio">Per channel, the window's noise floor over the median of the device's earlier windows'.</param>
/// <param name="CadenceRatio">The window's gait cadence over the median of the device's earlier cadences.</param>
/// <param name="GyroscopeRatio">The window's median |ω| in gait over the device's earlier median.</param>
internal sealed record SelfComparison(double DirectionShift, int EarlierBlocks, double[] NoiseRatio, double CadenceRatio, double GyroscopeRatio);
