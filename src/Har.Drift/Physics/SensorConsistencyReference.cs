namespace Har.Drift;

/// <summary>
/// The physics-based consistency checks of a 6-axis IMU, calibrated on the training data: the reference device's
/// accelerometer sphere (gravity magnitude) and the ranges that healthy training windows of other subjects stay in.
/// </summary>
/// <param name="AccelerometerOffset">Offset vector b₀ of the reference accelerometer (sphere fit over the training blocks), in the accelerometer's unit.</param>
/// <param name="GravityMagnitude">Radius r₀ of that sphere: the gravity magnitude the reference accelerometer reports.</param>
/// <param name="MagnitudeBounds">Lower and upper bound of a window's median gravity-magnitude residual median(|v − b₀| / r₀ − 1) over its 2-second blocks.</param>
/// <param name="AxisLower">Per accelerometer axis (x, y, z), the lower bound of the median signed residual over the still blocks whose gravity lies mostly (≥ 0.5) along that axis, from the window and the device's earlier windows (<see cref="DeviceHistory"/>).</param>
/// <param name="AxisUpper">Per accelerometer axis, the upper bound of that statistic.</param>
/// <param name="AxisWindows">Per accelerometer axis, the training windows that had enough such blocks; an axis calibrated on fewer than 20 windows is not checked.</param>
/// <param name="RotationGainBounds">Lower and upper bound of the median (over the still-to-still pairs of the window and the device's earlier windows) ratio of the gyroscope-integrated turn to the accelerometer-measured turn of the gravity direction.</param>
/// <param name="RotationResidualLimit">Upper bound of the median angle between the gyroscope-predicted and the measured gravity direction, relative to the turn.</param>
/// <param name="RotationWindows">Training windows in which the rotation statistics could be computed (enough quasi-static pairs with a turn).</param>
/// <param name="Quantile">Central fraction of the training windows' statistics inside the bounds before widening (two-sided; the residual limit is one-sided at this quantile). The bounds of the statistics that accumulate over a device's windows (per-axis gravity, rotation, turn offset) are widened by half the range's width on each side (the misfit limit by half its value), because consecutive windows of a session share evidence and the training windows are far fewer independent devices.</param>
/// <param name="Windows">Training windows the checks were calibrated on.</param>
/// <param name="TurnOffsetLower">Per accelerometer axis, the lower bound of the offset (relative to <paramref name="AccelerometerOffset"/>) implied by the device's still-to-still turns; null in profiles built before this check existed.</param>
/// <param name="TurnOffsetUpper">Per accelerometer axis, the upper bound of that offset.</param>
/// <param name="TurnOffsetWindows">Per accelerometer axis, the training windows in which the turns determined it; an axis calibrated on fewer than 20 windows is not checked.</param>
internal sealed record SensorConsistencyReference(
    double[] AccelerometerOffset,
    double GravityMagnitude,
    double[] MagnitudeBounds,
    double[] AxisLower,
    double[] AxisUpper,
    int[] AxisWindows,
    double[] RotationGainBounds,
    double RotationResidualLimit,
    int RotationWindows,
    double Quantile,
    int Windows,
    double[]? TurnOffsetLower = null,
    double[]? TurnOffsetUpper = null,
    int[]? TurnOffsetWindows = null)
{
    /// <summary>Training windows an axis or the rotation statistics need before they are checked.</summary>
    public const int MinCalibrationWindows = 20;
}
