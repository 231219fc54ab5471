namespace Har.Drift.Tests.Physics;

/// <summary>
/// The frame-step check (<see cref="ImuPhysics.FrameStep"/>, <see cref="FrameStepCheck"/>) on a synthetic device that
/// holds still, turns physically (the gyroscope sees it), holds still again, and then has its reading changed at a
/// frame without any turn: the frame rotated, one accelerometer axis flipped, or one axis offset.
/// </summary>
public sealed class FrameStepTests
{
    /// <summary>
    /// A minute at 50 Hz: still, a physical turn of 40° between 20 and 22 s (gyroscope ω, gravity obeying dg/dt = g × ω),
    /// still again; noise 0.003 g and 0.005 rad/s. Gravity starts at (0.9, 0.3, 0.3) normalised.
    /// </summary>
    private static double[][] StillWithTurn(int seed, int samples = 3000)
    {
        var rng = new Random(seed);
        var s = new double[6][];
        for (var c = 0; c < 6; c++)
        {
            s[c] = new double[samples];
        }

        double gx = 0.9, gy = 0.3, gz = 0.3;
        var n0 = Math.Sqrt((gx * gx) + (gy * gy) + (gz * gz));
        (gx, gy, gz) = (gx / n0, gy / n0, gz / n0);
        const int sub = 20;
        const double dt = 1 / 50.0 / sub;
        var rate = 40 * Math.PI / 180 / 2; // 40° over 2 s about the z axis
        for (var i = 0; i < samples; i++)
        {
            var t = i / 50.0;
            var wz = t is >= 20 and < 22 ? rate : 0;
            s[0][i] = gx + (0.003 * Synthetic.Gaussian(rng));
            s[1][i] = gy + (0.003 * Synthetic.Gaussian(rng));
            s[2][i] = gz + (0.003 * Synthetic.Gaussian(rng));
            s[3][i] = 0.005 * Synthetic.Gaussian(rng);
            s[4][i] = 0.005 * Synthetic.Gaussian(rng);
            s[5][i] = wz + (0.005 * Synthetic.Gaussian(rng));
            for (var k = 0; k < sub; k++)
            {
                var dx = gy * wz;
                var dy = -gx * wz;
                gx += dx * dt;
                gy += dy * dt;
                var n = Math.Sqrt((gx * gx) + (gy * gy) + (gz * gz));
                (gx, gy, gz) = (gx / n, gy / n, gz / n);
            }
        }

        return s;
    }


    /// <summary>Both sensors from <paramref name="onset"/> on seen in a frame turned by <paramref name="degrees"/> about x.</summary>
    private static void RotateFrame(double[][] s, int onset, double degrees)
    {
        for (var i = onset; i < s[0].Length; i++)
        {
            for (var b = 0; b < 6; b += 3)
            {
                (s[b][i], s[b + 1][i], s[b + 2][i]) = AboutX(degrees, s[b][i], s[b + 1][i], s[b + 2][i]);
            }
        }
    }

    private static (double X, double Y, double Z) AboutX(double degrees, double x, double y, double z)
    {
        var (sn, cs) = Math.SinCos(degrees * Math.PI / 180);
        return (x, (cs * y) - (sn * z), (sn * y) + (cs * z));
    }

    /// <summary>The mean of the accelerometer over frames [from, to).</summary>
    private static double[] Mean(double[][] s, int from, int to) =>
        [.. Enumerable.Range(0, 3).Select(c => s[c][from..to].Average())];

    private static double AngleDegrees(double[] a, (double X, double Y, double Z) b)
    {
        var dot = (a[0] * b.X) + (a[1] * b.Y) + (a[2] * b.Z);
        var na = Math.Sqrt((a[0] * a[0]) + (a[1] * a[1]) + (a[2] * a[2]));
        var nb = Math.Sqrt((b.X * b.X) + (b.Y * b.Y) + (b.Z * b.Z));
        return Math.Acos(Math.Clamp(dot / (na * nb), -1, 1)) * 180 / Math.PI;
    }

    private static (List<SensorFinding> Findings, List<string> Notes) Check(double[][] s)
    {
        var findings = new List<SensorFinding>();
        var notes = new List<string>();
        FrameStepCheck.Check(Synthetic.Channels, s, [0, 1, 2], [3, 4, 5], 50, 1, findings, notes);
        return (findings, notes);
    }

    [Fact]
    public void HealthyDevice_ThatTurnsAsTheGyroscopeSays_RaisesNothing()
    {
        var s = StillWithTurn(1);
        var stats = ImuPhysics.FrameStep(s[..3], s[3..], 50, 1);
        Assert.True(stats.Pairs > 100, $"pairs {stats.Pairs}");
        Assert.InRange(stats.Angle, 0, 1); // noise only: far below the bound
        var (findings, notes) = Check(s);
        Assert.Empty(findings);
        Assert.Empty(notes);
    }

    [Fact]
    public void FrameTurnSmallerThanTheBound_IsMeasuredButNotReported()
    {
        var s = StillWithTurn(6);
        var g = Mean(s, 1500, 2000);
        var expected = AngleDegrees(g, AboutX(5, g[0], g[1], g[2]));
        Assert.True(expected < FrameStepCheck.Bound * 0.8, $"the test's premise: a 5° turn about x moves gravity by {expected:F2}°");
        RotateFrame(s, 2000, 5);
        Assert.InRange(ImuPhysics.FrameStep(s[..3], s[3..], 50, 1).Angle, 0.9 * expected, 1.1 * expected);
        Assert.Empty(Check(s).Findings);
    }

    [Theory]
    [InlineData(12.0)]
    [InlineData(20.0)]
    public void FrameTurnedWithoutTheDevice_IsARotation_OnTheFrameStepCheck(double degrees)
    {
        var s = StillWithTurn(2);
        var g = Mean(s, 1500, 2000);

        // How far the frame turn moves this gravity direction (less than the turn itself: its x component is on the axis).
        var expected = AngleDegrees(g, AboutX(degrees, g[0], g[1], g[2]));
        RotateFrame(s, 2000, degrees);
        var stats = ImuPhysics.FrameStep(s[..3], s[3..], 50, 1);
        Assert.InRange(stats.Angle, 0.9 * expected, 1.1 * expected);
        Assert.InRange(stats.GyroTurn, 0, ImuPhysics.FrameStepGyroTurnDegrees);
        var (findings, _) = Check(s);
        var f = Assert.Single(findings);
        Assert.Equal(SensorFindingKind.OrientationShift, f.Kind);
        Assert.Equal(FrameStepCheck.Key, Diagnosis.Key(f));
        Assert.Equal(DriftCause.Rotation, Diagnosis.Name([], findings, FrameStepCheck.Key).Cause);
        Assert.Contains("without the device turning", f.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, "ay")]
    [InlineData(2, "az")]
    public void AxisThatChangesSign_IsASignFlipOfThatAxis(int axis, string name)
    {
        var s = StillWithTurn(3);
        for (var i = 2000; i < s[axis].Length; i++)
        {
            s[axis][i] = -s[axis][i];
        }

        var (findings, _) = Check(s);
        var f = Assert.Single(findings);
        Assert.Equal(SensorFindingKind.RotationMismatch, f.Kind);
        Assert.Equal([name], f.Implicated);
        var named = Diagnosis.Name([], findings, FrameStepCheck.Key);
        Assert.Equal(DriftCause.SignFlip, named.Cause);
        Assert.Equal([name], named.Channels);
    }

    [Fact]
    public void AxisThatStepsAlone_IsAnOffsetOfThatAxis()
    {
        var s = StillWithTurn(4);
        for (var i = 2000; i < s[2].Length; i++)
        {
            s[2][i] += 0.1;
        }

        var (findings, _) = Check(s);
        var f = Assert.Single(findings);
        Assert.Equal(SensorFindingKind.AccelerometerOffset, f.Kind);
        Assert.Equal("az", f.Channel);
        var named = Diagnosis.Name([], findings, FrameStepCheck.Key);
        Assert.Equal(DriftCause.Offset, named.Cause);
        Assert.Equal(["az"], named.Channels);
    }

    [Fact]
    public void WindowWithoutStillMoments_SaysTheCheckWasNotPossible()
    {
        var rng = new Random(5);
        var s = new double[6][];
        for (var c = 0; c < 6; c++)
        {
            s[c] = new double[3000];
            for (var i = 0; i < 3000; i++)
            {
                s[c][i] = (c == 0 ? 1 : 0) + (0.3 * Synthetic.Gaussian(rng)); // vigorous motion throughout
            }
        }

        var (findings, notes) = Check(s);
        Assert.Empty(findings);
        Assert.Contains(notes, n => n.Contains("frame-step check was not possible", StringComparison.Ordinal));
        Assert.Equal("frame_step", DriftMetrics.CheckName(Assert.Single(notes)));
    }

    [Fact]
    public void Explain_PrefersARotation_WhenTheMagnitudeHoldsAndNoSingleAxisExplainsTheStep()
    {
        // A 10° turn about z of gravity (0.9, 0.3, 0.3)/|…|: every component moves, the magnitude does not.
        double[] before = [0.9045, 0.3015, 0.3015];
        var (sn, cs) = Math.SinCos(10 * Math.PI / 180);
        double[] after = [(cs * before[0]) - (sn * before[1]), (sn * before[0]) + (cs * before[1]), before[2]];
        Assert.Equal((SensorFindingKind.OrientationShift, -1), FrameStepCheck.Explain(before, after, FrameStepCheck.Tolerance));
        Assert.Equal((SensorFindingKind.RotationMismatch, 1), FrameStepCheck.Explain(before, [before[0], -before[1], before[2]], FrameStepCheck.Tolerance));
        Assert.Equal((SensorFindingKind.AccelerometerOffset, 0), FrameStepCheck.Explain(before, [before[0] + 0.1, before[1], before[2]], FrameStepCheck.Tolerance));
    }
}
