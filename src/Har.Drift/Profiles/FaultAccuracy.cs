using System.Text.Json.Serialization;

namespace Har.Drift;

/// <summary>The model's accuracy on the labelled reference windows with one input fault applied (see <see cref="OutputReference.WithFaultAccuracy(InputFault, ReadOnlySpan{int}, ReadOnlySpan{int})"/>).</summary>
/// <param name="Cause">The cause the diagnosis names for the fault.</param>
/// <param name="Channels">The channels it is named on (empty for the whole stream).</param>
/// <param name="Description">A description for operators, e.g. <c>gyroscope in deg/s</c>.</param>
/// <param name="Windows">Labelled reference windows predicted with the fault applied.</param>
/// <param name="Correct">Of those, the windows the model got right.</param>
internal sealed record FaultAccuracy(DriftCause Cause, string[] Channels, string Description, long Windows, long Correct)
{
    /// <summary>Gets the measured accuracy under the fault.</summary>
    [JsonIgnore]
    public double Accuracy => Windows == 0 ? double.NaN : (double)Correct / Windows;

    /// <summary>Gets the binomial standard error of <see cref="Accuracy"/> (with a half-window pseudo-count, so it is not 0 at 0 or 1).</summary>
    [JsonIgnore]
    public double StandardError
    {
        get
        {
            var p = (Correct + 0.5) / (Windows + 1.0);
            return Math.Sqrt(p * (1 - p) / Math.Max(1, Windows));
        }
    }
}
