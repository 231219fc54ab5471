using System.Text.Json.Serialization;

namespace Har.Drift;

/// <summary>
/// The within-device and noise-floor checks and the sequential alarm, calibrated on the training recordings (streamed
/// window by window with the monitor's step, each recording as one healthy device).
/// </summary>
/// <param name="NoiseFloorUpper">Per channel, the upper bound of a window's noise floor (<see cref="SelfFeatures.NoiseFloor"/>).</param>
/// <param name="NoiseRatioUpper">Per channel, the upper bound of a window's noise floor over the device's own earlier median.</param>
/// <param name="StillSpreadUpper">Per accelerometer axis, the upper bound of the median still-block spread.</param>
/// <param name="DirectionShiftUpper">Upper bound (degrees) of the median angle of a window's block directions to the device's earlier ones.</param>
/// <param name="CadenceRatioBounds">Lower and upper bound of the gait cadence over the device's own earlier cadence.</param>
/// <param name="GyroscopeRatioBounds">Lower and upper bound of the median |ω| in gait over the device's own earlier median.</param>
/// <param name="AccelerometerScale">The training windows' median |a| (the accelerometer's unit: 1 for g, 9.81 for m/s²).</param>
/// <param name="GyroscopeScale">The training windows' median |ω| in gait (the gyroscope's unit).</param>
/// <param name="Grid">The thresholds h the false-alarm rates were simulated at (ascending).</param>
/// <param name="FalseAlarmRates">Per check, the simulated false alarms per 10 device-hours of a new healthy device at each threshold of <paramref name="Grid"/> (cross-fitted evidence of the training recordings, block-bootstrapped; see <see cref="AlarmCalibration.WithRates"/>).</param>
/// <param name="DeviceHours">Hours of training recordings streamed.</param>
/// <param name="StepFrames">Frames between scorings in the calibration (half the profile's window).</param>
/// <param name="Sessions">Training recordings the rates were simulated from.</param>
/// <param name="EvidenceCap">The largest excess a failed finding added to its evidence when the rates were simulated (<see cref="Diagnosis.MaxExcess"/>); null in a profile written before it was stored, whose rates were simulated with a cap of 2 and every excess measured from 0 (<see cref="SensorFinding.Ideal"/> ignored). A device is scored as its profile was calibrated, so the thresholds keep their meaning.</param>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
internal sealed record AlarmReference(
    double[] NoiseFloorUpper,
    double[] NoiseRatioUpper,
    double[] StillSpreadUpper,
    double DirectionShiftUpper,
    double[] CadenceRatioBounds,
    double[] GyroscopeRatioBounds,
    double AccelerometerScale,
    double GyroscopeScale,
    double[] Grid,
    Dictionary<string, double[]> FalseAlarmRates,
    double DeviceHours,
    int StepFrames,
    int Sessions,
    double? EvidenceCap = null)
{
    /// <summary>The evidence cap the thresholds were calibrated with (2 for a profile that does not say).</summary>
    public const double LegacyEvidenceCap = 2;

    /// <summary>Gets the evidence cap to score with: the one the rates were simulated with.</summary>
    [JsonIgnore]
    public double Cap => EvidenceCap ?? LegacyEvidenceCap;

    /// <summary>Quantile of the training statistics the one-sided bounds sit at (before the margin).</summary>
    public const double Quantile = 0.98;

    /// <summary>Fraction of a bound's distance from the training median added to it.</summary>
    public const double Margin = 0.1;

    /// <summary>
    /// A check's alarm threshold for a false-alarm budget: the budget is split evenly over the checks that failed at all
    /// on the calibration recordings, and the threshold is the smallest simulated one whose false-alarm rate is within
    /// the check's share (at least <see cref="AlarmState.MinThreshold"/>; above the grid when none is).
    /// </summary>
    public double Threshold(string check, double perTenHours)
    {
        // A profile written before the rates were simulated has none: every check at the smallest threshold.
        if (FalseAlarmRates is null || Grid is null || !FalseAlarmRates.TryGetValue(check, out var rates) || rates.Length == 0)
        {
            return AlarmState.MinThreshold;
        }

        var share = perTenHours / Math.Max(1, FalseAlarmRates.Count(kv => kv.Value.Length > 0 && kv.Value[0] > 0));
        for (var i = 0; i < rates.Length && i < Grid.Length; i++)
        {
            if (rates[i] <= share)
            {
                return Math.Max(AlarmState.MinThreshold, Grid[i]);
            }
        }

        return Grid.Length > 0 ? Grid[^1] + AlarmState.Increment : AlarmState.MinThreshold;
    }
}
