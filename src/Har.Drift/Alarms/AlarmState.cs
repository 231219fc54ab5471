namespace Har.Drift;

/// <summary>
/// A device's sequential change detector: one CUSUM per check, S ← max(0, S + x − k), where x is the check's evidence
/// in the latest scoring (0 when it passed; when it failed, 1 plus how far past its bound it lay relative to the bound,
/// at most 1 + <see cref="Diagnosis.MaxExcess"/>; <see cref="Decisive"/> for checks that are certain on one window:
/// non-finite, stuck, saturated, unit errors). The device alarms while any S reaches its check's threshold h, which
/// is calibrated on that evidence (<see cref="AlarmCalibration"/>).
/// </summary>
internal sealed class AlarmState
{
    /// <summary>The allowance k subtracted per scoring.</summary>
    public const double Allowance = 0.5;

    /// <summary>The smallest threshold (two consecutive failures just past their bound, or one failure by half its bound).</summary>
    public const double MinThreshold = 1.5;

    /// <summary>Step added above the largest training statistic to be allowed.</summary>
    public const double Increment = 0.25;

    /// <summary>Evidence of a decisive check.</summary>
    public const double Decisive = 100;

    private readonly Dictionary<string, double> _sums = new(StringComparer.Ordinal);

    /// <summary>The cause the raised alarm names (null while it is lowered).</summary>
    private (DriftCause Cause, IReadOnlyList<string> Channels, string Text)? _episode;

    /// <summary>Gets the largest statistic over the checks.</summary>
    public double Statistic { get; private set; }

    /// <summary>Gets the check with the largest statistic, or null.</summary>
    public string? Leading { get; private set; }

    /// <summary>Gets the scorings taken in.</summary>
    public int Scorings { get; private set; }

    /// <summary>Clears the statistics.</summary>
    public void Reset()
    {
        _sums.Clear();
        _episode = null;
        Statistic = 0;
        Leading = null;
        Scorings = 0;
    }

    /// <summary>Gets the current statistic of every check that has one.</summary>
    public IReadOnlyDictionary<string, double> Sums => _sums;

    /// <summary>
    /// Takes in one scoring's evidence per failed check (checks not listed passed or had no evidence) and returns the
    /// check whose statistic lies furthest above its threshold (or closest to it), with the statistic and threshold.
    /// </summary>
    public (string? Check, double Statistic, double Threshold) Update(IReadOnlyList<Evidence> evidence, Func<string, double> threshold)
    {
        Scorings++;
        foreach (var key in _sums.Keys.ToList())
        {
            _sums[key] = Math.Max(0, _sums[key] - Allowance);
        }

        foreach (var e in evidence)
        {
            _sums.TryGetValue(e.Check, out var s);
            _sums[e.Check] = s + e.Weight;
        }

        string? best = null;
        double bestStatistic = 0, bestThreshold = MinThreshold, bestRatio = -1;
        foreach (var (key, s) in _sums)
        {
            var h = threshold(key);
            if (s > 0 && s / h > bestRatio)
            {
                bestRatio = s / h;
                best = key;
                bestStatistic = s;
                bestThreshold = h;
            }
        }

        Statistic = bestStatistic;
        Leading = best;
        return (best, bestStatistic, bestThreshold);
    }

    /// <summary>
    /// The cause the alarm names after a scoring, from the cause that scoring's findings name. A lowered alarm names
    /// that cause (the leading one) and forgets its episode. While the alarm stays raised, the cause it was raised for
    /// stays named unless this scoring names a definite cause (<see cref="IsDefinite"/>), or the check that holds the
    /// alarm up (the leading CUSUM) failed again in this scoring and names another cause that is not less definite; an
    /// alarm raised without a sensor cause (<see cref="DriftCause.Unknown"/>) takes the first one a scoring names. So
    /// a step that only the windows straddling it show (a frame turned between two still moments) keeps naming
    /// `Rotation` while its CUSUM decays, instead of `None` or a marginal finding of a later window; a flipped axis
    /// proven by the turns stays the cause when a later window without turns of its own sees only what the flip does
    /// to the gyroscope's gain; a unit error proven later replaces an offset named first.
    /// </summary>
    /// <param name="raised">Whether the alarm is raised after this scoring.</param>
    /// <param name="leadingFailedNow">Whether the leading check (<see cref="Leading"/>) failed in this scoring.</param>
    /// <param name="named">The cause this scoring's findings name (<see cref="Diagnosis.Name"/>).</param>
    /// <param name="nothingNamed">Why nothing is named, said with a kept cause when <paramref name="named"/> is <see cref="DriftCause.None"/>.</param>
    /// <returns>The cause, its channels and the diagnosis text the alarm carries.</returns>
    public (DriftCause Cause, IReadOnlyList<string> Channels, string Text) Name(bool raised, bool leadingFailedNow, (DriftCause Cause, IReadOnlyList<string> Channels, string Text) named, string nothingNamed = "no check failed in this scoring")
    {
        if (!raised)
        {
            _episode = null;
            return named;
        }

        if (_episode is { } kept && !IsDefinite(named.Cause) && !(kept.Cause is DriftCause.Unknown && named.Cause is not DriftCause.None))
        {
            if (named.Cause is DriftCause.None)
            {
                return Keep(kept, nothingNamed);
            }

            if (IsDefinite(kept.Cause) || !leadingFailedNow || named.Cause is DriftCause.Unknown)
            {
                var also = $"{named.Cause}{(named.Channels.Count > 0 ? $" ({string.Join(", ", named.Channels)})" : string.Empty)}";
                return Keep(kept, IsDefinite(kept.Cause)
                    ? $"this scoring alone points at {also}, which the {kept.Cause} outranks"
                    : $"this scoring's findings point at {also}, but the alarm stands on the earlier evidence");
            }
        }
        else if (_episode is null && named.Cause is DriftCause.None)
        {
            // Raised with nothing named yet: only a window too short to be scored for the alarm does that.
            return (DriftCause.Unknown, [], $"The alarm's statistic stands above its threshold from earlier scorings; {named.Text}");
        }

        _episode = named;
        return named;
    }

    /// <summary>Writes the statistics and the raised alarm's episode.</summary>
    public void Save(StateWriter w)
    {
        w.Write(_sums.Count);
        foreach (var (check, sum) in _sums)
        {
            w.Write(check);
            w.Write(sum);
        }

        w.Write(_episode is not null);
        if (_episode is { } e)
        {
            w.Write((int)e.Cause);
            w.Write(e.Channels);
            w.Write(e.Text);
        }

        w.Write(Statistic);
        w.WriteNullable(Leading);
        w.Write(Scorings);
    }

    /// <summary>Replaces everything with what <see cref="Save"/> wrote.</summary>
    public void Restore(StateReader r)
    {
        Reset();
        var sums = r.ReadCount(MaxChecks, "alarm checks");
        for (var i = 0; i < sums; i++)
        {
            _sums[r.ReadString()] = r.ReadDouble();
        }

        if (r.ReadBoolean())
        {
            _episode = (r.ReadEnum<DriftCause>(), r.ReadStrings(MaxChecks, "episode channels"), r.ReadString());
        }

        Statistic = r.ReadDouble();
        Leading = r.ReadNullableString();
        Scorings = r.ReadInt32();
    }

    /// <summary>The most checks (and channels of a cause) a saved alarm state may name.</summary>
    private const int MaxChecks = 1024;

    /// <summary>Causes one window proves: a unit error, a stuck or clipped channel, a flipped or swapped axis (the only remapping under which the turns agree).</summary>
    internal static bool IsDefinite(DriftCause cause) =>
        cause is DriftCause.Units or DriftCause.Stuck or DriftCause.Saturation or DriftCause.SignFlip or DriftCause.AxisSwap;

    private static (DriftCause Cause, IReadOnlyList<string> Channels, string Text) Keep((DriftCause Cause, IReadOnlyList<string> Channels, string Text) kept, string why) =>
        (kept.Cause, kept.Channels, $"{kept.Text} (The cause this alarm was raised for; {why}.)");

    /// <summary>One failed check of one scoring.</summary>
    /// <param name="Check">The check (one CUSUM each).</param>
    /// <param name="Weight">The evidence x.</param>
    internal readonly record struct Evidence(string Check, double Weight);
}
