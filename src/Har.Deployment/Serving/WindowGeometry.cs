using System.Globalization;
using Har.Inference;

namespace Har.Deployment;

/// <summary>How a model cuts a stream into windows: what the <see cref="ServingPipeline"/> must agree on with every version it serves.</summary>
public sealed class WindowGeometry
{
    private WindowGeometry(int windowLength, int contextFrames, int stride, double sampleRateHz, IReadOnlyList<string> channels)
    {
        WindowLength = windowLength;
        ContextFrames = contextFrames;
        Stride = stride;
        SampleRateHz = sampleRateHz;
        Channels = channels;
    }

    /// <summary>Gets the number of frames per window: the span each prediction labels.</summary>
    public int WindowLength { get; }

    /// <summary>Gets the number of frames before each window that the models also read (<see cref="ModelCard.ContextFrames"/>); each input window holds them first.</summary>
    public int ContextFrames { get; }

    /// <summary>Gets the number of frames between the starts of consecutive windows.</summary>
    public int Stride { get; }

    /// <summary>Gets the number of frames per second.</summary>
    public double SampleRateHz { get; }

    /// <summary>Gets the channel names in frame order (e.g. <c>ax ay az gx gy gz</c>).</summary>
    public IReadOnlyList<string> Channels { get; }

    /// <summary>Gets the number of values per input window: (<see cref="ContextFrames"/> + <see cref="WindowLength"/>) × channels.</summary>
    public int WindowValues => (ContextFrames + WindowLength) * Channels.Count;

    /// <summary>Reads the geometry from a model card.</summary>
    /// <param name="card">The card.</param>
    /// <returns>The geometry.</returns>
    internal static WindowGeometry From(ModelCard card)
    {
        ArgumentNullException.ThrowIfNull(card);
        return new(card.WindowLength, card.ContextFrames, card.Stride, card.SampleRateHz, card.Channels);
    }

    /// <summary>Whether <paramref name="other"/> cuts and orders frames exactly like this geometry.</summary>
    /// <param name="other">The other geometry.</param>
    /// <returns><see langword="true"/> when a window of one is a window of the other.</returns>
    internal bool IsCompatibleWith(WindowGeometry other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return WindowLength == other.WindowLength && ContextFrames == other.ContextFrames && Stride == other.Stride && SampleRateHz.Equals(other.SampleRateHz) && Channels.SequenceEqual(other.Channels, StringComparer.Ordinal);
    }

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"windows of {WindowLength} frames{(ContextFrames == 0 ? string.Empty : $" after {ContextFrames} frames of context")}, stride {Stride}, {SampleRateHz:0.##} Hz, channels {string.Join(' ', Channels)}");
}
