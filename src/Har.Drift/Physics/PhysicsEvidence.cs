namespace Har.Drift;

/// <summary>Gravity-magnitude statistics of one window.</summary>
internal readonly record struct GravityStatistics(double MedianResidual, double[] AxisResidual, int Blocks, int[] AxisBlocks, double[] Direction);

/// <summary>A still 2-second block starting at frame <paramref name="Start"/> of its window, with its mean (x, y, z).</summary>
internal sealed record StillBlock(long Start, double[] Mean);

/// <summary>One still-to-still pair: frames [<paramref name="Start"/>, <paramref name="End"/>) of its window, and per gyroscope map the gain and the relative misfit.</summary>
/// <remarks>
/// <see cref="Turn"/> is the gyroscope-integrated rotation R (row-major 3×3, as recorded) that takes a world-fixed vector
/// from the first moment's sensor frame to the second's; <see cref="From"/> and <see cref="To"/> are the accelerometer's
/// 0.5-second means at the two moments. For an accelerometer with offset δ, To − δ = R (From − δ), so
/// (I − R) δ = To − R·From: every turn measures the offset across its rotation axis, whoever carries the device.
/// </remarks>
internal sealed record RotationPair(long Start, long End, double[] Gains, double[] Misfits)
{
    public required double[] Turn { get; init; }

    public required double[] From { get; init; }

    public required double[] To { get; init; }

    /// <summary>Gets a value indicating whether both moments are quiet (per-axis deviation below <see cref="ImuPhysics.QuietDeviation"/> of gravity), so their means are nearly gravity alone.</summary>
    public bool Quiet { get; init; }
}

/// <summary>
/// Rotation-consistency statistics of one window (NaN when fewer than <see cref="ImuPhysics.MinPairs"/> pairs): the
/// median gain and misfit over the pairs, and distribution-free 95 % one-sided confidence bounds of those medians
/// (<see cref="ImuPhysics.MedianBound"/>; NaN with fewer than 5 pairs), which the checks judge: a median of a few pairs
/// (a device that has just started) scatters more than bounds set on devices' longer histories allow.
/// </summary>
internal readonly record struct RotationStatistics(double Gain, double Residual, int Pairs, double GainLower = double.NaN, double GainUpper = double.NaN, double ResidualLower = double.NaN)
{
    public static RotationStatistics Empty => new(double.NaN, double.NaN, 0);

    public bool Testable => !double.IsNaN(Gain);
}
