using System.Globalization;

namespace Har.Drift;

/// <summary>
/// The frame-step check: the gravity direction turned between two still moments while the gyroscope measured no turn
/// (<see cref="ImuPhysics.FrameStep"/>). The step is then read as the simplest change of the accelerometer's reading that
/// explains it: one axis changing sign (a sign flip), one axis moving alone (an offset), or otherwise a turn of the
/// sensor frame (a rotation: re-mounted while the stream paused, another device on the same stream, axes remapped).
/// </summary>
internal static class FrameStepCheck
{
    /// <summary>
    /// Bound of the window statistic (degrees). Over the 467 one-minute windows of the HAPT training recordings (every
    /// 30 s) the largest was 3.1° (98 % quantile 2.6°); the bound adds about a quarter.
    /// </summary>
    public const double Bound = 4.0;

    /// <summary>
    /// Largest misfit (relative to gravity) of a single-axis explanation (a sign flip or an offset of one axis) for the
    /// step to be named by it: about the spread of two still moments' means a few seconds apart on a healthy device.
    /// </summary>
    public const double Tolerance = 0.02;

    /// <summary>The check (one CUSUM of the alarm) the findings of this check feed, whatever cause they name.</summary>
    public const string Key = "FrameStep";

    /// <summary>The note of a window without enough still pairs (<see cref="DriftReport.Unchecked"/>; the metrics' <c>frame_step</c>).</summary>
    public static readonly string NoEvidenceNote = string.Create(CultureInfo.InvariantCulture,
        $"fewer than {ImuPhysics.FrameStepRank} pairs of still moments without a turn in this window: the frame-step check was not possible");

    /// <summary>Runs the check on a window and appends its finding, or a note when the window had no still pairs to judge.</summary>
    public static void Check(IReadOnlyList<string> channels, double[][] series, int[] acc, int[] gyro, double sampleRateHz, double gravity, List<SensorFinding> findings, List<string> notes)
    {
        if (acc.Length != 3 || gyro.Length != 3)
        {
            return;
        }

        var s = ImuPhysics.FrameStep([series[acc[0]], series[acc[1]], series[acc[2]]], [series[gyro[0]], series[gyro[1]], series[gyro[2]]], sampleRateHz, gravity);
        if (double.IsNaN(s.Angle))
        {
            notes.Add(NoEvidenceNote);
            return;
        }

        if (s.Angle <= Bound)
        {
            return;
        }

        var inv = CultureInfo.InvariantCulture;
        var lead = string.Create(inv,
            $"Between two still moments {s.Seconds:F1} s apart the gravity direction turned {s.Angle:F1}° while the gyroscope measured {s.GyroTurn:F1}° (healthy devices ≤ {Bound:F0}°)");
        var (kind, axis) = Explain(s.Before, s.After, gravity * Tolerance);
        var all = new[] { channels[acc[0]], channels[acc[1]], channels[acc[2]], channels[gyro[0]], channels[gyro[1]], channels[gyro[2]] };
        var finding = kind switch
        {
            SensorFindingKind.RotationMismatch => new SensorFinding(kind, null, s.Angle, Bound, string.Create(inv,
                $"{lead}: {channels[acc[axis]]} changed sign ({s.Before[axis]:G3} → {s.After[axis]:G3}) while the other axes held, a sign flip of {channels[acc[axis]]}."),
                s.Pairs, [channels[acc[axis]]]),
            SensorFindingKind.AccelerometerOffset => new SensorFinding(kind, channels[acc[axis]], s.Angle, Bound, string.Create(inv,
                $"{lead}: {channels[acc[axis]]} stepped by {s.After[axis] - s.Before[axis]:+0.000;-0.000} while the other axes held, an offset of {channels[acc[axis]]}."),
                s.Pairs),
            _ => new SensorFinding(SensorFindingKind.OrientationShift, null, s.Angle, Bound, string.Create(inv,
                $"{lead}, with the magnitude unchanged: the sensor frame turned without the device turning (re-mounted while the stream paused, another device on the same stream, or axes remapped)."),
                s.Pairs, all),
        };
        findings.Add(finding.WithCheck(Key));
    }

    /// <summary>
    /// The simplest change of the reading that explains the step from <paramref name="before"/> to <paramref name="after"/>:
    /// one axis changing sign, else one axis moving alone (and the magnitude changing more than the other axes do), each
    /// within <paramref name="tolerance"/>; otherwise a turn of the frame (<see cref="SensorFindingKind.OrientationShift"/>).
    /// </summary>
    internal static (SensorFindingKind Kind, int Axis) Explain(double[] before, double[] after, double tolerance)
    {
        var flip = -1;
        var flipMisfit = double.PositiveInfinity;
        var offset = -1;
        var offsetMisfit = double.PositiveInfinity;
        for (var k = 0; k < 3; k++)
        {
            double f = 0, o = 0;
            for (var j = 0; j < 3; j++)
            {
                var d = after[j] - (j == k ? -before[j] : before[j]);
                f += d * d;
                if (j != k)
                {
                    var e = after[j] - before[j];
                    o += e * e;
                }
            }

            if (f < flipMisfit)
            {
                (flip, flipMisfit) = (k, f);
            }

            if (o < offsetMisfit)
            {
                (offset, offsetMisfit) = (k, o);
            }
        }

        if (Math.Sqrt(flipMisfit) <= tolerance && Math.Abs(before[flip]) >= 3 * tolerance)
        {
            return (SensorFindingKind.RotationMismatch, flip);
        }

        var magnitude = Math.Abs(Norm(after) - Norm(before));
        return Math.Sqrt(offsetMisfit) <= tolerance && Math.Sqrt(offsetMisfit) < magnitude
            ? (SensorFindingKind.AccelerometerOffset, offset)
            : (SensorFindingKind.OrientationShift, -1);
    }

    private static double Norm(double[] v) => Math.Sqrt((v[0] * v[0]) + (v[1] * v[1]) + (v[2] * v[2]));
}
