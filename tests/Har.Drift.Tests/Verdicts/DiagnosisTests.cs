namespace Har.Drift.Tests.Verdicts;

/// <summary>The cause an alarm names from one scoring's findings.</summary>
public sealed class DiagnosisTests
{
    private static readonly string[] Gyro = ["gx", "gy", "gz"];
    private static readonly string[] All = ["gx", "gy", "gz", "ax", "ay", "az"];

    private static SensorFinding TurnOffset(string axis) =>
        new(SensorFindingKind.AccelerometerOffset, axis, 0.3, 0.08, $"turn offset on {axis}", 5, [axis]);

    private static SensorFinding Turns(double value, string[] implicated, double recent = double.NaN) =>
        new(SensorFindingKind.RotationMismatch, null, value, 0.9, "turns disagree", 5, implicated) { Recent = recent };

    [Fact]
    public void Name_FlipThatMakesTheTurnsAgree_BeatsTheLeadingTurnOffset()
    {
        var (cause, channels, _) = Diagnosis.Name([], [TurnOffset("az"), Turns(0.6, ["ay"])], nameof(SensorFindingKind.AccelerometerOffset));
        Assert.Equal(DriftCause.SignFlip, cause);
        Assert.Equal(["ay"], channels);
    }

    [Fact]
    public void Name_SwapThatMakesTheTurnsAgree_IsAnAxisSwap()
    {
        var (cause, channels, _) = Diagnosis.Name([], [Turns(0.6, ["gx", "gy"])], nameof(SensorFindingKind.RotationMismatch));
        Assert.Equal(DriftCause.AxisSwap, cause);
        Assert.Equal(["gx", "gy"], channels);
    }

    [Fact]
    public void Name_GainAtTheRateRatioOnThisWindowsTurns_IsTheSampleRate_NotTheTurnOffsetOrAGain()
    {
        // The combined median (0.87) still holds the device's turns from before the change; this window's are at 0.79.
        var (cause, _, text) = Diagnosis.Name([], [TurnOffset("az"), Turns(0.87, Gyro, recent: 0.79)], nameof(SensorFindingKind.AccelerometerOffset));
        Assert.Equal(DriftCause.SampleRate, cause);
        Assert.Contains("0.79", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Name_GainAwayFromEveryRateRatio_IsAGain()
    {
        var (cause, channels, _) = Diagnosis.Name([], [Turns(1.2, Gyro, recent: 1.21)], nameof(SensorFindingKind.RotationMismatch));
        Assert.Equal(DriftCause.Gain, cause);
        Assert.Equal(Gyro, channels);
    }

    [Fact]
    public void Name_TurnOffsetBesideAnUnexplainedMisfit_IsTheOffset()
    {
        // An offset bends the measured gravity turns too; a misfit that no remapping or gain explains does not void it.
        var (cause, channels, _) = Diagnosis.Name([], [TurnOffset("ay"), Turns(0.3, All)], nameof(SensorFindingKind.AccelerometerOffset));
        Assert.Equal(DriftCause.Offset, cause);
        Assert.Equal(["ay"], channels);
    }

    [Fact]
    public void Name_UnitErrorBeatsEverything()
    {
        var units = new SensorFinding(SensorFindingKind.Units, "gx", 5, 2, "deg/s", 3000, ["gx"]);
        var (cause, _, _) = Diagnosis.Name([], [Turns(0.6, ["ay"]), units], nameof(SensorFindingKind.RotationMismatch));
        Assert.Equal(DriftCause.Units, cause);
    }

    [Theory]
    [InlineData(0.8, 0.8)]
    [InlineData(0.75, 0.8)]
    [InlineData(0.52, 0.5)]
    [InlineData(2.1, 2.0)]
    public void RateRatio_GainNearACommonRatio(double gain, double ratio) => Assert.Equal(ratio, Diagnosis.RateRatio(gain));

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.9)]
    [InlineData(1.2)]
    [InlineData(double.NaN)]
    public void RateRatio_HealthyOrPlainGain_IsNone(double gain) => Assert.Null(Diagnosis.RateRatio(gain));
}
