using System.Globalization;

namespace Har.Drift;

/// <summary>
/// The checks of a window against the device's own earlier minutes and the reference's noise floor and units, with a
/// note for every check that had no evidence to work with.
/// </summary>
internal static class SelfChecks
{
    private const double Gravity = 9.80665;
    private const double RadiansToDegrees = 180 / Math.PI;

    /// <summary>Computes the window's features, compares them with the device's past, appends findings and notes, and takes the window into the past.</summary>
    public static SelfComparison? Check(AlarmReference? reference, IReadOnlyList<string> channels, double[][] series, double sampleRateHz, double gravity, DeviceHistory history, long windowStart, List<SensorFinding> findings, List<string> notes)
    {
        var acc = ChannelKinds.GravityAxes(channels);
        var gyro = ChannelKinds.GyroscopeAxes(channels);
        if (acc.Length != 3 || series.Any(s => s.Length != series[0].Length) || series[0].Length == 0)
        {
            return null;
        }

        var inv = CultureInfo.InvariantCulture;
        var f = SelfFeatures.Compute(series, acc, gyro, sampleRateHz, gravity);
        var self = history.Self.CompareAndCommit(f, windowStart, windowStart + series[0].Length);
        // Added noise on every accelerometer axis: the quietest blocks of the window are above the healthy noise floor
        // on all three together (one axis alone rises with vigorous motion on healthy devices).
        var accNoise = double.NaN;
        if (reference is not null)
        {
            accNoise = double.PositiveInfinity;
            foreach (var a in acc)
            {
                accNoise = Math.Min(accNoise, f.NoiseFloor[a] / reference.NoiseFloorUpper[a]);
            }
        }

        if (f.StillBlocks == 0)
        {
            notes.Add(accNoise > 1
                ? "no still posture in this window: the accelerometer's noise floor is above the healthy range on every axis, so still postures cannot be recognised and the still-block offset and spread checks were not possible"
                : "no still posture in this window: the still-block offset and spread checks were not possible");
        }

        if (double.IsNaN(f.Cadence))
        {
            notes.Add("no 8 s of gait in this window: the cadence (sample-rate) check was not possible");
        }

        if (double.IsNaN(self.DirectionShift))
        {
            notes.Add(string.Create(inv, $"fewer than {SelfBaseline.MinBlocks} earlier 2-second blocks of this device: the within-device orientation check was not possible"));
        }

        if (reference is null)
        {
            return self;
        }

        // Gyroscope/accelerometer agreement during motion (walking, stairs): a remapped axis or another stream rate.
        MotionConsistency.Check(channels, series, acc, gyro, sampleRateHz, gravity, findings, notes);

        // A turn of the gravity direction between still moments that the gyroscope did not see: the frame changed.
        FrameStepCheck.Check(channels, series, acc, gyro, sampleRateHz, gravity, findings, notes);

        // Units: a scale a conversion factor away from the reference is decisive on one window.
        var accRatio = f.AccelerometerScale / reference.AccelerometerScale;
        if (Near(accRatio, Gravity, 2) || Near(accRatio, 1 / Gravity, 2))
        {
            var unit = accRatio > 1 ? "m/s² where g is expected" : "g where m/s² is expected";
            findings.Add(new SensorFinding(SensorFindingKind.Units, null, accRatio, Gravity, string.Create(inv,
                $"The accelerometer reads {accRatio:G3}× the reference's magnitude (median |a| {f.AccelerometerScale:G4} vs {reference.AccelerometerScale:G4}): its unit is {unit}."),
                series[0].Length, [channels[acc[0]], channels[acc[1]], channels[acc[2]]]));
        }

        if (gyro.Length == 3 && !double.IsNaN(f.GyroscopeScale))
        {
            var gyroRatio = f.GyroscopeScale / reference.GyroscopeScale;
            // Only upwards: a still minute's rotation rate can be 50 times below the reference's, a gyroscope in the
            // right unit is never 20 times above it.
            if (Near(gyroRatio, RadiansToDegrees, 3))
            {
                const string unit = "deg/s where rad/s is expected";
                findings.Add(new SensorFinding(SensorFindingKind.Units, null, gyroRatio, RadiansToDegrees, string.Create(inv,
                    $"The gyroscope reads {gyroRatio:G3}× the reference's rate in gait (median |ω| {f.GyroscopeScale:G4} vs {reference.GyroscopeScale:G4}): its unit is {unit}."),
                    series[0].Length, [channels[gyro[0]], channels[gyro[1]], channels[gyro[2]]]));
            }
        }

        if (accNoise > 1)
        {
            findings.Add(new SensorFinding(SensorFindingKind.NoiseFloor, null, accNoise, 1, string.Create(inv,
                $"The high-frequency noise floor of every accelerometer axis is at least {accNoise:F2}× the healthy devices' bound ({string.Join(", ", acc.Select(a => $"{channels[a]} {f.NoiseFloor[a]:G3}"))}): added noise or vibration."),
                series[0].Length, [channels[acc[0]], channels[acc[1]], channels[acc[2]]]));
        }

        // Noise floor of single channels: against the reference, and against the device's own earlier windows.
        var worst = -1;
        var worstExcess = 0.0;
        var own = false;
        for (var c = 0; c < f.NoiseFloor.Length; c++)
        {
            var pop = Excess(f.NoiseFloor[c], reference.NoiseFloorUpper[c]);
            var mine = Excess(self.NoiseRatio[c], reference.NoiseRatioUpper[c]);
            if (Math.Max(pop, mine) > worstExcess)
            {
                worstExcess = Math.Max(pop, mine);
                worst = c;
                own = mine > pop;
            }
        }

        if (worst >= 0)
        {
            var name = channels[worst];
            findings.Add(own
                ? new SensorFinding(SensorFindingKind.NoiseFloor, name, self.NoiseRatio[worst], reference.NoiseRatioUpper[worst], string.Create(inv,
                    $"The high-frequency noise floor of {name} is {self.NoiseRatio[worst]:F2}× this device's earlier level (healthy ≤ {reference.NoiseRatioUpper[worst]:F2}×): added noise or vibration."))
                : new SensorFinding(SensorFindingKind.NoiseFloor, name, f.NoiseFloor[worst], reference.NoiseFloorUpper[worst], string.Create(inv,
                    $"The high-frequency noise floor of {name} is {f.NoiseFloor[worst]:G3} (healthy devices ≤ {reference.NoiseFloorUpper[worst]:G3}): added noise or vibration.")));
        }
        else
        {
            for (var k = 0; k < 3; k++)
            {
                if (Excess(f.StillSpread[k], reference.StillSpreadUpper[k]) > 0)
                {
                    var name = channels[acc[k]];
                    findings.Add(new SensorFinding(SensorFindingKind.NoiseFloor, name, f.StillSpread[k], reference.StillSpreadUpper[k], string.Create(inv,
                        $"Still postures of {name} spread {f.StillSpread[k]:G3} (healthy ≤ {reference.StillSpreadUpper[k]:G3}): added noise."), f.StillBlocks));
                    break;
                }
            }
        }

        if (Excess(self.DirectionShift, reference.DirectionShiftUpper) > 0)
        {
            findings.Add(new SensorFinding(SensorFindingKind.OrientationShift, null, self.DirectionShift, reference.DirectionShiftUpper, string.Create(inv,
                $"This window's gravity directions lie a median {self.DirectionShift:F1}° from every direction this device showed earlier ({self.EarlierBlocks} two-second blocks; healthy ≤ {reference.DirectionShiftUpper:F1}°): the device was rotated or re-mounted."),
                f.Directions.Count, [channels[acc[0]], channels[acc[1]], channels[acc[2]]]));
        }

        var cad = self.CadenceRatio;
        if (!double.IsNaN(cad) && (cad < reference.CadenceRatioBounds[0] || cad > reference.CadenceRatioBounds[1]))
        {
            var bound = cad > reference.CadenceRatioBounds[1] ? reference.CadenceRatioBounds[1] : reference.CadenceRatioBounds[0];
            findings.Add(new SensorFinding(SensorFindingKind.SampleRate, null, cad, bound, string.Create(inv,
                $"The gait cadence is {f.Cadence:F2} Hz, {cad:F2}× this device's earlier cadence (healthy {reference.CadenceRatioBounds[0]:F2}–{reference.CadenceRatioBounds[1]:F2}×): the samples arrive at about {sampleRateHz / cad:F0} Hz, not the declared {sampleRateHz:F0} Hz.")) { Ideal = 1 });
        }

        return self;
    }

    private static bool Near(double ratio, double factor, double tolerance) =>
        !double.IsNaN(ratio) && ratio > factor / tolerance && ratio < factor * tolerance;

    /// <summary>How far a statistic lies above its bound, relative to the bound (0 at or below it, or NaN).</summary>
    public static double Excess(double value, double upper) =>
        double.IsNaN(value) || double.IsNaN(upper) || value <= upper ? 0 : (value - upper) / Math.Max(Math.Abs(upper), 1e-12);
}
