using System.Numerics.Tensors;

namespace Har.Inference.Windowing;

/// <summary>
/// Per-channel normalization <c>(x - mean_c) / std_c</c> of interleaved frames, fused with the copy into
/// a destination (the batch tensor). Computed as <c>(x + (-mean_c)) * (1 / std_c)</c> with
/// <see cref="TensorPrimitives.AddMultiply(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>
/// over per-channel constants tiled to a whole number of frames, so the channel pattern never has to
/// be re-aligned inside the SIMD loop.
/// </summary>
internal sealed class WindowNormalizer
{
    private const int TileFrames = 64;
    private readonly float[] _negMean;
    private readonly float[] _invStd;
    private readonly float[] _negMeanTile;
    private readonly float[] _invStdTile;

    public WindowNormalizer(ReadOnlySpan<float> mean, ReadOnlySpan<float> std)
    {
        if (mean.Length != std.Length || mean.Length == 0)
        {
            throw new ArgumentException($"Normalization has {mean.Length} means and {std.Length} standard deviations; expected one of each per channel.", nameof(std));
        }

        Channels = mean.Length;
        _negMean = new float[Channels];
        _invStd = new float[Channels];
        for (var c = 0; c < Channels; c++)
        {
            if (!float.IsFinite(std[c]) || std[c] <= 0 || !float.IsFinite(mean[c]))
            {
                throw new ArgumentException($"Channel {c} has mean {mean[c]} and std {std[c]}; expected a finite mean and a finite std > 0.", nameof(std));
            }

            _negMean[c] = -mean[c];
            _invStd[c] = 1f / std[c];
        }

        _negMeanTile = new float[TileFrames * Channels];
        _invStdTile = new float[TileFrames * Channels];
        for (var i = 0; i < _negMeanTile.Length; i++)
        {
            _negMeanTile[i] = _negMean[i % Channels];
            _invStdTile[i] = _invStd[i % Channels];
        }
    }

    public static WindowNormalizer FromCard(ModelCard card) => new(card.NormalizationMean, card.NormalizationStd);

    public int Channels { get; }

    /// <summary>
    /// Writes <c>(source[i] - mean[i % C]) / std[i % C]</c> into <paramref name="destination"/>.
    /// <paramref name="source"/> starts at a frame boundary and holds whole frames.
    /// </summary>
    public void Normalize(ReadOnlySpan<float> source, Span<float> destination)
    {
        if (source.Length % Channels != 0)
        {
            ThrowNotWholeFrames(source.Length);
        }

        if (destination.Length < source.Length)
        {
            throw new ArgumentException($"Destination holds {destination.Length} values; expected at least {source.Length}.", nameof(destination));
        }

        var tile = _negMeanTile.Length;
        while (source.Length >= tile)
        {
            TensorPrimitives.AddMultiply(source[..tile], _negMeanTile, _invStdTile, destination);
            source = source[tile..];
            destination = destination[tile..];
        }

        if (!source.IsEmpty)
        {
            TensorPrimitives.AddMultiply(source, _negMeanTile.AsSpan(0, source.Length), _invStdTile.AsSpan(0, source.Length), destination);
        }
    }

    /// <summary>The scalar reference: one value at a time, same formula.</summary>
    public void NormalizeScalar(ReadOnlySpan<float> source, Span<float> destination)
    {
        if (source.Length % Channels != 0)
        {
            ThrowNotWholeFrames(source.Length);
        }

        for (var i = 0; i < source.Length; i++)
        {
            var c = i % Channels;
            destination[i] = (source[i] + _negMean[c]) * _invStd[c];
        }
    }

    private void ThrowNotWholeFrames(int length) =>
        throw new ArgumentException($"Input holds {length} values, which is not a whole number of {Channels}-channel frames; expected a multiple of {Channels}.");
}
