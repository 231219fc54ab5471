using FsCheck;
using FsCheck.Fluent;

namespace Har.Drift.Tests.Physics;

/// <summary>
/// The physics statistics on a simulated rigid IMU: the accelerometer reads gravity rotated into the sensor frame,
/// the gyroscope the body rate that produced that rotation — so every law can be checked exactly.
/// </summary>
public sealed class ImuPhysicsTests
{
    [Fact]
    public void SphereFit_PointsOnAnOffsetSphere_RecoversOffsetAndRadius()
    {
        var rng = new Random(3);
        double[] b = [0.05, -0.03, 0.02];
        var points = new List<double[]>();
        for (var i = 0; i < 200; i++)
        {
            var u = RandomUnit(rng);
            points.Add([b[0] + (1.02 * u[0]), b[1] + (1.02 * u[1]), b[2] + (1.02 * u[2])]);
        }

        var (offset, radius) = ImuPhysics.SphereFit(points)!.Value;

        Assert.Equal(1.02, radius, 9);
        for (var k = 0; k < 3; k++)
        {
            Assert.Equal(b[k], offset[k], 9);
        }
    }

    [Fact]
    public void SphereFit_AllPointsAlike_ReturnsNull()
    {
        Assert.Null(ImuPhysics.SphereFit(Enumerable.Repeat(new[] { 0.0, 0.0, 1.0 }, 10)));
    }

    [Fact]
    public void Gravity_OffsetAlongGravity_ShiftsTheResidualByTheOffset()
    {
        var imu = SimulatedImu.Record(seed: 1, seconds: 60, turns: false);
        var clean = Stats(imu);
        imu.Offset(axis: 2, 0.1); // this simulated posture has gravity mostly along z
        var shifted = Stats(imu);

        Assert.InRange(clean.MedianResidual, -0.003, 0.003);
        Assert.InRange(shifted.AxisResidual[2] - clean.AxisResidual[2], 0.08, 0.11);

        static GravityStatistics Stats(SimulatedImu imu) =>
            ImuPhysics.Gravity(ImuPhysics.BlockMeans(imu.Acc[0], imu.Acc[1], imu.Acc[2], 50), [0, 0, 0], 1.0);
    }

    [Fact]
    public void TurnOffset_AccelerometerOffsetOnEachAxis_IsRecoveredFromTheTurns()
    {
        // (I − R) δ = a₂ − R a₁: the turns between still moments determine the offset that was added.
        for (var axis = 0; axis < 3; axis++)
        {
            var imu = SimulatedImu.Record(seed: 20 + axis, seconds: 60);
            imu.Offset(axis, 0.1);
            var pairs = ImuPhysics.Pairs(imu.Acc, imu.Gyro, 50, 1.0, [[1, 0, 0, 0, 1, 0, 0, 0, 1]]);
            var delta = ImuPhysics.TurnOffset(pairs, [0, 0, 0]);

            for (var k = 0; k < 3; k++)
            {
                Assert.InRange(delta[k], (k == axis ? 0.1 : 0) - 0.01, (k == axis ? 0.1 : 0) + 0.01);
            }
        }
    }

    [Fact]
    public void Pairs_TurnsFromPrefixProducts_EqualThePerSampleIntegration()
    {
        // Pairs composes each pair's turn from prefix products of the per-sample turns; the reference integrates the
        // mapped gyroscope rate sample by sample between the two moments (Rodrigues' formula, one step per sample), as
        // the still-to-still law states it. Maps of each kind the rotation check tries (as recorded, a swap, a mirror, a
        // flip) and a gain per axis, on turning devices of random seeds.
        double[][] maps =
        [
            [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 1, 0, 1, 0, 1, 0, 0], [0, -1, 0, -1, 0, 0, 0, 0, -1], [1, 0, 0, 0, -1, 0, 0, 0, -1],
            [0.5, 0, 0, 0, 1.5, 0, 0, 0, 2],
        ];
        Prop.ForAll(Gen.Choose(0, 10_000).ToArbitrary(), seed =>
        {
            var imu = SimulatedImu.Record(seed, seconds: 20);
            var pairs = ImuPhysics.Pairs(imu.Acc, imu.Gyro, 50, 1.0, maps);
            const int K = 25; // the 0.5-s smoothing at 50 Hz: a pair (p, q) is stored as [p, q + K)
            var worst = 0.0;
            foreach (var pair in pairs)
            {
                var p = (int)pair.Start;
                var q = (int)pair.End - K;
                var u1 = Unit(pair.From);
                var u2 = Unit(pair.To);
                var measured = AngleBetween(u1, u2);
                for (var h = 0; h < maps.Length; h++)
                {
                    var v = (double[])u1.Clone();
                    double[][] basis = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
                    for (var t = p + (K / 2); t < p + (K / 2) + (q - p); t++)
                    {
                        var m = maps[h];
                        double[] w =
                        [
                            (m[0] * imu.Gyro[0][t]) + (m[1] * imu.Gyro[1][t]) + (m[2] * imu.Gyro[2][t]),
                            (m[3] * imu.Gyro[0][t]) + (m[4] * imu.Gyro[1][t]) + (m[5] * imu.Gyro[2][t]),
                            (m[6] * imu.Gyro[0][t]) + (m[7] * imu.Gyro[1][t]) + (m[8] * imu.Gyro[2][t]),
                        ];
                        v = SampleTurn(v, w, 0.02);
                        if (h == 0)
                        {
                            basis = [.. basis.Select(e => SampleTurn(e, w, 0.02))];
                        }
                    }

                    worst = Math.Max(worst, Math.Abs(pair.Gains[h] - (AngleBetween(u1, v) / measured)));
                    worst = Math.Max(worst, Math.Abs(pair.Misfits[h] - (AngleBetween(v, u2) / measured)));
                    if (h == 0)
                    {
                        for (var row = 0; row < 3; row++)
                        {
                            for (var col = 0; col < 3; col++)
                            {
                                worst = Math.Max(worst, Math.Abs(pair.Turn[(row * 3) + col] - basis[col][row]));
                            }
                        }
                    }
                }
            }

            return (pairs.Count > 10 && worst < 1e-9).Label($"{pairs.Count} pairs, largest difference {worst:E2}");
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(6));

        static double[] Unit(double[] a)
        {
            var n = Math.Sqrt((a[0] * a[0]) + (a[1] * a[1]) + (a[2] * a[2]));
            return [a[0] / n, a[1] / n, a[2] / n];
        }

        static double AngleBetween(double[] a, double[] b)
        {
            double[] c = [(a[1] * b[2]) - (a[2] * b[1]), (a[2] * b[0]) - (a[0] * b[2]), (a[0] * b[1]) - (a[1] * b[0])];
            return Math.Atan2(Math.Sqrt((c[0] * c[0]) + (c[1] * c[1]) + (c[2] * c[2])), (a[0] * b[0]) + (a[1] * b[1]) + (a[2] * b[2]));
        }

        // A world-fixed vector seen from a sensor turning at ω for dt: rotated by −|ω| dt about ω (Rodrigues).
        static double[] SampleTurn(double[] v, double[] w, double dt)
        {
            var rate = Math.Sqrt((w[0] * w[0]) + (w[1] * w[1]) + (w[2] * w[2]));
            if (rate * dt < 1e-12)
            {
                return v;
            }

            double[] k = [-w[0] / rate, -w[1] / rate, -w[2] / rate];
            double c = Math.Cos(rate * dt), s = Math.Sin(rate * dt);
            var dot = (k[0] * v[0]) + (k[1] * v[1]) + (k[2] * v[2]);
            double[] kv = [(k[1] * v[2]) - (k[2] * v[1]), (k[2] * v[0]) - (k[0] * v[2]), (k[0] * v[1]) - (k[1] * v[0])];
            return [.. Enumerable.Range(0, 3).Select(i => (v[i] * c) + (kv[i] * s) + (k[i] * dot * (1 - c)))];
        }
    }

    [Fact]
    public void TurnOffset_NoTurns_NotDetermined()
    {
        var imu = SimulatedImu.Record(seed: 24, seconds: 30, turns: false);
        var pairs = ImuPhysics.Pairs(imu.Acc, imu.Gyro, 50, 1.0, [[1, 0, 0, 0, 1, 0, 0, 0, 1]]);

        Assert.All(ImuPhysics.TurnOffset(pairs, [0, 0, 0]), d => Assert.True(double.IsNaN(d)));
    }

    [Fact]
    public void StillBlocks_RestingDevice_ReadsGravityAlone()
    {
        var imu = SimulatedImu.Record(seed: 25, seconds: 30, turns: false);
        var blocks = ImuPhysics.StillBlocks(imu.Acc[0], imu.Acc[1], imu.Acc[2], 50);

        Assert.Equal(15, blocks.Count);
        Assert.All(blocks, b => Assert.InRange(Math.Sqrt((b.Mean[0] * b.Mean[0]) + (b.Mean[1] * b.Mean[1]) + (b.Mean[2] * b.Mean[2])), 0.999, 1.001));
    }

    [Fact]
    public void Rotation_HealthyDevice_GainOneResidualNearZero()
    {
        var imu = SimulatedImu.Record(seed: 2, seconds: 60);
        var r = ImuPhysics.Rotation(imu.Acc, imu.Gyro, 50, 1.0, ImuPhysics.Identity);

        Assert.True(r.Testable, $"{r.Pairs} pairs");
        Assert.InRange(r.Gain, 0.98, 1.02);
        Assert.InRange(r.Residual, 0, 0.03);
    }

    [Fact]
    public void Rotation_GyroscopeGain_TurnsSquareToGravity_IsMeasuredAsTheGain()
    {
        Prop.ForAll(Gen.Choose(0, 1000).ToArbitrary(), Gen.Choose(80, 150).ToArbitrary(), (seed, percent) =>
        {
            var imu = SimulatedImu.Record(seed, seconds: 40, squareTurns: true);
            var gain = percent / 100.0;
            imu.Gain(gain);
            var r = ImuPhysics.Rotation(imu.Acc, imu.Gyro, 50, 1.0, ImuPhysics.Identity);
            return r.Testable && Math.Abs(r.Gain - gain) < 0.02 * gain;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Rotation_GyroscopeGain_AnyTurns_MovesTheGainTheSameWay()
    {
        Prop.ForAll(Gen.Choose(0, 1000).ToArbitrary(), Gen.Elements(0.8, 0.9, 1.1, 1.2, 1.5).ToArbitrary(), (seed, gain) =>
        {
            var imu = SimulatedImu.Record(seed, seconds: 40);
            imu.Gain(gain);
            var r = ImuPhysics.Rotation(imu.Acc, imu.Gyro, 50, 1.0, ImuPhysics.Identity);
            return !r.Testable || Math.Sign(r.Gain - 1) == Math.Sign(gain - 1);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Rotation_SwappedGyroscopeAxes_LargeResidualThatTheSwapMapRemoves()
    {
        var imu = SimulatedImu.Record(seed: 4, seconds: 60);
        imu.SwapGyro(0, 1);
        var asRecorded = ImuPhysics.Rotation(imu.Acc, imu.Gyro, 50, 1.0, ImuPhysics.Identity);
        var swappedBack = ImuPhysics.Rotation(imu.Acc, imu.Gyro, 50, 1.0, [0, 1, 0, 1, 0, 0, 0, 0, 1]);

        Assert.True(asRecorded.Residual > 0.3, $"residual {asRecorded.Residual}");
        Assert.InRange(swappedBack.Residual, 0, 0.03);
    }

    [Fact]
    public void Rotation_SwappedAccelerometerAxes_ExplainedByTheMirroredMap()
    {
        var imu = SimulatedImu.Record(seed: 5, seconds: 60);
        imu.SwapAcc(0, 1);
        var asRecorded = ImuPhysics.Rotation(imu.Acc, imu.Gyro, 50, 1.0, ImuPhysics.Identity);
        var mirrored = ImuPhysics.Rotation(imu.Acc, imu.Gyro, 50, 1.0, [0, -1, 0, -1, 0, 0, 0, 0, -1]);

        Assert.True(asRecorded.Residual > 0.3, $"residual {asRecorded.Residual}");
        Assert.InRange(mirrored.Residual, 0, 0.03);
    }

    [Fact]
    public void Rotation_NoMovement_NotTestable()
    {
        var imu = SimulatedImu.Record(seed: 6, seconds: 30, turns: false);
        Assert.False(ImuPhysics.Rotation(imu.Acc, imu.Gyro, 50, 1.0, ImuPhysics.Identity).Testable);
    }

    internal static double[] RandomUnit(Random rng)
    {
        while (true)
        {
            double x = (rng.NextDouble() * 2) - 1, y = (rng.NextDouble() * 2) - 1, z = (rng.NextDouble() * 2) - 1;
            var n = Math.Sqrt((x * x) + (y * y) + (z * z));
            if (n is > 0.1 and < 1)
            {
                return [x / n, y / n, z / n];
            }
        }
    }
}

/// <summary>
/// A rigid IMU at 50 Hz: rests of 1.5–3 s alternate with turns of 40–90° about random body axes lasting 0.6–1.2 s.
/// The accelerometer reads Rᵀ·(0, 0, 1 g) plus small noise, the gyroscope the body rate plus small noise.
/// </summary>
internal sealed class SimulatedImu
{
    private SimulatedImu(double[][] acc, double[][] gyro)
    {
        Acc = acc;
        Gyro = gyro;
    }

    public double[][] Acc { get; }

    public double[][] Gyro { get; }

    public float[] Interleaved()
    {
        var n = Acc[0].Length;
        var frames = new float[n * 6];
        for (var i = 0; i < n; i++)
        {
            for (var k = 0; k < 3; k++)
            {
                frames[(i * 6) + k] = (float)Acc[k][i];
                frames[(i * 6) + 3 + k] = (float)Gyro[k][i];
            }
        }

        return frames;
    }

    public static SimulatedImu Record(int seed, int seconds, bool turns = true, bool squareTurns = false)
    {
        const double Dt = 0.02;
        var rng = new Random(seed);
        var n = seconds * 50;
        var acc = new[] { new double[n], new double[n], new double[n] };
        var gyro = new[] { new double[n], new double[n], new double[n] };

        // R: body → world, starting slightly tilted from "z up".
        var r = Rotation([1, 0, 0], 0.2);
        var i = 0;
        while (i < n)
        {
            var rest = (int)((1.5 + (1.5 * rng.NextDouble())) / Dt);
            for (var j = 0; j < rest && i < n; j++, i++)
            {
                Sample(i, [0, 0, 0]);
            }

            if (!turns)
            {
                continue;
            }

            var axis = ImuPhysicsTests.RandomUnit(rng);
            if (squareTurns)
            {
                // Turn about a body axis perpendicular to the current gravity direction (third row of R).
                double gx = r[6], gy = r[7], gz = r[8];
                var dot = (axis[0] * gx) + (axis[1] * gy) + (axis[2] * gz);
                double[] p = [axis[0] - (dot * gx), axis[1] - (dot * gy), axis[2] - (dot * gz)];
                var norm = Math.Sqrt((p[0] * p[0]) + (p[1] * p[1]) + (p[2] * p[2]));
                axis = [p[0] / norm, p[1] / norm, p[2] / norm];
            }

            var angle = (40 + (50 * rng.NextDouble())) * Math.PI / 180;
            var steps = (int)((0.6 + (0.6 * rng.NextDouble())) / Dt);
            var rate = angle / (steps * Dt);
            double[] w = [axis[0] * rate, axis[1] * rate, axis[2] * rate];
            for (var j = 0; j < steps && i < n; j++, i++)
            {
                r = Multiply(r, Rotation(axis, rate * Dt));
                Sample(i, w);
            }
        }

        return new SimulatedImu(acc, gyro);

        void Sample(int t, double[] w)
        {
            for (var k = 0; k < 3; k++)
            {
                // Rᵀ·(0, 0, 1): the third row of R.
                acc[k][t] = r[(2 * 3) + k] + (0.003 * Noise());
                gyro[k][t] = w[k] + (0.002 * Noise());
            }
        }

        double Noise() => rng.NextDouble() - 0.5;
    }

    public void Offset(int axis, double delta)
    {
        for (var i = 0; i < Acc[axis].Length; i++)
        {
            Acc[axis][i] += delta;
        }
    }

    public void Gain(double gain)
    {
        foreach (var g in Gyro)
        {
            for (var i = 0; i < g.Length; i++)
            {
                g[i] *= gain;
            }
        }
    }

    public void SwapGyro(int a, int b) => (Gyro[a], Gyro[b]) = (Gyro[b], Gyro[a]);

    public void SwapAcc(int a, int b) => (Acc[a], Acc[b]) = (Acc[b], Acc[a]);

    private static double[] Rotation(double[] axis, double angle)
    {
        double x = axis[0], y = axis[1], z = axis[2];
        var c = Math.Cos(angle);
        var s = Math.Sin(angle);
        var t = 1 - c;
        return
        [
            (t * x * x) + c, (t * x * y) - (s * z), (t * x * z) + (s * y),
            (t * x * y) + (s * z), (t * y * y) + c, (t * y * z) - (s * x),
            (t * x * z) - (s * y), (t * y * z) + (s * x), (t * z * z) + c,
        ];
    }

    private static double[] Multiply(double[] a, double[] b)
    {
        var m = new double[9];
        for (var i = 0; i < 3; i++)
        {
            for (var j = 0; j < 3; j++)
            {
                m[(i * 3) + j] = (a[i * 3] * b[j]) + (a[(i * 3) + 1] * b[3 + j]) + (a[(i * 3) + 2] * b[6 + j]);
            }
        }

        return m;
    }
}
