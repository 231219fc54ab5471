using System.Globalization;

namespace Har.Drift;

/// <summary>Turns one scoring's findings into the evidence of the sequential alarm and a named cause.</summary>
internal static class Diagnosis
{
    /// <summary>The evidence per failed check of a scoring.</summary>
    /// <param name="channels">The scoring's channel verdicts.</param>
    /// <param name="findings">The scoring's sensor findings.</param>
    /// <param name="maxExcess">The cap of a finding's excess: the one the profile's thresholds were calibrated with (<see cref="AlarmReference.Cap"/>).</param>
    /// <param name="fromIdeal">Whether a ratio's excess is measured from its ideal value (<see cref="SensorFinding.Ideal"/>), as in profiles that store their cap; from 0 in older ones.</param>
    public static List<AlarmState.Evidence> Evidence(IReadOnlyList<ChannelVerdict> channels, IReadOnlyList<SensorFinding> findings, double maxExcess = MaxExcess, bool fromIdeal = true)
    {
        var evidence = new List<AlarmState.Evidence>();
        foreach (var c in channels)
        {
            if (c.Verdict == DriftVerdict.Drifted)
            {
                evidence.Add(new("channels", 1));
                break;
            }
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in findings)
        {
            var key = Key(f);
            if (f.Repeated || !seen.Add(key))
            {
                continue;
            }

            var decisive = f.Kind is SensorFindingKind.NonFinite or SensorFindingKind.Flatline or SensorFindingKind.Saturation or SensorFindingKind.Units;
            evidence.Add(new(key, decisive ? AlarmState.Decisive : Weight(f.Value, f.Threshold, maxExcess, fromIdeal ? f.Ideal : 0)));
        }

        return evidence;
    }

    /// <summary>
    /// Largest excess a failed finding adds to its evidence (in units of its bound's distance from the statistic's ideal
    /// value, see <see cref="Weight"/>): a statistic eight such units past its bound is certain enough. The thresholds are
    /// calibrated on the evidence this produces, so the cap does not move the false-alarm rate; with the former cap of 2
    /// a gain error of 5 % (the gravity magnitude about four units past its bound) counted as a failure by two and
    /// needed three scorings to alarm.
    /// </summary>
    public const double MaxExcess = 8;

    /// <summary>
    /// The evidence of one failed, non-decisive finding: 1, plus how far past its bound it lies in units of the bound's
    /// distance from the statistic's ideal value (<see cref="SensorFinding.Ideal"/>; at most <paramref name="maxExcess"/>).
    /// </summary>
    public static double Weight(double value, double threshold, double maxExcess = MaxExcess, double ideal = 0) =>
        1 + Math.Min(maxExcess, Math.Abs(value - threshold) / Math.Max(Math.Abs(threshold - ideal), 1e-3));

    /// <summary>
    /// The check (one CUSUM) a finding feeds: its kind, except that noise on a whole sensor (all its axes above the
    /// healthy floor together) is its own check, apart from one channel's noise floor; a finding that says which check
    /// it feeds (<see cref="SensorFinding.Check"/>, the frame step) feeds that one.
    /// </summary>
    public static string Key(SensorFinding f) =>
        f.Check is { } check ? check
        : f.Kind == SensorFindingKind.NoiseFloor && f.Channel is null && f.Implicated is { Count: > 1 } ? WholeSensorNoise
        : f.Kind == SensorFindingKind.SampleRate && f.Implicated is { Count: > 1 } ? MotionRate
        : f.Kind.ToString();

    /// <summary>The check of the stream rate from the gravity turn during motion (<see cref="MotionConsistency"/>), apart from the gait cadence.</summary>
    public const string MotionRate = "SampleRate/motion";

    /// <summary>The check of noise on every axis of a sensor.</summary>
    public const string WholeSensorNoise = "NoiseFloor/sensor";

    /// <summary>
    /// Names the cause the findings of a scoring point at: unit errors and stuck or clipped channels first (decisive on
    /// one window); then a remapping of the axes that makes the gyroscope and the accelerometer agree again (a sign flip or
    /// a swap, named by axis: it also explains the gravity, offset and orientation findings a flipped or swapped
    /// accelerometer axis raises); then the check that leads the sequential alarm; then the most specific finding.
    /// </summary>
    /// <param name="channels">The scoring's channel verdicts.</param>
    /// <param name="findings">The scoring's sensor findings.</param>
    /// <param name="leading">The check that leads the sequential alarm, or <see langword="null"/>.</param>
    /// <param name="unitsRaised">Whether the unit check's own statistic is at or above its threshold (a unit error already proven on this device).</param>
    /// <param name="sensorAxes">The axes of the sensor a channel belongs to (a unit is the sensor's, so a unit error names them all); <see langword="null"/> names the channel alone.</param>
    public static (DriftCause Cause, IReadOnlyList<string> Channels, string Text) Name(IReadOnlyList<ChannelVerdict> channels, IReadOnlyList<SensorFinding> findings, string? leading = null, bool unitsRaised = false, Func<string, IReadOnlyList<string>>? sensorAxes = null)
    {
        SensorFinding? Find(SensorFindingKind kind, Func<SensorFinding, bool>? where = null) =>
            findings.FirstOrDefault(f => f.Kind == kind && (where is null || where(f)));

        bool TurnsRejected() => Find(SensorFindingKind.RotationMismatch, ExplainedTurns) is not null || Find(SensorFindingKind.SampleRate) is not null;

        if (Find(SensorFindingKind.Units) is { } units)
        {
            return (DriftCause.Units, units.Implicated ?? [], units.Message);
        }

        if ((Find(SensorFindingKind.NonFinite) ?? Find(SensorFindingKind.Flatline)) is { } stuck)
        {
            return (DriftCause.Stuck, Names(stuck), stuck.Message);
        }

        if (Find(SensorFindingKind.Saturation) is { } clipped)
        {
            // A sensor in the wrong unit reads a constant factor too high (57.3× for deg/s): it clips at the configured
            // range in brisk moments even in a window too still for the unit check's statistic to show the factor. On a
            // device whose unit error is already proven, that clipping is its consequence, not a second fault.
            return unitsRaised
                ? (DriftCause.Units, sensorAxes is null ? Names(clipped) : [.. Names(clipped).SelectMany(sensorAxes).Distinct(StringComparer.Ordinal)], $"{clipped.Message} This device's unit error is already proven: a sensor reading a unit factor too high clips at the configured range.")
                : (DriftCause.Saturation, Names(clipped), clipped.Message);
        }

        // A remapping under which the turns agree again is the most specific explanation there is: the rotation check
        // tried every flip and swap, and only this one fits.
        if (Find(SensorFindingKind.RotationMismatch, f => f.Implicated is { Count: 1 }) is { } flip)
        {
            return (DriftCause.SignFlip, flip.Implicated!, flip.Message);
        }

        if (Find(SensorFindingKind.RotationMismatch, f => f.Implicated is { Count: 2 }) is { } swap)
        {
            return (DriftCause.AxisSwap, swap.Implicated!, swap.Message);
        }

        // The leading check names the cause, except the turn offset while the turns themselves disagree for a named
        // reason (gain, rate, remapped axes) or the stream's rate is found wrong: the offset is solved with the
        // gyroscope's turns integrated at the declared rate, so a gyroscope (or stream rate) that a check rejects makes
        // it meaningless. An unexplained misfit may be the offset's doing.
        if (leading is not null && Enum.TryParse<SensorFindingKind>(leading.Split('/')[0], out var lead) && Find(lead) is not null
            && !(lead == SensorFindingKind.AccelerometerOffset && TurnsRejected()))
        {
            var first = Name(channels, [.. findings.Where(f => f.Kind == lead || f.Kind == SensorFindingKind.SampleRate && lead == SensorFindingKind.RotationMismatch)]);
            if (first.Cause != DriftCause.None)
            {
                return first;
            }
        }

        if (Find(SensorFindingKind.SampleRate) is { } rate)
        {
            return (DriftCause.SampleRate, [], rate.Message);
        }

        // A gyroscope that turns 0.8× (or 0.5×, 2×, …) the gravity turn, with the accelerometer's gravity magnitude
        // right, is a stream at another rate than declared far more often than a gyroscope 20 % off its scale: the
        // integrated turn scales with the true sample interval. This window's own turns say it first (the combined
        // median still holds the device's turns from before the change).
        if (Find(SensorFindingKind.RotationMismatch, f => f.Implicated is { Count: 3 } && (RateRatio(f.Recent) ?? RateRatio(f.Value)) is not null) is { } rateGain
            && Find(SensorFindingKind.GravityMagnitude) is null)
        {
            var recent = RateRatio(rateGain.Recent) is not null;
            var ratio = (RateRatio(rateGain.Recent) ?? RateRatio(rateGain.Value))!.Value;
            var gain = recent ? rateGain.Recent : rateGain.Value;
            return (DriftCause.SampleRate, [], string.Create(CultureInfo.InvariantCulture,
                $"The gyroscope reports {gain:F2}× the turn of the gravity direction{(recent ? " over this window's turns" : string.Empty)} while the accelerometer's scale is right: the samples arrive at about {ratio:G3}× the declared rate (e.g. {50 * ratio:G3} Hz fed as 50 Hz), not a gyroscope gain error. {rateGain.Message}"));
        }

        if (Find(SensorFindingKind.NoiseFloor) is { } noise)
        {
            return (DriftCause.Noise, Names(noise), noise.Message);
        }

        if (Find(SensorFindingKind.RotationMismatch, f => f.Implicated is { Count: 3 }) is { } gyroGain)
        {
            return (DriftCause.Gain, gyroGain.Implicated!, gyroGain.Message);
        }

        // The turn offset only while the turns agree (see above).
        if (Find(SensorFindingKind.AccelerometerOffset) is { } offset && !TurnsRejected())
        {
            return (DriftCause.Offset, Names(offset), offset.Message);
        }

        if (Find(SensorFindingKind.GravityMagnitude, f => f.Channel is not null) is { } axis)
        {
            return (DriftCause.Offset, Names(axis), axis.Message);
        }

        if (Find(SensorFindingKind.GravityMagnitude) is { } magnitude)
        {
            return (DriftCause.Gain, magnitude.Implicated ?? [], magnitude.Message);
        }

        if (Find(SensorFindingKind.OrientationShift) is { } shift)
        {
            return (DriftCause.Rotation, [], shift.Message);
        }

        if (Find(SensorFindingKind.OrientationChange) is { } placement)
        {
            return (DriftCause.Placement, [], placement.Message);
        }

        if (Find(SensorFindingKind.RotationMismatch) is { } mismatch)
        {
            return (DriftCause.Unknown, mismatch.Implicated ?? [], mismatch.Message);
        }

        var drifted = channels.Where(c => c.Verdict == DriftVerdict.Drifted).Select(c => c.Channel).ToArray();
        if (drifted.Length > 0)
        {
            return (DriftCause.Unknown, drifted, $"The distribution of {string.Join(", ", drifted)} differs from the reference beyond the differences between people, and no sensor check explains it: a different placement, population or activity mix.");
        }

        return (DriftCause.None, [], "Every check passed.");
    }

    /// <summary>A rotation finding that names its explanation (one flipped axis, a swapped pair, or the gyroscope's gain on its three axes).</summary>
    private static bool ExplainedTurns(SensorFinding f) => f.Implicated is { Count: >= 1 and <= 3 };

    /// <summary>Sample-rate ratios (true / declared) a stream is commonly off by: 25, 40, 100 or 200 Hz fed as 50 Hz.</summary>
    private static readonly double[] RateRatios = [0.5, 0.8, 2, 4];

    /// <summary>
    /// Relative distance from a common ratio within which a gain out of the healthy range is read as a rate error: the
    /// healthy devices' gains lie within about ±6 % of 1 (the training range before its margin), and a rate error
    /// multiplies that spread by its ratio; 8 % keeps 0.8 (40 Hz fed as 50 Hz) apart from the healthy range above 0.9.
    /// </summary>
    internal const double RateTolerance = 0.08;

    /// <summary>The common sample-rate ratio a gyroscope gain lies within <see cref="RateTolerance"/> of, or null (also for NaN).</summary>
    internal static double? RateRatio(double gain)
    {
        foreach (var r in RateRatios)
        {
            if (Math.Abs((gain / r) - 1) <= RateTolerance)
            {
                return r;
            }
        }

        return null;
    }

    private static IReadOnlyList<string> Names(SensorFinding f) => f.Channel is { } c ? [c] : f.Implicated ?? [];
}
