namespace Har.Inference;

/// <summary>A stretch of a stream during which one activity was recognised.</summary>
/// <param name="ClassIndex">Index of the activity in <see cref="ModelCard.Labels"/>.</param>
/// <param name="Label">The activity's name.</param>
/// <param name="StartFrame">First frame of the segment (stream-relative).</param>
/// <param name="EndFrame">Frame just past the segment's end (exclusive).</param>
/// <param name="Start">Start time from the stream's first frame, at the card's sample rate.</param>
/// <param name="End">End time (exclusive), at the card's sample rate.</param>
/// <param name="MeanConfidence">Mean confidence of the windows in the segment (for their own labels).</param>
/// <param name="Windows">Number of windows in the segment.</param>
public readonly record struct ActivitySegment(int ClassIndex, string Label, long StartFrame, long EndFrame, TimeSpan Start, TimeSpan End, float MeanConfidence, int Windows)
{
    /// <summary>Returns the time span, label and evidence, e.g. <c>00:04.0–00:22.0 WALKING (9 windows, mean confidence 95%)</c>.</summary>
    /// <returns>A one-line summary.</returns>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $@"{Start:mm\:ss\.f}–{End:mm\:ss\.f} {Label} ({Windows} windows, mean confidence {MeanConfidence:P0})");
}
