using System.Text.Json.Serialization;
using System.Globalization;
using System.Text;

namespace Har.Drift;

/// <summary>One scoring of a current window (and of the model's outputs, when fed) against a reference profile.</summary>
public sealed class DriftReport
{
    internal DriftReport(string referenceHash, MultipleTestingCorrection correction, double alpha, int[] matchedSegments, IReadOnlyList<ChannelVerdict> channels, IReadOnlyList<SensorFinding> findings, OutputVerdict? outputs = null, string? device = null)
    {
        ReferenceHash = referenceHash;
        Correction = correction;
        Alpha = alpha;
        MatchedSegments = matchedSegments;
        Channels = channels;
        Findings = findings;
        Outputs = outputs;
        Device = device;
    }

    /// <summary>Gets the device the window came from (<see cref="DeviceDriftMonitor"/>), or null.</summary>
    public string? Device { get; }

    /// <summary>Gets the overall verdict: <see cref="DriftVerdict.Drifted"/> when an input channel or the outputs drifted, <see cref="DriftVerdict.Insufficient"/> when nothing could be judged.</summary>
    public DriftVerdict Verdict
    {
        get
        {
            if (AnyDrifted)
            {
                return DriftVerdict.Drifted;
            }

            var judged = Outputs is { Verdict: DriftVerdict.Stable };
            foreach (var c in Channels)
            {
                judged |= c.Verdict != DriftVerdict.Insufficient;
            }

            return judged ? DriftVerdict.Stable : DriftVerdict.Insufficient;
        }
    }

    /// <summary>Gets the SHA-256 of the reference profile used.</summary>
    public string ReferenceHash { get; }

    /// <summary>Gets the multiple-testing correction applied.</summary>
    public MultipleTestingCorrection Correction { get; }

    /// <summary>Gets the significance level.</summary>
    public double Alpha { get; }

    /// <summary>Gets the indices of the reference windows the current window was compared with.</summary>
    [JsonInclude]
    internal IReadOnlyList<int> MatchedSegments { get; }

    /// <summary>Gets the per-channel verdicts of the input.</summary>
    public IReadOnlyList<ChannelVerdict> Channels { get; }

    /// <summary>Gets the sensor findings.</summary>
    public IReadOnlyList<SensorFinding> Findings { get; }

    /// <summary>Gets the output-drift verdict (class mix, confidence, entropy), or null when no outputs were scored.</summary>
    public OutputVerdict? Outputs { get; }

    /// <summary>Gets the device's sequential alarm after this scoring (with the named cause), or null when the profile has no calibrated alarm (built before it existed, or not a 6-axis IMU).</summary>
    public DriftAlarm? Alarm { get; internal set; }

    /// <summary>Gets the checks that had no evidence to work with in this scoring, each as a sentence (e.g. "no still posture in this window: …").</summary>
    public IReadOnlyList<string> Unchecked { get; internal set; } = [];

    /// <summary>Gets a value indicating whether any input channel or the outputs drifted.</summary>
    public bool AnyDrifted
    {
        get
        {
            foreach (var c in Channels)
            {
                if (c.Verdict == DriftVerdict.Drifted)
                {
                    return true;
                }
            }

            return Outputs is { Verdict: DriftVerdict.Drifted };
        }
    }

    /// <summary>Gets a value indicating whether the window needs attention: something drifted or a sensor finding was raised.</summary>
    internal bool Flagged => AnyDrifted || Findings.Count > 0;

    /// <summary>
    /// Returns the overall verdict line first, then one line per drifted channel, sensor finding and the outputs, e.g.
    /// <c>Drifted (device phone-7, reference 1a2b3c4d5e6f): 1 of 6 channels drifted, 1 sensor finding</c>.
    /// </summary>
    /// <returns>The summary.</returns>
    public override string ToString()
    {
        var inv = CultureInfo.InvariantCulture;
        var drifted = 0;
        foreach (var c in Channels)
        {
            drifted += c.Verdict == DriftVerdict.Drifted ? 1 : 0;
        }

        var sb = new StringBuilder();
        sb.Append(inv, $"{Verdict} (");
        if (Device is not null)
        {
            sb.Append(inv, $"device {Device}, ");
        }

        sb.Append(inv, $"reference {ReferenceHash[..Math.Min(12, ReferenceHash.Length)]}): {drifted} of {Channels.Count} channels drifted, {Findings.Count} sensor finding{(Findings.Count == 1 ? string.Empty : "s")}");
        if (Outputs is { } o)
        {
            sb.Append(inv, $", outputs {o.Verdict}");
        }

        foreach (var c in Channels)
        {
            if (c.Verdict == DriftVerdict.Drifted)
            {
                sb.Append('\n').Append("  ").Append(c);
            }
        }

        foreach (var f in Findings)
        {
            sb.Append('\n').Append("  ").Append(f);
        }

        if (Outputs is { } outputs)
        {
            sb.Append('\n').Append("  ").Append(outputs);
        }

        return sb.ToString();
    }
}
