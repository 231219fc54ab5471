using System.Globalization;

namespace Har.Drift;

/// <summary>
/// The structural bounds of a profile's parts, checked whenever a <see cref="ReferenceProfile"/> is made (in particular
/// from JSON, which may have been edited): present parts, positive lengths and rates, finite numbers, a sorted sorted
/// sample, counts that add up, and array lengths that match each other and the channels. The statistics themselves are
/// not re-derived.
/// </summary>
internal static class ReferenceProfileChecks
{
    /// <summary>The fewest samples per window a profile may have (as <see cref="ReferenceProfileOptions.SegmentLength"/>).</summary>
    internal const int MinSegmentLength = 16;

    /// <summary>The most samples per window a profile may have (as <see cref="ReferenceProfileOptions.SegmentLength"/>).</summary>
    internal const int MaxSegmentLength = 10_000_000;

    /// <summary>The highest sample rate a profile may have (as <see cref="ReferenceProfileOptions.SampleRateHz"/>).</summary>
    internal const double MaxSampleRateHz = 1_000_000;

    /// <exception cref="InvalidDataException">A part is missing or out of its bounds; the message names the field and what was expected.</exception>
    public static void Check(IReadOnlyList<ChannelReference>? channels, IReadOnlyList<ReferenceSegment>? segments, CalibratedFloors? floors, double sampleRateHz, int segmentLength)
    {
        if (!(sampleRateHz > 0 && sampleRateHz <= MaxSampleRateHz))
        {
            throw Invalid($"SampleRateHz is {sampleRateHz:R}; expected a rate above 0 and at most {MaxSampleRateHz:#,0} Hz");
        }

        if (segmentLength is < MinSegmentLength or > MaxSegmentLength)
        {
            throw Invalid($"SegmentLength is {segmentLength}; expected {MinSegmentLength} to {MaxSegmentLength:#,0} samples per window");
        }

        if (channels is null || channels.Count == 0)
        {
            throw Invalid($"Channels is {(channels is null ? "missing" : "empty")}; expected one summary per channel");
        }

        for (var c = 0; c < channels.Count; c++)
        {
            CheckChannel(channels[c], c);
            if (RepeatedName(channels, c, static ch => ch.Name) is { } first)
            {
                throw Invalid($"Channels[{c}] is named '{channels[c].Name}' as Channels[{first}] is ('{channels[first].Name}', compared ignoring case); expected each channel once");
            }
        }

        if (floors is null)
        {
            throw Invalid($"Floors is missing; expected the calibrated KS and PSI floors, one per channel");
        }

        CheckValues("Floors.KsFloor", floors.KsFloor, channels.Count, min: 0);
        CheckValues("Floors.PsiFloor", floors.PsiFloor, channels.Count, min: 0);
        if (!(floors.Quantile is >= 0 and <= 1))
        {
            throw Invalid($"Floors.Quantile is {floors.Quantile:R}; expected a quantile from 0 to 1");
        }

        if (floors.Windows < 0)
        {
            throw Invalid($"Floors.Windows is {floors.Windows}; expected the number of windows the floors were calibrated on (0 or more)");
        }

        if (segments is null || segments.Count == 0)
        {
            throw Invalid($"Segments is {(segments is null ? "missing" : "empty")}; expected the training windows' sketches (at least one)");
        }

        var sketch = -1;
        for (var s = 0; s < segments.Count; s++)
        {
            var segment = segments[s] ?? throw Invalid($"Segments[{s}] is null; expected a training window's sketch");
            var name = $"Segments[{s}]";
            if (string.IsNullOrEmpty(segment.Group))
            {
                throw Invalid($"{name}.Group is missing; expected the group (subject) the window came from");
            }

            if (segment.Quantiles is null || segment.Quantiles.Length != channels.Count)
            {
                throw Invalid($"{name}.Quantiles has {segment.Quantiles?.Length ?? 0} channels; expected {channels.Count}, one sketch per channel");
            }

            for (var c = 0; c < channels.Count; c++)
            {
                sketch = sketch < 0 ? segment.Quantiles[c]?.Length ?? 0 : sketch;
                if (sketch == 0)
                {
                    throw Invalid($"{name}.Quantiles[{c}] is empty; expected the window's quantile sketch");
                }

                CheckValues($"{name}.Quantiles[{c}]", segment.Quantiles[c], sketch, min: double.NegativeInfinity);
            }

            CheckValues($"{name}.EffectiveSize", segment.EffectiveSize, channels.Count, min: 1);
            if (segment.Gravity is null || segment.Gravity.Length is not (0 or 3))
            {
                throw Invalid($"{name}.Gravity has {segment.Gravity?.Length ?? 0} values; expected 3 (a unit direction) or none");
            }

            CheckValues($"{name}.Gravity", segment.Gravity, segment.Gravity.Length, min: -1, max: 1);
        }
    }

    /// <summary>
    /// The index of an earlier item named as item <paramref name="index"/> (ignoring case, as Har.Inference compares a
    /// model card's channels: windows are fed by name), or null.
    /// </summary>
    internal static int? RepeatedName<T>(IReadOnlyList<T> items, int index, Func<T, string> name)
    {
        for (var i = 0; i < index; i++)
        {
            if (string.Equals(name(items[i]), name(items[index]), StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return null;
    }

    private static void CheckChannel(ChannelReference? channel, int index)
    {
        var name = $"Channels[{index}]";
        if (channel is null || string.IsNullOrWhiteSpace(channel.Name))
        {
            throw Invalid($"{name}{(channel is null ? " is null" : ".Name is blank")}; expected a channel summary with its name (e.g. ax)");
        }

        name = $"{name} ({channel.Name})";
        if (channel.Count < 1)
        {
            throw Invalid($"{name} Count is {channel.Count}; expected the number of training samples summarised (1 or more)");
        }

        if (channel.InnerEdges is null || channel.InnerEdges.Length == 0)
        {
            throw Invalid($"{name} InnerEdges is {(channel.InnerEdges is null ? "missing" : "empty")}; expected the inner edges of at least 2 quantile bins");
        }

        CheckValues($"{name} InnerEdges", channel.InnerEdges, channel.InnerEdges.Length, min: double.NegativeInfinity);
        if (channel.ReferenceCounts is null || channel.ReferenceCounts.Length != channel.InnerEdges.Length + 1)
        {
            throw Invalid($"{name} ReferenceCounts has {channel.ReferenceCounts?.Length ?? 0} bins; expected {channel.InnerEdges.Length + 1}, one more than the {channel.InnerEdges.Length} inner edges");
        }

        long total = 0;
        foreach (var count in channel.ReferenceCounts)
        {
            if (count < 0)
            {
                throw Invalid($"{name} ReferenceCounts holds {count}; expected counts of 0 or more");
            }

            total += count;
        }

        if (total != channel.Count)
        {
            throw Invalid($"{name} ReferenceCounts sum to {total}; expected Count ({channel.Count}), every training sample in one bin");
        }

        if (channel.SortedSample is null || channel.SortedSample.Length == 0)
        {
            throw Invalid($"{name} SortedSample is {(channel.SortedSample is null ? "missing" : "empty")}; expected the training samples' order statistics");
        }

        CheckValues($"{name} SortedSample", channel.SortedSample, channel.SortedSample.Length, min: double.NegativeInfinity, sorted: true);
        if (!(double.IsFinite(channel.Scale) && channel.Scale > 0))
        {
            throw Invalid($"{name} Scale is {channel.Scale:R}; expected a finite scale above 0");
        }
    }

    /// <summary>Checks an array's length and that its values are finite, within bounds and (optionally) in ascending order.</summary>
    private static void CheckValues(string name, double[]? values, int length, double min, double max = double.PositiveInfinity, bool sorted = false)
    {
        if (values is null || values.Length != length)
        {
            throw Invalid($"{name} has {values?.Length ?? 0} values; expected {length}");
        }

        for (var i = 0; i < values.Length; i++)
        {
            var v = values[i];
            if (!double.IsFinite(v) || v < min || v > max)
            {
                var range = (double.IsNegativeInfinity(min), double.IsPositiveInfinity(max)) switch
                {
                    (true, true) => "a finite number",
                    (false, true) => string.Create(CultureInfo.InvariantCulture, $"a finite number of {min:R} or more"),
                    _ => string.Create(CultureInfo.InvariantCulture, $"a number from {min:R} to {max:R}"),
                };
                throw Invalid($"{name}[{i}] is {v:R}; expected {range}");
            }

            if (sorted && i > 0 && v < values[i - 1])
            {
                throw Invalid($"{name}[{i}] is {v:R}, below the {values[i - 1]:R} before it; expected ascending values");
            }
        }
    }

    private static InvalidDataException Invalid(FormattableString message) =>
        new("The reference profile's " + message.ToString(CultureInfo.InvariantCulture) + ".");
}
