namespace Har.Drift.Tests.Physics;

/// <summary>The consistency checks end to end: calibrated by the profile builder, reported by the scorer.</summary>
public sealed class SensorConsistencyTests
{
    [Fact]
    public void Build_SixAxisImu_CalibratesTheChecks()
    {
        var c = SimulatedProfiles.RigidImu.SensorConsistency;

        Assert.NotNull(c);
        Assert.Equal(32, c.Windows);
        Assert.InRange(c.GravityMagnitude, 0.95, 1.01); // block means over turns average rotated gravity: slightly below 1 g
        Assert.True(c.RotationWindows >= SensorConsistencyReference.MinCalibrationWindows, $"{c.RotationWindows} rotation windows");
        Assert.InRange(c.RotationGainBounds[0], 0.95, 1.01);
        Assert.InRange(c.RotationGainBounds[1], 0.99, 1.05);
        Assert.True(c.RotationGainBounds[0] <= c.RotationGainBounds[1]);
    }

    [Fact]
    public void Build_ChannelsWithoutGyroscope_NoChecks()
    {
        var builder = new ReferenceProfileBuilder(["ax", "ay", "az"], new ReferenceProfileOptions { SegmentLength = 500 });
        var imu = SimulatedImu.Record(seed: 1, seconds: 30).Interleaved();
        builder.AddRecording("a", [.. imu.Where((_, i) => i % 6 < 3)]);

        Assert.Null(builder.Build("accelerometer only").SensorConsistency);
    }

    [Fact]
    public void Profile_JsonRoundTrip_KeepsTheChecksAndTheHash()
    {
        var loaded = ReferenceProfile.FromJson(SimulatedProfiles.RigidImu.ToJson());

        Assert.Equal(SimulatedProfiles.RigidImu.Hash, loaded.Hash);
        Assert.Equal(SimulatedProfiles.RigidImu.SensorConsistency!.RotationGainBounds, loaded.SensorConsistency!.RotationGainBounds);
    }

    [Fact]
    public void Score_SwappedGyroscopeAxes_RotationMismatchNamingThePair()
    {
        var imu = SimulatedImu.Record(seed: 900, seconds: 20);
        imu.SwapGyro(0, 1);
        var report = new DriftScorer(SimulatedProfiles.RigidImu).Score(imu.Interleaved());

        // The still-to-still check first; the motion consistency check, when the window has motion, names the same pair.
        var f = report.Findings.First(f => f.Kind == SensorFindingKind.RotationMismatch);
        Assert.All(report.Findings.Where(x => x.Kind == SensorFindingKind.RotationMismatch), x => Assert.Equal(["gx", "gy"], x.Implicated));
        Assert.Equal(["gx", "gy"], f.Implicated);
        Assert.True(f.Value > f.Threshold);
        Assert.True(f.Samples >= ImuPhysics.MinPairs);
        Assert.Contains("gyroscope x and y axes swapped", f.Message, StringComparison.Ordinal);
        Assert.True(report.Flagged);
    }

    [Fact]
    public void Score_SwappedAccelerometerAxes_RotationMismatchNamingTheAccelerometerPair()
    {
        var imu = SimulatedImu.Record(seed: 901, seconds: 20);
        imu.SwapAcc(1, 2);
        var report = new DriftScorer(SimulatedProfiles.RigidImu).Score(imu.Interleaved());

        Assert.Contains(report.Findings, f => f.Kind == SensorFindingKind.RotationMismatch);
        Assert.All(report.Findings.Where(x => x.Kind == SensorFindingKind.RotationMismatch), x => Assert.Equal(["ay", "az"], x.Implicated));
    }

    [Fact]
    public void Score_GyroscopeGain_RotationMismatchWithTheGain()
    {
        var imu = SimulatedImu.Record(seed: 902, seconds: 20);
        imu.Gain(1.2);
        var report = new DriftScorer(SimulatedProfiles.RigidImu).Score(imu.Interleaved());

        var f = Assert.Single(report.Findings, f => f.Kind == SensorFindingKind.RotationMismatch);
        Assert.InRange(f.Value, 1.15, 1.25);
        Assert.Equal(["gx", "gy", "gz"], f.Implicated);
    }

    [Fact]
    public void Score_AccelerometerOffset_GravityMagnitudeFinding()
    {
        var imu = SimulatedImu.Record(seed: 903, seconds: 20);
        imu.Offset(0, 0.3);
        var report = new DriftScorer(SimulatedProfiles.RigidImu).Score(imu.Interleaved());

        var f = Assert.Single(report.Findings, f => f.Kind == SensorFindingKind.GravityMagnitude);
        Assert.True(Math.Abs(f.Value) > Math.Abs(f.Threshold));
        Assert.True(f.Samples > 0);
    }

    [Fact]
    public void Score_ChecksDisabled_NoConsistencyFindings()
    {
        var imu = SimulatedImu.Record(seed: 904, seconds: 20);
        imu.SwapGyro(0, 2);
        var report = new DriftScorer(SimulatedProfiles.RigidImu, new DriftScoringOptions { ConsistencyChecks = false }).Score(imu.Interleaved());

        Assert.DoesNotContain(report.Findings, f => f.Kind is SensorFindingKind.RotationMismatch or SensorFindingKind.GravityMagnitude);
    }
}
