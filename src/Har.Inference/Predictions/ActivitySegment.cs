namespace Har.Inference;

/// <summary>A stretch of a stream during which one activity was recognised (made by <see cref="ActivitySmoother"/>).</summary>
public readonly struct ActivitySegment
{
    internal ActivitySegment(int classIndex, string label, long startFrame, long endFrame, TimeSpan start, TimeSpan end, float meanConfidence, int windows)
    {
        ClassIndex = classIndex;
        Label = label;
        StartFrame = startFrame;
        EndFrame = endFrame;
        Start = start;
        End = end;
        MeanConfidence = meanConfidence;
        Windows = windows;
    }

    /// <summary>Gets the index of the activity in <see cref="ModelCard.Labels"/>.</summary>
    public int ClassIndex { get; }

    /// <summary>Gets the activity's name.</summary>
    public string Label { get; }

    /// <summary>Gets the first frame of the segment (stream-relative).</summary>
    public long StartFrame { get; }

    /// <summary>Gets the frame just past the segment's end (exclusive).</summary>
    public long EndFrame { get; }

    /// <summary>Gets the start time from the stream's first frame, at the card's sample rate.</summary>
    public TimeSpan Start { get; }

    /// <summary>Gets the end time (exclusive), at the card's sample rate.</summary>
    public TimeSpan End { get; }

    /// <summary>Gets the mean confidence of the windows in the segment (for their own labels).</summary>
    public float MeanConfidence { get; }

    /// <summary>Gets the number of windows in the segment.</summary>
    public int Windows { get; }

    /// <summary>Returns the time span, label and evidence, e.g. <c>00:04.0–00:22.0 WALKING (9 windows, mean confidence 95%)</c>.</summary>
    /// <returns>A one-line summary.</returns>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $@"{Start:mm\:ss\.f}–{End:mm\:ss\.f} {Label} ({Windows} windows, mean confidence {MeanConfidence:P0})");
}
