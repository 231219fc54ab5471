using System.Globalization;

namespace Har.Drift;

/// <summary>
/// A standard input fault that the drift diagnosis can name (<see cref="DriftAlarm.Cause"/> on <see cref="Channels"/>),
/// applied to a recording so that the model's accuracy under it can be measured on labelled reference data and stored in
/// the profile (<see cref="OutputReference.WithFaultAccuracy(InputFault, ReadOnlySpan{int}, ReadOnlySpan{int})"/>). A model
/// is often confidently wrong on inputs outside its training support (a gyroscope in deg/s, a flipped axis), so its
/// confidence cannot estimate its accuracy there; the accuracy measured under the named fault can.
/// </summary>
public sealed class InputFault
{
    private readonly Action<float[], int>? _frame;
    private readonly int _stuck;

    private InputFault(DriftCause cause, string[] channels, string description, double sourceFramesPerFrame, Action<float[], int>? frame, int stuck = -1)
    {
        _stuck = stuck;
        Cause = cause;
        Channels = channels;
        Description = description;
        SourceFramesPerFrame = sourceFramesPerFrame;
        _frame = frame;
    }

    /// <summary>Gets the cause the diagnosis names for this fault.</summary>
    public DriftCause Cause { get; }

    /// <summary>Gets the channels the fault is on (empty for the whole stream, e.g. a sample-rate error).</summary>
    public IReadOnlyList<string> Channels { get; }

    /// <summary>Gets a description for operators, e.g. <c>gyroscope in deg/s</c>.</summary>
    public string Description { get; }

    /// <summary>
    /// Gets the frames of the original recording per frame of the faulty one: 1, except for a sample-rate error (1.25 for a
    /// 40 Hz stream fed as 50 Hz: each declared 20 ms frame covers 25 ms of the activity). Map per-frame labels with it.
    /// </summary>
    public double SourceFramesPerFrame { get; }

    /// <summary>
    /// The standard faults for these channels: a unit error per sensor (gyroscope in deg/s, accelerometer in m/s²), a sign
    /// flip per channel, a swap per pair of axes of one sensor, a stream at 40 Hz fed as the declared rate, and a stuck
    /// channel per channel.
    /// </summary>
    /// <param name="channelNames">The profile's channel names (accelerometer <c>ax ay az</c>/<c>acc_*</c>, gyroscope <c>gx gy gz</c>/<c>gyro_*</c>).</param>
    /// <param name="sampleRateHz">The declared sample rate (Hz); the rate error is a 40 Hz stream when it is 50 Hz, 0.8× it otherwise.</param>
    /// <returns>The faults, in a fixed order.</returns>
    public static IReadOnlyList<InputFault> Standard(IReadOnlyList<string> channelNames, double sampleRateHz)
    {
        ArgumentNullException.ThrowIfNull(channelNames);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sampleRateHz);
        var n = channelNames.Count;
        var acc = ChannelKinds.GravityAxes(channelNames);
        var gyro = ChannelKinds.GyroscopeAxes(channelNames);
        var faults = new List<InputFault>();
        if (gyro.Length > 0)
        {
            faults.Add(Scale(channelNames, gyro, 180 / Math.PI, "gyroscope in deg/s"));
        }

        if (acc.Length > 0)
        {
            faults.Add(Scale(channelNames, acc, 9.80665, "accelerometer in m/s²"));
        }

        for (var c = 0; c < n; c++)
        {
            var k = c;
            faults.Add(new InputFault(DriftCause.SignFlip, [channelNames[c]], $"sign flip of {channelNames[c]}", 1, (f, i) => f[i + k] = -f[i + k]));
        }

        foreach (var axes in new[] { acc, gyro })
        {
            for (var a = 0; a < axes.Length; a++)
            {
                for (var b = a + 1; b < axes.Length; b++)
                {
                    var (x, y) = (axes[a], axes[b]);
                    faults.Add(new InputFault(DriftCause.AxisSwap, [channelNames[x], channelNames[y]], $"{channelNames[x]} and {channelNames[y]} swapped", 1, (f, i) => (f[i + x], f[i + y]) = (f[i + y], f[i + x])));
                }
            }
        }

        var trueRate = sampleRateHz == 50 ? 40 : 0.8 * sampleRateHz;
        faults.Add(new InputFault(DriftCause.SampleRate, [], string.Create(CultureInfo.InvariantCulture, $"{trueRate:G3} Hz fed as {sampleRateHz:G3} Hz"), sampleRateHz / trueRate, null));
        for (var c = 0; c < n; c++)
        {
            faults.Add(new InputFault(DriftCause.Stuck, [channelNames[c]], $"{channelNames[c]} stuck", 1, null, c));
        }

        return faults;
    }

    /// <summary>Applies the fault to a whole recording (interleaved frames of <paramref name="channels"/> values; the input is not changed).</summary>
    /// <param name="interleaved">The recording.</param>
    /// <param name="channels">Values per frame (the profile's channel count).</param>
    /// <returns>The faulty recording (fewer frames for a sample-rate error, see <see cref="SourceFramesPerFrame"/>).</returns>
    public float[] Apply(ReadOnlySpan<float> interleaved, int channels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        if (interleaved.Length % channels != 0)
        {
            throw new ArgumentException($"The recording holds {interleaved.Length} values, not a whole number of {channels}-channel frames.", nameof(interleaved));
        }

        var frames = interleaved.Length / channels;
        if (Cause == DriftCause.SampleRate)
        {
            // The activity is sampled at the true rate and read as the declared one: frame f of the faulty stream is the
            // original at f × ratio (linear interpolation between the original frames).
            var outFrames = Math.Max(0, (int)Math.Floor(((frames - 1) / SourceFramesPerFrame) + 1));
            var result = new float[outFrames * channels];
            for (var f = 0; f < outFrames; f++)
            {
                var t = f * SourceFramesPerFrame;
                var i0 = Math.Min(frames - 1, (int)t);
                var i1 = Math.Min(frames - 1, i0 + 1);
                var w = (float)(t - i0);
                for (var c = 0; c < channels; c++)
                {
                    result[(f * channels) + c] = ((1 - w) * interleaved[(i0 * channels) + c]) + (w * interleaved[(i1 * channels) + c]);
                }
            }

            return result;
        }

        var copy = interleaved.ToArray();
        if (Cause == DriftCause.Stuck)
        {
            // The channel keeps the value it had at the start.
            var c = _stuck < channels ? _stuck : throw new ArgumentException($"The fault is on channel {_stuck + 1} ({Channels[0]}); the recording has {channels} channels.", nameof(channels));
            for (var f = 1; f < frames; f++)
            {
                copy[(f * channels) + c] = copy[c];
            }

            return copy;
        }

        for (var f = 0; f < frames; f++)
        {
            _frame!(copy, f * channels);
        }

        return copy;
    }

    /// <summary>Returns the description with the cause, e.g. <c>Units (gx, gy, gz): gyroscope in deg/s</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => $"{Cause}{(Channels.Count > 0 ? $" ({string.Join(", ", Channels)})" : string.Empty)}: {Description}";

    private static InputFault Scale(IReadOnlyList<string> names, int[] axes, double factor, string description)
    {
        var f = (float)factor;
        return new InputFault(DriftCause.Units, [.. axes.Select(a => names[a])], description, 1, (frame, i) =>
        {
            foreach (var a in axes)
            {
                frame[i + a] *= f;
            }
        });
    }
}
