using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Har.Drift;

/// <summary>How a current window is scored against a reference profile.</summary>
public sealed class DriftScoringOptions
{
    /// <summary>Gets or sets the significance level applied to corrected p-values.</summary>
    /// <value>The default value is 0.05.</value>
    [Range(1e-12, 0.5)]
    public double Alpha { get; set; } = 0.05;

    /// <summary>Gets or sets the correction across all channels and tests of one scoring.</summary>
    /// <value>The default value is <see cref="MultipleTestingCorrection.Holm"/>.</value>
    internal MultipleTestingCorrection Correction { get; set; } = MultipleTestingCorrection.Holm;

    /// <summary>Gets or sets the minimum number of finite samples per channel; below it the verdict is <see cref="DriftVerdict.Insufficient"/>.</summary>
    /// <value>The default value is 500 (10 s at 50 Hz).</value>
    internal int MinSamples { get; set; } = 500;

    /// <summary>Gets or sets how many reference windows (the most similar ones) the current window is compared with.</summary>
    /// <value>The default value is 8.</value>
    internal int MatchedSegments { get; set; } = 8;

    /// <summary>
    /// Gets or sets how many of the worst-matching channels are ignored when choosing the reference windows, so that
    /// one or two broken channels cannot steer the match (clamped so that at least one channel is used).
    /// </summary>
    /// <value>The default value is 2.</value>
    internal int TrimmedChannels { get; set; } = 2;

    /// <summary>Gets or sets the largest autocorrelation lag summed for the effective sample size.</summary>
    /// <value>The default value is 100 (2 s at 50 Hz).</value>
    internal int MaxLag { get; set; } = 100;

    /// <summary>Gets or sets the number of PSI bins (quantiles of the matched reference).</summary>
    /// <value>The default value is 10.</value>
    internal int PsiBins { get; set; } = PopulationStabilityIndex.DefaultBins;

    /// <summary>Gets or sets the replacement for an empty PSI bin fraction.</summary>
    /// <value>The default value is 1e-4.</value>
    internal double PsiEpsilon { get; set; } = PopulationStabilityIndex.DefaultEpsilon;

    /// <summary>Gets or sets a KS D floor applied to every channel instead of the profile's calibrated floors.</summary>
    /// <value>The default value is <see langword="null"/> (use the calibrated floors).</value>
    internal double? KsFloor { get; set; }

    /// <summary>Gets or sets a PSI floor applied to every channel instead of the profile's calibrated floors.</summary>
    /// <value>The default value is <see langword="null"/> (use the calibrated floors).</value>
    internal double? PsiFloor { get; set; }

    /// <summary>Gets or sets the accelerometer full-scale range in g; samples within 0.5 % of it count as saturated.</summary>
    /// <value>The default value is 8 g.</value>
    [Range(0.1, 1000)]
    public double AccelerometerRange { get; set; } = 8;

    /// <summary>Gets or sets the gyroscope full-scale range in rad/s; samples within 0.5 % of it count as saturated.</summary>
    /// <value>The default value is 34.9 rad/s (2000 °/s).</value>
    [Range(0.1, 10_000)]
    public double GyroscopeRange { get; set; } = 34.9;

    /// <summary>Gets or sets the fraction of saturated samples that raises a finding.</summary>
    /// <value>The default value is 0.001.</value>
    internal double SaturationFraction { get; set; } = 0.001;

    /// <summary>Gets or sets the length of a run of identical values (samples) that raises a flatline finding.</summary>
    /// <value>The default value is 250 (5 s at 50 Hz).</value>
    internal int FlatlineRun { get; set; } = 250;

    /// <summary>Gets or sets the angle (degrees) between the window's gravity direction and the nearest reference window's beyond which orientation changed.</summary>
    /// <value>The default value is 40 degrees.</value>
    internal double OrientationChangeDegrees { get; set; } = 40;

    /// <summary>
    /// Gets or sets a value indicating whether the physics-based consistency checks calibrated in the profile
    /// (gravity magnitude; gyroscope rotation against the turn of gravity) run and report their findings.
    /// </summary>
    /// <value>The default value is <see langword="true"/>.</value>
    internal bool ConsistencyChecks { get; set; } = true;

    /// <summary>Gets or sets the relative spread of sample intervals (std / nominal) that raises a jitter finding when timestamps are given.</summary>
    /// <value>The default value is 0.2.</value>
    internal double JitterTolerance { get; set; } = 0.2;

    /// <summary>Gets or sets the Jensen–Shannon distance (base 2, in [0, 1]) between the current and the reference predicted-class mix that output drift must reach.</summary>
    /// <value>The default value is 0.1 (a shift of about ten points of the mix between two classes).</value>
    internal double ClassMixFloor { get; set; } = 0.1;

    /// <summary>Gets or sets the KS D between the current and the reference confidence (and entropy) distributions that output drift must reach.</summary>
    /// <value>The default value is 0.1.</value>
    internal double OutputKsFloor { get; set; } = 0.1;

    /// <summary>
    /// Gets or sets the false-alarm budget of the per-device sequential alarm (<see cref="DriftReport.Alarm"/>): its
    /// threshold is the smallest at which the profile's training recordings, streamed as healthy devices, raised at most
    /// this many alarms per 10 device-hours.
    /// </summary>
    /// <value>The default value is 1.</value>
    [Range(0.0, 1000.0)]
    public double FalseAlarmsPerTenHours { get; set; } = 1;

    /// <summary>Gets or sets the minimum number of predictions for output drift; below it the output verdict is <see cref="DriftVerdict.Insufficient"/>.</summary>
    /// <value>The default value is 30.</value>
    internal int MinPredictions { get; set; } = 30;
}

/// <summary>Source-generated validation of <see cref="DriftScoringOptions"/> given to a <see cref="DriftScorer"/> (the rules <c>AddHarDrift</c> checks as <c>Scoring</c>).</summary>
[OptionsValidator]
internal sealed partial class DriftScoringOptionsValidator : IValidateOptions<DriftScoringOptions>;
