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
    ];

    /// <summary>
    /// Calibrates the checks on training windows. The sphere of the reference accelerometer is fitted leaving each
    /// window's group out (as the effect-size floors are), so a window is judged by a calibration it did not shape.
    /// </summary>
    /// <returns>The reference, or null when the channels are not a 6-axis IMU or the data cannot determine it.</returns>
    public static SensorConsistencyReference? Calibrate(IReadOnlyList<string> channels, List<(string Group, double[][] Series)> windows, double sampleRateHz, double quantile)
    {
        var acc = ChannelKinds.GravityAxes(channels);
        var gyro = ChannelKinds.GyroscopeAxes(channels);
        if (acc.Length != 3 || gyro.Length != 3 || windows.Count == 0)
        {
            return null;
        }

        var blocks = windows.Select(w => ImuPhysics.BlockMeans(w.Series[acc[0]], w.Series[acc[1]], w.Series[acc[2]], sampleRateHz)).ToList();
        if (ImuPhysics.SphereFit(blocks.SelectMany(b => b)) is not { } all)
        {
            return null;
        }

        var groups = windows.Select(w => w.Group).Distinct(StringComparer.Ordinal).ToList();
        var fits = new Dictionary<string, (double[] Offset, double Radius)>(StringComparer.Ordinal);
        foreach (var g in groups)
        {
            fits[g] = groups.Count > 1
                ? ImuPhysics.SphereFit(blocks.Where((_, i) => windows[i].Group != g).SelectMany(b => b)) ?? all
                : all;
        }

        var medians = new List<double>();
        var axes = new[] { new List<double>(), new List<double>(), new List<double>() };
        var gains = new List<double>();
        var residuals = new List<double>();
        for (var i = 0; i < windows.Count; i++)
        {
            var (offset, radius) = fits[windows[i].Group];
            var g = ImuPhysics.Gravity(blocks[i], offset, radius);
            if (!double.IsNaN(g.MedianResidual))
            {
                medians.Add(g.MedianResidual);
            }

            for (var k = 0; k < 3; k++)
            {
                if (!double.IsNaN(g.AxisResidual[k]))
                {
                    axes[k].Add(g.AxisResidual[k]);
                }
            }

            var s = windows[i].Series;
            if (SameLength(s, acc, gyro))
            {
                var r = ImuPhysics.Rotation([s[acc[0]], s[acc[1]], s[acc[2]]], [s[gyro[0]], s[gyro[1]], s[gyro[2]]], sampleRateHz, radius, ImuPhysics.Identity);
                if (r.Testable)
                {
                    gains.Add(r.Gain);
                    residuals.Add(r.Residual);
                }
            }
        }

        var lo = (1 - quantile) / 2;
        var hi = 1 - lo;
        return new SensorConsistencyReference(
            all.Offset,
            all.Radius,
            [Q(medians, lo), Q(medians, hi)],
            [.. axes.Select(a => Q(a, lo))],
            [.. axes.Select(a => Q(a, hi))],
            [.. axes.Select(a => a.Count)],
            [Q(gains, lo), Q(gains, hi)],
            Q(residuals, quantile),
            gains.Count,
            quantile,
            windows.Count);
    }

    /// <summary>Runs the checks on a window (finite values per channel) and appends a finding per failed check.</summary>
    public static void Check(SensorConsistencyReference reference, IReadOnlyList<string> channels, double[][] series, double sampleRateHz, List<SensorFinding> findings)
    {
        var acc = ChannelKinds.GravityAxes(channels);
        var gyro = ChannelKinds.GyroscopeAxes(channels);
        if (acc.Length != 3 || gyro.Length != 3)
        {
            return;
        }

        var inv = CultureInfo.InvariantCulture;
        var blocks = ImuPhysics.BlockMeans(series[acc[0]], series[acc[1]], series[acc[2]], sampleRateHz);
        var g = ImuPhysics.Gravity(blocks, reference.AccelerometerOffset, reference.GravityMagnitude);
        var magnitude = Excess(g.MedianResidual, reference.MagnitudeBounds[0], reference.MagnitudeBounds[1]);
        var worstAxis = -1;
        var worstAxisExcess = 0.0;
        for (var k = 0; k < 3; k++)
        {
            if (reference.AxisWindows[k] >= SensorConsistencyReference.MinCalibrationWindows)
            {
                var e = Excess(g.AxisResidual[k], reference.AxisLower[k], reference.AxisUpper[k]);
                if (e > worstAxisExcess)
                {
                    worstAxisExcess = e;
                    worstAxis = k;
                }
            }
        }

        if (magnitude > 0 || worstAxis >= 0)
        {
            var r0 = reference.GravityMagnitude;
            var d = g.Direction;
            if (worstAxis >= 0 && worstAxisExcess >= magnitude)
            {
                var k = worstAxis;
                var value = g.AxisResidual[k];
                var bound = value > reference.AxisUpper[k] ? reference.AxisUpper[k] : reference.AxisLower[k];
                var name = channels[acc[k]];
                findings.Add(new SensorFinding(SensorFindingKind.GravityMagnitude, name, value, bound, string.Create(inv,
                    $"Where gravity lies mostly along {name} ({g.AxisBlocks[k]} of {g.Blocks} two-second blocks), the accelerometer reads {(1 + value) * r0:G4} instead of {r0:G4} (healthy windows: {(1 + reference.AxisLower[k]) * r0:G4}–{(1 + reference.AxisUpper[k]) * r0:G4}): an offset or gain error on {name}, or on an axis tilted towards it."),
                    g.AxisBlocks[k], [name]));
            }
            else
            {
                var value = g.MedianResidual;
                var bound = value > reference.MagnitudeBounds[1] ? reference.MagnitudeBounds[1] : reference.MagnitudeBounds[0];
                var main = acc[Enumerable.Range(0, 3).MaxBy(i => Math.Abs(d[i]))];
                findings.Add(new SensorFinding(SensorFindingKind.GravityMagnitude, null, value, bound, string.Create(inv,
                    $"Over {g.Blocks} two-second blocks the accelerometer's gravity magnitude is {(1 + value) * r0:G4} instead of {r0:G4} (healthy windows: {(1 + reference.MagnitudeBounds[0]) * r0:G4}–{(1 + reference.MagnitudeBounds[1]) * r0:G4}); gravity pointed along ({d[0]:F2}, {d[1]:F2}, {d[2]:F2}), mostly {channels[main]}: an accelerometer offset along that direction, a gain error, or remapped axes."),
                    g.Blocks, [channels[acc[0]], channels[acc[1]], channels[acc[2]]]));
            }
        }

        if (reference.RotationWindows < SensorConsistencyReference.MinCalibrationWindows || !SameLength(series, acc, gyro))
        {
            return;
        }

        double[][] a = [series[acc[0]], series[acc[1]], series[acc[2]]];
        double[][] w = [series[gyro[0]], series[gyro[1]], series[gyro[2]]];
        var r = ImuPhysics.Rotation(a, w, sampleRateHz, reference.GravityMagnitude, ImuPhysics.Identity);
        if (!r.Testable)
        {
            return;
        }

        var gainLow = r.Gain < reference.RotationGainBounds[0];
        var gainHigh = r.Gain > reference.RotationGainBounds[1];
        var inconsistent = r.Residual > reference.RotationResidualLimit;
        if (!gainLow && !gainHigh && !inconsistent)
        {
            return;
        }

        string[] gyroNames = [channels[gyro[0]], channels[gyro[1]], channels[gyro[2]]];
        if (inconsistent && (gainLow || gainHigh))
        {
            // A gain error also bends the predicted direction when the turn is not square to gravity: if undoing the
            // gain makes the sensors agree, the gain is the explanation.
            var undo = 1 / r.Gain;
            var corrected = ImuPhysics.Rotation(a, w, sampleRateHz, reference.GravityMagnitude, [undo, 0, 0, 0, undo, 0, 0, 0, undo]);
            inconsistent = !(corrected.Testable && corrected.Residual <= reference.RotationResidualLimit);
        }

        if (inconsistent)
        {
            // Which remapping of the axes would make the two sensors agree again?
            var best = -1;
            var bestResidual = r.Residual;
            for (var h = 0; h < Hypotheses.Length; h++)
            {
                var alt = ImuPhysics.Rotation(a, w, sampleRateHz, reference.GravityMagnitude, Hypotheses[h].Map);
                if (alt.Testable && alt.Residual < bestResidual)
                {
                    best = h;
                    bestResidual = alt.Residual;
                }
            }

            string explanation;
            string[] implicated;
            if (best >= 0 && bestResidual <= reference.RotationResidualLimit)
            {
                var hyp = Hypotheses[best];
                var axesOf = hyp.Accelerometer ? acc : gyro;
                implicated = [channels[axesOf[hyp.A]], channels[axesOf[hyp.B]]];
                explanation = string.Create(inv, $"the data agree again ({bestResidual:F2}) if the {hyp.Description} ({implicated[0]} ↔ {implicated[1]})");
            }
            else
            {
                implicated = [.. gyroNames, channels[acc[0]], channels[acc[1]], channels[acc[2]]];
                explanation = "no single swap of two axes explains it (a sign flip, a mounting rotation or a broken sensor)";
            }

            findings.Add(new SensorFinding(SensorFindingKind.RotationMismatch, null, r.Residual, reference.RotationResidualLimit, string.Create(inv,
                $"The gyroscope's rotation does not match the turn of the gravity direction: median misfit {r.Residual:F2} of the turn over {r.Pairs} still-to-still pairs (healthy ≤ {reference.RotationResidualLimit:F2}); {explanation}."),
                r.Pairs, implicated));
            return;
        }

        var bound2 = gainHigh ? reference.RotationGainBounds[1] : reference.RotationGainBounds[0];
        findings.Add(new SensorFinding(SensorFindingKind.RotationMismatch, null, r.Gain, bound2, string.Create(inv,
            $"The gyroscope reports {r.Gain:F2}× the turn of the gravity direction measured by the accelerometer over {r.Pairs} still-to-still pairs (healthy {reference.RotationGainBounds[0]:F2}–{reference.RotationGainBounds[1]:F2}): a gyroscope gain (scale) error."),
            r.Pairs, gyroNames));
    }

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
