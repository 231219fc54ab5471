using System.Globalization;
using System.Text.Json.Serialization;

namespace Har.Drift;

/// <summary>Kinds of sensor problems found before any statistics are computed.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SensorFindingKind>))]
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
    /// accelerometer between still moments: a gyroscope gain error, or swapped/flipped axes on either sensor. Also: one
    /// accelerometer axis changed sign between two still moments over which the gyroscope measured no turn (the frame step).
    /// </summary>
    RotationMismatch,

    /// <summary>
    /// The accelerometer offset implied by the device's still-to-still turns is outside the range healthy devices stay
    /// in: where gravity turned as the gyroscope says, the constant part left over is the accelerometer's offset
    /// ((I − R) δ = a₂ − R a₁), which a 1-minute window of one posture cannot show. Also: one accelerometer axis stepped
    /// alone between two still moments over which the gyroscope measured no turn (the frame step).
    /// </summary>
    AccelerometerOffset,

    /// <summary>
    /// The high-frequency energy of the quietest moments (or the spread of still postures) is above what healthy devices
    /// show, or above the device's own earlier level: added sensor noise, vibration or a failing sensor.
    /// </summary>
    NoiseFloor,

    /// <summary>
    /// The gravity directions of the device's recent postures are turned against its own earlier ones, or the gravity
    /// direction turned between two still moments over which the gyroscope measured no turn (the frame step): the device
    /// was rotated or re-mounted, or its axes remapped.
    /// </summary>
    OrientationShift,

    /// <summary>The gait cadence changed against the device's own earlier minutes (with the gyroscope's turn scaled alike): the stream's sample rate is not the declared one.</summary>
    SampleRate,

    /// <summary>A sensor's scale is a unit conversion away from the reference (deg/s for rad/s, m/s² for g, or the reverse).</summary>
    Units,
}

/// <summary>A sensor problem, reported on its own, separate from the distribution tests.</summary>
public sealed class SensorFinding
{
    internal SensorFinding(SensorFindingKind kind, string? channel, double value, double threshold, string message, int samples = 0, IReadOnlyList<string>? implicated = null)
    {
        Kind = kind;
        Channel = channel;
        Value = value;
        Threshold = threshold;
        Message = message;
        Samples = samples;
        Implicated = implicated;
    }

    /// <summary>Gets what was found.</summary>
    public SensorFindingKind Kind { get; }

    /// <summary>Gets the channel concerned, or null for the whole device.</summary>
    public string? Channel { get; }

    /// <summary>Gets the measured quantity (fraction of samples, angle in degrees, relative jitter…).</summary>
    public double Value { get; }

    /// <summary>Gets the threshold it crossed.</summary>
    [JsonInclude]
    internal double Threshold { get; }

    /// <summary>Gets a sentence for operators.</summary>
    public string Message { get; }

    /// <summary>Gets how many units of evidence the value rests on (2-second blocks, still-to-still pairs), or 0 when not applicable.</summary>
    [JsonInclude]
    internal int Samples { get; }

    /// <summary>Gets the channels the finding points at (may be several), or null when it is <see cref="Channel"/> alone.</summary>
    public IReadOnlyList<string>? Implicated { get; }

    /// <summary>
    /// Gets the finding's statistic on the most recent evidence alone (for the rotation gain: the median over this
    /// window's own still-to-still turns, without the device's earlier ones), or NaN; used to name the cause.
    /// </summary>
    internal double Recent { get; init; } = double.NaN;

    /// <summary>
    /// Gets the statistic's ideal value, from which the alarm measures how far past its bound it lies (in units of the
    /// bound's distance from it): 0 for a residual or an offset, 1 for a ratio (a gain, a cadence against the device's
    /// earlier one). A 40 Hz stream's gyroscope turn gain of 0.8 against the bound 0.898 is one bound width past it,
    /// not 11 % of the bound.
    /// </summary>
    internal double Ideal { get; init; }

    /// <summary>
    /// Gets the check (one CUSUM of the alarm) this finding feeds when it is not the one its kind and channels select
    /// (<see cref="Diagnosis.Key"/>): the frame-step check names a sign flip, an offset or a rotation, but it is one
    /// check with one threshold. Null for every other finding.
    /// </summary>
    internal string? Check { get; init; }

    /// <summary>
    /// Gets whether the finding rests only on evidence an earlier scoring of the device already judged (its earlier
    /// still-to-still turns, none in this window): it is reported, but adds nothing to the alarm's evidence, which
    /// would otherwise count the same turns once per scoring for as long as they stay in the device's history.
    /// </summary>
    internal bool Repeated { get; init; }

    /// <summary>Returns this finding as feeding <paramref name="check"/>.</summary>
    internal SensorFinding WithCheck(string check) =>
        new(Kind, Channel, Value, Threshold, Message, Samples, Implicated) { Recent = Recent, Ideal = Ideal, Check = check, Repeated = Repeated };

    /// <summary>Returns this finding as resting only on evidence an earlier scoring judged (<see cref="Repeated"/>).</summary>
    internal SensorFinding AsRepeated() =>
        new(Kind, Channel, Value, Threshold, Message, Samples, Implicated) { Recent = Recent, Ideal = Ideal, Check = Check, Repeated = true };

    /// <summary>Returns e.g. <c>Flatline ay: ay repeated the same value for 300 consecutive samples; …</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Kind} {Channel ?? "device"}: {Message}");
}
