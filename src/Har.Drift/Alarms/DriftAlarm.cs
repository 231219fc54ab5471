using System.Globalization;
using System.Text.Json.Serialization;

namespace Har.Drift;

/// <summary>The cause a drift alarm names.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DriftCause>))]
public enum DriftCause
{
    /// <summary>Nothing is wrong (no alarm).</summary>
    None,

    /// <summary>The data differ from the reference, but no sensor fault explains it.</summary>
    Unknown,

    /// <summary>The stream's sample rate is not the declared one (e.g. 40 Hz fed as 50 Hz).</summary>
    SampleRate,

    /// <summary>A sensor's unit is wrong (deg/s for rad/s, m/s² for g); <see cref="DriftAlarm.Channels"/> names the sensor's axes.</summary>
    Units,

    /// <summary>One axis reports with the wrong sign.</summary>
    SignFlip,

    /// <summary>Two axes of one sensor are swapped.</summary>
    AxisSwap,

    /// <summary>A sensor's scale (gain) is off.</summary>
    Gain,

    /// <summary>An accelerometer axis carries an offset (bias).</summary>
    Offset,

    /// <summary>A channel is stuck (repeats one value) or reports non-finite values.</summary>
    Stuck,

    /// <summary>A channel clips at the sensor's range.</summary>
    Saturation,

    /// <summary>The device was rotated or re-mounted against its own earlier minutes.</summary>
    Rotation,

    /// <summary>The sensor's noise floor rose.</summary>
    Noise,

    /// <summary>The device is worn differently from the reference (orientation unlike any reference window).</summary>
    Placement,
}

/// <summary>
/// A device's sequential alarm after a scoring: a CUSUM per check over the device's scorings, raised when one reaches the
/// threshold set by the false-alarm budget (<see cref="DriftScoringOptions.FalseAlarmsPerTenHours"/>), with the cause
/// named from the evidence.
/// </summary>
public sealed class DriftAlarm
{
    internal DriftAlarm(bool raised, double statistic, double threshold, DriftCause cause, IReadOnlyList<string> channels, string diagnosis)
    {
        Raised = raised;
        Statistic = statistic;
        Threshold = threshold;
        Cause = cause;
        Channels = channels;
        Diagnosis = diagnosis;
    }

    /// <summary>Gets a value indicating whether the alarm is raised.</summary>
    public bool Raised { get; }

    /// <summary>Gets the largest sequential statistic over the checks (0 while every check passes).</summary>
    [JsonInclude]
    internal double Statistic { get; }

    /// <summary>Gets the threshold the statistic is compared with, calibrated on the reference recordings for the budget.</summary>
    [JsonInclude]
    internal double Threshold { get; }

    /// <summary>Gets the named cause (<see cref="DriftCause.None"/> while no check fails).</summary>
    public DriftCause Cause { get; }

    /// <summary>Gets the channels the cause is named on (e.g. the flipped axis), empty when the whole device.</summary>
    public IReadOnlyList<string> Channels { get; }

    /// <summary>Gets a sentence for operators naming the cause and its evidence.</summary>
    public string Diagnosis { get; }

    /// <summary>Returns e.g. <c>ALARM SignFlip (ay): …</c> or <c>quiet (statistic 0.5 of 2.25)</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => Raised
        ? string.Create(CultureInfo.InvariantCulture, $"ALARM {Cause}{(Channels.Count > 0 ? $" ({string.Join(", ", Channels)})" : string.Empty)}: {Diagnosis} (statistic {Statistic:F2} ≥ {Threshold:F2})")
        : string.Create(CultureInfo.InvariantCulture, $"quiet (statistic {Statistic:F2} of {Threshold:F2}{(Cause == DriftCause.None ? string.Empty : $"; leading: {Cause}")})");
}
