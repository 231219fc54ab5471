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
        return From(card, card.ContextFrames);
    }

    /// <summary>Reads the geometry from a model card, with <paramref name="contextFrames"/> frames before each window (at least the card's).</summary>
    internal static WindowGeometry From(ModelCard card, int contextFrames)
    {
        ArgumentNullException.ThrowIfNull(card);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextFrames, card.ContextFrames);
        return new(card.WindowLength, contextFrames, card.Stride, card.SampleRateHz, card.Channels);
    }

    /// <summary>Whether a version with <paramref name="card"/> can run on these windows: the same window, stride, rate and channels, and no more context than they hold.</summary>
    internal bool CanServe(ModelCard card)
    {
        ArgumentNullException.ThrowIfNull(card);
        return card.ContextFrames <= ContextFrames && CutsLike(card);
    }

    /// <summary>What a rollout's operator can do when <see cref="CanServe"/> is false only because the card reads more context than these windows hold.</summary>
    internal string ContextHint(ModelCard card) =>
        card.ContextFrames > ContextFrames && CutsLike(card)
            ? string.Create(CultureInfo.InvariantCulture, $" It reads {card.ContextFrames} frames before each window; the pipeline keeps {ContextFrames}: open it with ServingOptions.ContextFrames = {card.ContextFrames} to serve it beside versions that read less.")
            : string.Empty;

    /// <summary>
    /// Each of the windows of <paramref name="values"/> values in <paramref name="windows"/>, cut to its last
    /// <paramref name="size"/> values (what a version that reads less context than the pipeline keeps reads), copied one
    /// after the other.
    /// </summary>
    internal static float[] LastOfEach(ReadOnlySpan<float> windows, int values, int size)
    {
        var n = windows.Length / values;
        var result = new float[n * size];
        for (var w = 0; w < n; w++)
        {
            windows.Slice((w * values) + values - size, size).CopyTo(result.AsSpan(w * size, size));
        }

        return result;
    }

    /// <summary>Whether <paramref name="card"/> labels the same windows: length, stride, sample rate and channel order.</summary>
    private bool CutsLike(ModelCard card) =>
        WindowLength == card.WindowLength && Stride == card.Stride && SampleRateHz.Equals(card.SampleRateHz) && Channels.SequenceEqual(card.Channels, StringComparer.Ordinal);

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"windows of {WindowLength} frames{(ContextFrames == 0 ? string.Empty : $" after {ContextFrames} frames of context")}, stride {Stride}, {SampleRateHz:0.##} Hz, channels {string.Join(' ', Channels)}");
}
