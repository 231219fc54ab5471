namespace Har.Drift.Tests.Physics;

/// <summary>The motion consistency check on a synthetic device that keeps turning (no still moment in the minute).</summary>
public sealed class MotionConsistencyTests
{
    private static readonly string[] Names = ["ax", "ay", "az", "gx", "gy", "gz"];

    /// <summary>
    /// A minute of a device turning about changing axes, sampled at <paramref name="trueRate"/> Hz: the gyroscope reads
    /// ω(t) and the accelerometer reads gravity g(t) with dg/dt = g × ω (plus a little noise), no still moment.
    /// </summary>
    private static double[][] Rotating(int seed, double trueRate = 50, int samples = 3000)
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
        var dt = 1 / trueRate / sub;
        double phase = rng.NextDouble() * 6;
        for (var i = 0; i < samples; i++)
        {
            var t = i / trueRate;
            var wx = 0.9 * Math.Sin((0.7 * t) + phase);
            var wy = 1.1 * Math.Sin((0.45 * t) + 1 + phase);
            var wz = 0.8 * Math.Cos((0.31 * t) + phase);
            s[0][i] = gx + (0.005 * Synthetic.Gaussian(rng));
            s[1][i] = gy + (0.005 * Synthetic.Gaussian(rng));
            s[2][i] = gz + (0.005 * Synthetic.Gaussian(rng));
            s[3][i] = wx + (0.01 * Synthetic.Gaussian(rng));
            s[4][i] = wy + (0.01 * Synthetic.Gaussian(rng));
            s[5][i] = wz + (0.01 * Synthetic.Gaussian(rng));
            for (var k = 0; k < sub; k++)
            {
                // dg/dt = g × ω, renormalised.
                var dx = (gy * wz) - (gz * wy);
                var dy = (gz * wx) - (gx * wz);
                var dz = (gx * wy) - (gy * wx);
                gx += dx * dt;
                gy += dy * dt;
                gz += dz * dt;
                var n = Math.Sqrt((gx * gx) + (gy * gy) + (gz * gz));
                (gx, gy, gz) = (gx / n, gy / n, gz / n);
            }
        }

        return s;
    }


    private static (List<SensorFinding> Findings, List<string> Notes) Check(double[][] s)
    {
        var findings = new List<SensorFinding>();
        var notes = new List<string>();
        MotionConsistency.Check(Names, s, [0, 1, 2], [3, 4, 5], 50, 1, findings, notes);
        return (findings, notes);
    }

    [Fact]
    public void AgreeingSensors_FitTheIdentity_AndRaiseNothing()
    {
        var s = Rotating(1);
        var fit = MotionConsistency.Compute(s, [0, 1, 2], [3, 4, 5], 50, 1);
        Assert.Equal(0, fit.Best);
        Assert.InRange(fit.Scale[0], 0.8, MotionConsistency.ScaleUpper);
        var (findings, notes) = Check(s);
        Assert.Empty(findings);
        Assert.Empty(notes);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void FlippedAxis_IsNamedByAxis(int channel)
    {
        var s = Rotating(2 + channel);
        for (var i = 0; i < s[channel].Length; i++)
        {
            s[channel][i] = -s[channel][i];
        }

        var (findings, _) = Check(s);
        var f = Assert.Single(findings);
        Assert.Equal(SensorFindingKind.RotationMismatch, f.Kind);
        Assert.Equal([Names[channel]], f.Implicated);
        Assert.True(f.Value < MotionConsistency.RemapRatio);
        var (cause, channels, _) = Diagnosis.Name([], findings);
        Assert.Equal(DriftCause.SignFlip, cause);
        Assert.Equal([Names[channel]], channels);
    }

    [Fact]
    public void SwappedGyroscopeAxes_AreNamedAsAPair()
    {
        var s = Rotating(9);
        (s[3], s[4]) = (s[4], s[3]);
        var (findings, _) = Check(s);
        var f = Assert.Single(findings);
        Assert.Equal(["gx", "gy"], f.Implicated);
        Assert.Equal(DriftCause.AxisSwap, Diagnosis.Name([], findings).Cause);
    }

    [Fact]
    public void FortyHertzFedAsFifty_IsASampleRateFinding()
    {
        var s = Rotating(11, trueRate: 40);
        var (findings, _) = Check(s);
        var f = Assert.Single(findings);
        Assert.Equal(SensorFindingKind.SampleRate, f.Kind);
        Assert.Equal(Diagnosis.MotionRate, Diagnosis.Key(f));
        Assert.Equal(DriftCause.SampleRate, Diagnosis.Name([], findings).Cause);
    }

    [Fact]
    public void StillDevice_ReportsNoEvidence()
    {
        var s = new double[6][];
        for (var c = 0; c < 6; c++)
        {
            s[c] = new double[3000];
        }

        Array.Fill(s[0], 1.0);
        var (findings, notes) = Check(s);
        Assert.Empty(findings);
        Assert.Single(notes);
    }
}
