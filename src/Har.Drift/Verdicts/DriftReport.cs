namespace Har.Drift;

/// <summary>What a channel's data says about drift.</summary>
public enum DriftVerdict
{
    /// <summary>Too little (finite) data to judge: fewer samples than the configured minimum.</summary>
    Insufficient,

    /// <summary>No test is both significant (after correction) and above its effect-size floor.</summary>
    Stable,

    /// <summary>At least one test is significant after multiple-testing correction and its effect exceeds the floor.</summary>
    Drifted,
}

/// <summary>The multiple-testing correction applied across all channels and tests of one scoring.</summary>
public enum MultipleTestingCorrection
{
    /// <summary>Holm's step-down procedure (controls the family-wise error rate).</summary>
    Holm,

    /// <summary>Benjamini–Hochberg (controls the false discovery rate).</summary>
    BenjaminiHochberg,
}

/// <summary>The evidence of one test on one channel: enough to replay the decision.</summary>
/// <param name="Test"><c>ks</c> or <c>psi</c>.</param>
/// <param name="Statistic">KS D, or PSI.</param>
/// <param name="PValue">Raw p-value computed at the effective sample size (KS: finite-n Kolmogorov distribution; PSI: χ²(B − 1) of PSI·n_eff').</param>
/// <param name="AdjustedPValue">p-value after the multiple-testing correction.</param>
/// <param name="Floor">The effect-size floor the statistic had to reach.</param>
/// <param name="Significant">Whether the adjusted p-value is at or below alpha.</param>
/// <param name="AboveFloor">Whether the statistic is at or above the floor.</param>
/// <param name="InnerEdges">PSI only: the bin edges (quantiles of the matched reference).</param>
/// <param name="ReferenceCounts">PSI only: matched-reference points per bin.</param>
/// <param name="CurrentCounts">PSI only: current samples per bin.</param>
public sealed record TestEvidence(string Test, double Statistic, double PValue, double AdjustedPValue, double Floor, bool Significant, bool AboveFloor, double[]? InnerEdges = null, long[]? ReferenceCounts = null, long[]? CurrentCounts = null);

/// <summary>The verdict on one channel, with its evidence.</summary>
/// <param name="Channel">Channel name.</param>
/// <param name="Verdict">The verdict.</param>
/// <param name="N">Finite samples in the current window.</param>
/// <param name="EffectiveN">Effective sample size of the current window (autocorrelation-aware).</param>
/// <param name="ReferenceEffectiveN">Effective sample size of the matched reference windows.</param>
/// <param name="Ks">The Kolmogorov–Smirnov evidence (null when insufficient).</param>
/// <param name="Psi">The PSI evidence (null when insufficient).</param>
public sealed record ChannelVerdict(string Channel, DriftVerdict Verdict, int N, double EffectiveN, double ReferenceEffectiveN, TestEvidence? Ks, TestEvidence? Psi)
{
    /// <summary>Gets the drift score exported as <c>har_drift_score{channel}</c>: the KS effect size D (0 when insufficient).</summary>
    public double Score => Ks?.Statistic ?? 0;
}

/// <summary>Kinds of sensor problems found before any statistics are computed.</summary>
public enum SensorFindingKind
{
    /// <summary>NaN or ±Inf values.</summary>
    NonFinite,

    /// <summary>Values at the sensor's range limit (clipping).</summary>
    Saturation,

    /// <summary>A channel that does not change at all (stuck sensor).</summary>
    Flatline,

    /// <summary>Sample timestamps deviate from the nominal rate (jitter, gaps).</summary>
    SampleRateJitter,

    /// <summary>The gravity direction is unlike any seen in the reference (device mounted differently, axes swapped).</summary>
    OrientationChange,

    /// <summary>
    /// The accelerometer's gravity magnitude (2-second block means, against the reference device's calibration sphere)
    /// is outside the range healthy training windows stay in: an accelerometer offset or gain error.
    /// </summary>
    GravityMagnitude,

    /// <summary>
    /// The gyroscope's integrated rotation disagrees with the turn of the gravity direction measured by the
    /// accelerometer between still moments: a gyroscope gain error, or swapped/flipped axes on either sensor.
    /// </summary>
    RotationMismatch,

    /// <summary>
    /// The accelerometer offset implied by the device's still-to-still turns is outside the range healthy devices stay
    /// in: where gravity turned as the gyroscope says, the constant part left over is the accelerometer's offset
    /// ((I − R) δ = a₂ − R a₁), which a 1-minute window of one posture cannot show.
    /// </summary>
    AccelerometerOffset,
}

/// <summary>A sensor problem, reported on its own, separate from the distribution tests.</summary>
/// <param name="Kind">What was found.</param>
/// <param name="Channel">The channel concerned, or null for the whole device.</param>
/// <param name="Value">The measured quantity (fraction of samples, angle in degrees, relative jitter…).</param>
/// <param name="Threshold">The threshold it crossed.</param>
/// <param name="Message">A sentence for operators.</param>
/// <param name="Samples">How many units of evidence the value rests on (2-second blocks, still-to-still pairs), or 0 when not applicable.</param>
/// <param name="Implicated">The channels the finding points at (may be several), or null when it is <paramref name="Channel"/> alone.</param>
public sealed record SensorFinding(SensorFindingKind Kind, string? Channel, double Value, double Threshold, string Message, int Samples = 0, IReadOnlyList<string>? Implicated = null);

/// <summary>One scoring of a current window against a reference profile.</summary>
/// <param name="ReferenceHash">SHA-256 of the reference profile used.</param>
/// <param name="Correction">The multiple-testing correction applied.</param>
/// <param name="Alpha">The significance level.</param>
/// <param name="MatchedSegments">Indices of the reference windows the current window was compared with.</param>
/// <param name="Channels">Per-channel verdicts.</param>
/// <param name="Findings">Sensor findings.</param>
public sealed record DriftReport(string ReferenceHash, MultipleTestingCorrection Correction, double Alpha, int[] MatchedSegments, IReadOnlyList<ChannelVerdict> Channels, IReadOnlyList<SensorFinding> Findings)
{
    /// <summary>Gets a value indicating whether any channel drifted.</summary>
    public bool AnyDrifted => Channels.Any(c => c.Verdict == DriftVerdict.Drifted);

    /// <summary>Gets a value indicating whether the window needs attention: a channel drifted or a sensor finding was raised.</summary>
    public bool Flagged => AnyDrifted || Findings.Count > 0;
}
