using System.Globalization;

namespace Har.Drift;

/// <summary>Calibrates (on training windows) and applies (to a current window) the physics-based consistency checks.</summary>
internal static class SensorConsistency
{
    /// <summary>Candidate explanations of a rotation mismatch: the gyroscope rate mapped so that it would agree again.</summary>
    /// <remarks>
    /// Swapping two gyroscope axes maps the true rate by the permutation P; swapping two accelerometer axes mirrors the
    /// measured gravity, which the unchanged gyroscope then appears to turn by −P (a mirror turns rotations around).
    /// </remarks>
    private static readonly (string Description, int A, int B, bool Accelerometer, double[] Map)[] Hypotheses =
    [
        ("gyroscope x and y axes swapped", 0, 1, false, [0, 1, 0, 1, 0, 0, 0, 0, 1]),
        ("gyroscope x and z axes swapped", 0, 2, false, [0, 0, 1, 0, 1, 0, 1, 0, 0]),
        ("gyroscope y and z axes swapped", 1, 2, false, [1, 0, 0, 0, 0, 1, 0, 1, 0]),
        ("accelerometer x and y axes swapped", 0, 1, true, [0, -1, 0, -1, 0, 0, 0, 0, -1]),
        ("accelerometer x and z axes swapped", 0, 2, true, [0, 0, -1, 0, -1, 0, -1, 0, 0]),
        ("accelerometer y and z axes swapped", 1, 2, true, [-1, 0, 0, 0, 0, -1, 0, -1, 0]),

        // A flipped axis is a mirror too: a flipped gyroscope axis k is undone by F_k, a flipped accelerometer axis by −F_k.
        ("gyroscope x axis sign-flipped", 0, 0, false, [-1, 0, 0, 0, 1, 0, 0, 0, 1]),
        ("gyroscope y axis sign-flipped", 1, 1, false, [1, 0, 0, 0, -1, 0, 0, 0, 1]),
        ("gyroscope z axis sign-flipped", 2, 2, false, [1, 0, 0, 0, 1, 0, 0, 0, -1]),
        ("accelerometer x axis sign-flipped", 0, 0, true, [1, 0, 0, 0, -1, 0, 0, 0, -1]),
        ("accelerometer y axis sign-flipped", 1, 1, true, [-1, 0, 0, 0, 1, 0, 0, 0, -1]),
        ("accelerometer z axis sign-flipped", 2, 2, true, [-1, 0, 0, 0, -1, 0, 0, 0, 1]),
    ];

    /// <summary>The gyroscope maps every pair is evaluated under: as recorded, then each hypothesis.</summary>
    private static readonly double[][] Maps = [[1, 0, 0, 0, 1, 0, 0, 0, 1], .. Hypotheses.Select(h => h.Map)];

    /// <summary>
    /// Calibrates the checks on training windows. The sphere of the reference accelerometer is fitted to the still
    /// blocks leaving each window's group out (as the effect-size floors are), so a window is judged by a calibration
    /// it did not shape. The windows of each recording are scored in order with one <see cref="DeviceHistory"/>, as the
    /// scorer does for a device's consecutive windows, so the bounds hold for the statistics as they are computed.
    /// </summary>
    /// <returns>The reference, or null when the channels are not a 6-axis IMU or the data cannot determine it.</returns>
    public static SensorConsistencyReference? Calibrate(IReadOnlyList<string> channels, List<(string Group, double[][] Series)> windows, IReadOnlyList<int> recordings, double sampleRateHz, double quantile)
    {
        var acc = ChannelKinds.GravityAxes(channels);
        var gyro = ChannelKinds.GyroscopeAxes(channels);
        if (acc.Length != 3 || gyro.Length != 3 || windows.Count == 0)
        {
            return null;
        }

        var still = windows.Select(w => ImuPhysics.StillBlocks(w.Series[acc[0]], w.Series[acc[1]], w.Series[acc[2]], sampleRateHz)).ToList();
        if (ImuPhysics.SphereFit(still.SelectMany(b => b).Select(b => b.Mean)) is not { } all)
        {
            return null;
        }

        var groups = windows.Select(w => w.Group).Distinct(StringComparer.Ordinal).ToList();
        var fits = new Dictionary<string, (double[] Offset, double Radius)>(StringComparer.Ordinal);
        foreach (var g in groups)
        {
            fits[g] = groups.Count > 1
                ? ImuPhysics.SphereFit(still.Where((_, i) => windows[i].Group != g).SelectMany(b => b).Select(b => b.Mean)) ?? all
                : all;
        }

        var medians = new List<double>();
        var axes = new[] { new List<double>(), new List<double>(), new List<double>() };
        var gains = new List<double>();
        var residuals = new List<double>();
        var turnOffsets = new[] { new List<double>(), new List<double>(), new List<double>() };
        DeviceHistory? history = null;
        long start = 0;
        for (var i = 0; i < windows.Count; i++)
        {
            if (i == 0 || recordings[i] != recordings[i - 1])
            {
                history = new DeviceHistory();
                start = 0;
            }

            var (offset, radius) = fits[windows[i].Group];
            var e = Evaluate(acc, gyro, windows[i].Series, sampleRateHz, offset, radius, history!, start);
            start += windows[i].Series[acc[0]].Length;
            if (!double.IsNaN(e.MedianResidual))
            {
                medians.Add(e.MedianResidual);
            }

            for (var k = 0; k < 3; k++)
            {
                if (!double.IsNaN(e.AxisResidual[k]))
                {
                    axes[k].Add(e.AxisResidual[k]);
                }
            }

            for (var k = 0; k < 3; k++)
            {
                if (!double.IsNaN(e.TurnOffset[k]))
                {
                    turnOffsets[k].Add(e.TurnOffset[k]);
                }
            }

            if (e.Rotation[0].Testable)
            {
                gains.Add(e.Rotation[0].Gain);
                residuals.Add(e.Rotation[0].Residual);
            }
        }

        var lo = (1 - quantile) / 2;
        var hi = 1 - lo;
        double[] magnitude = [Q(medians, lo), Q(medians, hi)];
        var axisBounds = axes.Select(a => Widen(Q(a, lo), Q(a, hi))).ToArray();
        var turnBounds = turnOffsets.Select(a => Widen(Q(a, lo), Q(a, hi))).ToArray();
        return new SensorConsistencyReference(
            all.Offset,
            all.Radius,
            magnitude,
            [.. axisBounds.Select(b => b[0])],
            [.. axisBounds.Select(b => b[1])],
            [.. axes.Select(a => a.Count)],
            Widen(Q(gains, lo), Q(gains, hi)),
            Q(residuals, quantile) * (1 + BoundMargin),
            gains.Count,
            quantile,
            windows.Count,
            [.. turnBounds.Select(b => b[0])],
            [.. turnBounds.Select(b => b[1])],
            [.. turnOffsets.Select(a => a.Count)]);
    }

    /// <summary>
    /// Fraction of the width of the training windows' central range added on each side of it (and to the misfit limit).
    /// Consecutive windows of a session share their evidence (<see cref="DeviceHistory"/>), so the 267 HAPT training
    /// windows are only about 42 independent sessions, and a session whose statistic lies just beyond the training
    /// range raises a finding in every later window: the raw quantiles understate the spread between devices and people.
    /// </summary>
    internal const double BoundMargin = 0.5;

    /// <summary>How far back (seconds before the window) a device's earlier turns and still postures count.</summary>
    internal const double HistorySeconds = 150;

    private static double[] Widen(double lo, double hi)
    {
        var margin = BoundMargin * (hi - lo);
        return [lo - margin, hi + margin];
    }

    /// <summary>The physics statistics of one window, on its own evidence plus the device's earlier evidence; takes the window's evidence into the history.</summary>
    private static Evidence Evaluate(int[] acc, int[] gyro, double[][] series, double sampleRateHz, double[] offset, double radius, DeviceHistory history, long windowStart)
    {
        var blocks = ImuPhysics.BlockMeans(series[acc[0]], series[acc[1]], series[acc[2]], sampleRateHz);
        var g = ImuPhysics.Gravity(blocks, offset, radius);
        var still = ImuPhysics.StillBlocks(series[acc[0]], series[acc[1]], series[acc[2]], sampleRateHz);
        var (earlierPairs, earlierBlocks) = history.Before(windowStart, (long)Math.Round(HistorySeconds * sampleRateHz));
        var (axis, axisBlocks) = ImuPhysics.AxisResiduals(earlierBlocks.Concat(still.Select(b => b.Mean)), offset, radius);
        List<RotationPair> pairs = [];
        if (SameLength(series, acc, gyro))
        {
            pairs = ImuPhysics.Pairs([series[acc[0]], series[acc[1]], series[acc[2]]], [series[gyro[0]], series[gyro[1]], series[gyro[2]]], sampleRateHz, radius, Maps);
        }

        var combined = earlierPairs.Concat(pairs).ToList();
        var rotation = new RotationStatistics[Maps.Length];
        for (var m = 0; m < Maps.Length; m++)
        {
            rotation[m] = ImuPhysics.Summarize(combined, m);
        }

        var turnOffset = ImuPhysics.TurnOffset(combined, offset);
        var recent = new RotationStatistics[Maps.Length];
        for (var m = 0; m < Maps.Length; m++)
        {
            recent[m] = ImuPhysics.Summarize(pairs, m);
        }

        history.Commit(windowStart, windowStart + series[acc[0]].Length, pairs, still);
        return new Evidence(g.MedianResidual, g.Blocks, g.Direction, axis, axisBlocks, rotation, pairs.Count, turnOffset, recent);
    }

    // Recent: the rotation statistics (per map) over this window's own pairs only (empty below ImuPhysics.MinPairs):
    // they judge the turns the turn offset is solved with, and name a rate error before the device's earlier turns have
    // aged out of the combined median.
    private sealed record Evidence(double MedianResidual, int Blocks, double[] Direction, double[] AxisResidual, int[] AxisBlocks, RotationStatistics[] Rotation, int WindowPairs, double[] TurnOffset, RotationStatistics[] Recent);

    /// <summary>
    /// Runs the checks on a window (finite values per channel) and appends a finding per failed check. The window's
    /// evidence is combined with the device's earlier evidence in <paramref name="history"/> (frames before
    /// <paramref name="windowStart"/>), and then taken into it.
    /// </summary>
    public static void Check(SensorConsistencyReference reference, IReadOnlyList<string> channels, double[][] series, double sampleRateHz, List<SensorFinding> findings, DeviceHistory history, long windowStart)
    {
        var acc = ChannelKinds.GravityAxes(channels);
        var gyro = ChannelKinds.GyroscopeAxes(channels);
        if (acc.Length != 3 || gyro.Length != 3)
        {
            return;
        }

        var inv = CultureInfo.InvariantCulture;
        var e = Evaluate(acc, gyro, series, sampleRateHz, reference.AccelerometerOffset, reference.GravityMagnitude, history, windowStart);
        var magnitude = Excess(e.MedianResidual, reference.MagnitudeBounds[0], reference.MagnitudeBounds[1]);
        var worstAxis = -1;
        var worstAxisExcess = 0.0;
        for (var k = 0; k < 3; k++)
        {
            if (reference.AxisWindows[k] >= SensorConsistencyReference.MinCalibrationWindows)
            {
                var x = Excess(e.AxisResidual[k], reference.AxisLower[k], reference.AxisUpper[k]);
                if (x > worstAxisExcess)
                {
                    worstAxisExcess = x;
                    worstAxis = k;
                }
            }
        }

        if (magnitude > 0 || worstAxis >= 0)
        {
            var r0 = reference.GravityMagnitude;
            var d = e.Direction;
            if (worstAxis >= 0 && worstAxisExcess >= magnitude)
            {
                var k = worstAxis;
                var value = e.AxisResidual[k];
                var bound = value > reference.AxisUpper[k] ? reference.AxisUpper[k] : reference.AxisLower[k];
                var name = channels[acc[k]];
                findings.Add(new SensorFinding(SensorFindingKind.GravityMagnitude, name, value, bound, string.Create(inv,
                    $"Where gravity lies mostly along {name} ({e.AxisBlocks[k]} still two-second blocks of this window and the device's earlier ones), the accelerometer reads {(1 + value) * r0:G4} instead of {r0:G4} (healthy: {(1 + reference.AxisLower[k]) * r0:G4}–{(1 + reference.AxisUpper[k]) * r0:G4}): an offset or gain error on {name}, or on an axis tilted towards it."),
                    e.AxisBlocks[k], [name]));
            }
            else
            {
                var value = e.MedianResidual;
                var bound = value > reference.MagnitudeBounds[1] ? reference.MagnitudeBounds[1] : reference.MagnitudeBounds[0];
                var main = acc[Enumerable.Range(0, 3).MaxBy(i => Math.Abs(d[i]))];
                findings.Add(new SensorFinding(SensorFindingKind.GravityMagnitude, null, value, bound, string.Create(inv,
                    $"Over {e.Blocks} two-second blocks the accelerometer's gravity magnitude is {(1 + value) * r0:G4} instead of {r0:G4} (healthy windows: {(1 + reference.MagnitudeBounds[0]) * r0:G4}–{(1 + reference.MagnitudeBounds[1]) * r0:G4}); gravity pointed along ({d[0]:F2}, {d[1]:F2}, {d[2]:F2}), mostly {channels[main]}: an accelerometer offset along that direction, a gain error, or remapped axes."),
                    e.Blocks, [channels[acc[0]], channels[acc[1]], channels[acc[2]]]));
            }
        }

        string[] gyroNames = [channels[gyro[0]], channels[gyro[1]], channels[gyro[2]]];
        string[] allNames = [.. gyroNames, channels[acc[0]], channels[acc[1]], channels[acc[2]]];
        var rotationTestable = reference.RotationWindows >= SensorConsistencyReference.MinCalibrationWindows;
        var rotation = rotationTestable
            ? RotationFinding(reference, e.Rotation, acc, gyro, channels, gyroNames, allNames, e.Recent[0].Gain, string.Create(inv, $"{e.Rotation[0].Pairs} still-to-still pairs ({e.WindowPairs} in this window, the rest from the device's earlier windows)"))
            : null;
        if (rotation is not null && e.WindowPairs == 0)
        {
            // Only the device's earlier turns, which earlier scorings judged: the finding stands, the evidence is not new.
            rotation = rotation.AsRepeated();
        }

        if (rotation is not null)
        {
            findings.Add(rotation);
            if (Explained(rotation))
            {
                // The turn offset is solved with the gyroscope's turns: when a remapping, a gain or another sample rate
                // explains why they disagree with the accelerometer, the offset they imply means nothing.
                return;
            }
        }

        if (reference is { TurnOffsetLower: { } offLo, TurnOffsetUpper: { } offHi, TurnOffsetWindows: { } offN })
        {
            var worst = -1;
            var worstExcess = 0.0;
            for (var k = 0; k < 3; k++)
            {
                var x = offN[k] >= SensorConsistencyReference.MinCalibrationWindows ? Excess(e.TurnOffset[k], offLo[k], offHi[k]) : 0;
                if (x > worstExcess)
                {
                    worstExcess = x;
                    worst = k;
                }
            }

            if (worst >= 0)
            {
                // The device's earlier turns still outweigh a change in the combined rotation check; the window's own
                // turns may already disagree (a flipped axis, another sample rate), and then that, not an offset, is
                // what the turn offset saw.
                var recent = rotationTestable
                    ? RotationFinding(reference, e.Recent, acc, gyro, channels, gyroNames, allNames, e.Recent[0].Gain, string.Create(inv, $"this window's {e.WindowPairs} still-to-still pairs (the device's earlier turns still agree)"))
                    : null;
                if (recent is not null && Explained(recent))
                {
                    findings.Add(recent);
                    return;
                }

                var name = channels[acc[worst]];
                var value = e.TurnOffset[worst];
                var bound = value > offHi[worst] ? offHi[worst] : offLo[worst];
                var offsetFinding = new SensorFinding(SensorFindingKind.AccelerometerOffset, name, value, bound, string.Create(inv,
                    $"Over {e.Rotation[0].Pairs} still-to-still turns ({e.WindowPairs} in this window, the rest from the device's earlier windows) the gravity direction turned as the gyroscope says only if {name} carries an extra offset of {value:+0.000;-0.000} (healthy {offLo[worst]:+0.000;-0.000} to {offHi[worst]:+0.000;-0.000}, in the accelerometer's unit): an offset (bias) error on {name}."),
                    e.Rotation[0].Pairs, [name]);
                findings.Add(e.WindowPairs == 0 ? offsetFinding.AsRepeated() : offsetFinding);
            }
        }
    }

    /// <summary>
    /// The rotation-consistency finding of a set of turns (per map: as recorded, then each remapping), or null when the
    /// gain and the misfit are within the healthy range (or too few pairs). A misfit is explained by the remapping that
    /// brings it within the limit, if any; otherwise the gain is reported when it is out of range too.
    /// </summary>
    private static SensorFinding? RotationFinding(SensorConsistencyReference reference, RotationStatistics[] stats, int[] acc, int[] gyro, IReadOnlyList<string> channels, string[] gyroNames, string[] allNames, double recentGain, string where)
    {
        var inv = CultureInfo.InvariantCulture;
        var r = stats[0];
        if (!r.Testable)
        {
            return null;
        }

        // A median is past its bound only when its 95 % confidence bound is: the bounds were set on devices' longer
        // histories, and the median of the few turns of a device that has just started scatters more (a gain of 1.22 over
        // 4 turns of a healthy device raised an alarm).
        var gainLow = r.GainUpper < reference.RotationGainBounds[0];
        var gainHigh = r.GainLower > reference.RotationGainBounds[1];
        var inconsistent = r.ResidualLower > reference.RotationResidualLimit;
        if (!gainLow && !gainHigh && !inconsistent)
        {
            return null;
        }

        if (inconsistent || GainFarOut(reference, r.Gain))
        {
            // Which remapping of the axes would make the two sensors agree again? (Also for a gain far outside any
            // gain or rate error: a flipped accelerometer axis mirrors gravity between two still moments the gyroscope
            // saw no turn between.)
            var best = -1;
            var bestResidual = inconsistent ? r.Residual : reference.RotationResidualLimit;
            for (var h = 0; h < Hypotheses.Length; h++)
            {
                var alt = stats[h + 1];
                if (alt.Testable && alt.Residual < bestResidual && (inconsistent || (alt.Gain >= reference.RotationGainBounds[0] && alt.Gain <= reference.RotationGainBounds[1])))
                {
                    best = h;
                    bestResidual = alt.Residual;
                }
            }

            if (best >= 0 && bestResidual <= reference.RotationResidualLimit)
            {
                var hyp = Hypotheses[best];
                var axesOf = hyp.Accelerometer ? acc : gyro;
                string[] implicated = hyp.A == hyp.B ? [channels[axesOf[hyp.A]]] : [channels[axesOf[hyp.A]], channels[axesOf[hyp.B]]];
                var named = hyp.A == hyp.B ? $"sign of {implicated[0]} flipped" : $"{implicated[0]} ↔ {implicated[1]}";
                return Mismatch(reference, r, where, string.Create(inv, $"the data agree again ({bestResidual:F2}) if the {hyp.Description} ({named})"), implicated);
            }

            if (inconsistent && !gainLow && !gainHigh)
            {
                return Mismatch(reference, r, where, "no single swap of two axes explains it (a sign flip, a mounting rotation or a broken sensor)", allNames);
            }

            // A gain error also bends the predicted direction when the turn is not square to gravity: with the gain
            // out of range and no swap explaining the misfit, the gain is reported.
        }

        var bound = gainHigh ? reference.RotationGainBounds[1] : reference.RotationGainBounds[0];
        return new SensorFinding(SensorFindingKind.RotationMismatch, null, r.Gain, bound, string.Create(inv,
            $"The gyroscope reports {r.Gain:F2}× the turn of the gravity direction measured by the accelerometer over {where} (healthy {reference.RotationGainBounds[0]:F2}–{reference.RotationGainBounds[1]:F2}): a gyroscope gain (scale) error, or a stream at another rate than declared."),
            r.Pairs, gyroNames) { Recent = recentGain, Ideal = 1 };
    }

    /// <summary>Whether a rotation finding names its explanation (a remapped axis pair or flip, or the gyroscope's gain), not only that the turns disagree.</summary>
    private static bool Explained(SensorFinding f) => f.Implicated is { Count: <= 3 };

    /// <summary>A gain below half the healthy lower bound or above twice the upper one: no gain or rate error the diagnosis names (0.5×–4×) reaches it without the turns also pointing elsewhere.</summary>
    private static bool GainFarOut(SensorConsistencyReference reference, double gain) =>
        gain < 0.25 * reference.RotationGainBounds[0] || gain > 8 * reference.RotationGainBounds[1];

    private static SensorFinding Mismatch(SensorConsistencyReference reference, RotationStatistics r, string where, string explanation, string[] implicated) =>
        new(SensorFindingKind.RotationMismatch, null, r.Residual, reference.RotationResidualLimit, string.Create(CultureInfo.InvariantCulture,
            $"The gyroscope's rotation does not match the turn of the gravity direction: median misfit {r.Residual:F2} of the turn over {where} (healthy ≤ {reference.RotationResidualLimit:F2}); {explanation}."),
            r.Pairs, implicated);

    /// <summary>How far a statistic lies outside [lo, hi], relative to the width of the interval (0 inside, or NaN).</summary>
    private static double Excess(double value, double lo, double hi)
    {
        if (double.IsNaN(value))
        {
            return 0;
        }

        var width = Math.Max(hi - lo, 1e-12);
        return value > hi ? (value - hi) / width : value < lo ? (lo - value) / width : 0;
    }

    private static bool SameLength(double[][] series, int[] acc, int[] gyro)
    {
        var n = series[acc[0]].Length;
        return acc.Concat(gyro).All(i => series[i].Length == n);
    }

    private static double Q(List<double> values, double p)
    {
        if (values.Count == 0)
        {
            return 0;
        }

        var sorted = values.ToArray();
        Array.Sort(sorted);
        return PopulationStabilityIndex.Quantile(sorted, p);
    }
}
