using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
    /// <paramref name="source"/> starts at a frame boundary and holds whole frames. Returns whether every
    /// output is finite (false for NaN or infinite inputs, or inputs too large to normalize).
    /// <paramref name="source"/> and <paramref name="destination"/> must not overlap.
    /// </summary>
    public bool Normalize(ReadOnlySpan<float> source, Span<float> destination) => NormalizeCore<CheckFinite>(source, destination);

    /// <summary>
    /// As <see cref="Normalize"/> without the finiteness check, for input already known to be finite
    /// (windows of a <see cref="StreamWindower"/>, which checks every frame as it is appended).
    /// </summary>
    public void NormalizeUnchecked(ReadOnlySpan<float> source, Span<float> destination) => NormalizeCore<NoCheck>(source, destination);

    private bool NormalizeCore<TCheck>(ReadOnlySpan<float> source, Span<float> destination)
        where TCheck : struct
    {
        if (source.Length % Channels != 0)
        {
            ThrowNotWholeFrames(source.Length);
        }

        if (destination.Length < source.Length)
        {
            throw new ArgumentException($"Destination holds {destination.Length} values; expected at least {source.Length}.", nameof(destination));
        }

        var finite = true;
        if (Channels == 6 && Vector256.IsHardwareAccelerated)
        {
            var done = NormalizeSixChannels<TCheck>(source, destination, out finite);
            source = source[done..];
            destination = destination[done..];
        }

        if (source.IsEmpty)
        {
            return finite;
        }

        if (source.Length < _negMeanTile.Length)
        {
            // A short remainder (under 64 frames): a scalar loop beats the setup of a vectorized call.
            for (var i = 0; i < source.Length; i++)
            {
                var y = (source[i] + _negMeanTile[i]) * _invStdTile[i];
                destination[i] = y;
                if (typeof(TCheck) == typeof(CheckFinite))
                {
                    finite &= float.IsFinite(y);
                }
            }

            return finite;
        }

        NormalizeTensorPrimitives(source, destination);
        return typeof(TCheck) != typeof(CheckFinite) || (finite && TensorPrimitives.IsFiniteAll(destination[..source.Length]));
    }

    /// <summary>
    /// Six interleaved channels repeat every 24 floats = three <see cref="Vector256{T}"/> (48 floats =
    /// three <see cref="Vector512{T}"/>): the per-lane means and scales stay in registers and each vector
    /// costs one load, an add, a multiply and one store, close to a copy. After one unaligned block the
    /// stores start at the destination's next 64-byte boundary (a store that straddles two cache lines
    /// costs two), with the constant vectors at that channel phase. Same formula and rounding as the scalar reference
    /// (no fused multiply-add in the result). Does the whole span; returns its length.
    /// </summary>
    private unsafe int NormalizeSixChannels<TCheck>(ReadOnlySpan<float> source, Span<float> destination, out bool finite)
        where TCheck : struct
    {
        ref var src = ref MemoryMarshal.GetReference(source);
        ref var dst = ref MemoryMarshal.GetReference(destination);
        ref var m = ref MemoryMarshal.GetArrayDataReference(_negMeanTile);
        ref var s = ref MemoryMarshal.GetArrayDataReference(_invStdTile);
        nuint i = 0;
        var length = (nuint)source.Length;
        var allFinite = true;
        if (Vector512.IsHardwareAccelerated && length >= 64)
        {
            // One unaligned block of 48 first, then aligned stores from the destination's next 64-byte
            // boundary, with the constant vectors starting at that channel phase (the overlap is written
            // twice, identically).
            var m0 = Vector512.LoadUnsafe(ref m, 0);
            var m1 = Vector512.LoadUnsafe(ref m, 16);
            var m2 = Vector512.LoadUnsafe(ref m, 32);
            var s0 = Vector512.LoadUnsafe(ref s, 0);
            var s1 = Vector512.LoadUnsafe(ref s, 16);
            var s2 = Vector512.LoadUnsafe(ref s, 32);
            var h0 = (Vector512.LoadUnsafe(ref src, 0) + m0) * s0;
            var h1 = (Vector512.LoadUnsafe(ref src, 16) + m1) * s1;
            var h2 = (Vector512.LoadUnsafe(ref src, 32) + m2) * s2;
            h0.StoreUnsafe(ref dst, 0);
            h1.StoreUnsafe(ref dst, 16);
            h2.StoreUnsafe(ref dst, 32);
            i = ((64 - ((nuint)Unsafe.AsPointer(ref dst) & 63)) & 63) / sizeof(float);
            var phase = i % 6;
            m0 = Vector512.LoadUnsafe(ref m, phase);
            m1 = Vector512.LoadUnsafe(ref m, phase + 16);
            m2 = Vector512.LoadUnsafe(ref m, phase + 32);
            s0 = Vector512.LoadUnsafe(ref s, phase);
            s1 = Vector512.LoadUnsafe(ref s, phase + 16);
            s2 = Vector512.LoadUnsafe(ref s, phase + 32);

            // y · 0 + acc stays 0 while every y is finite and turns NaN for good otherwise.
            Vector512<float> a0 = default, a1 = default, a2 = default;
            if (typeof(TCheck) == typeof(CheckFinite))
            {
                a0 = h0 * Vector512<float>.Zero;
                a1 = h1 * Vector512<float>.Zero;
                a2 = h2 * Vector512<float>.Zero;
            }

            for (; i + 48 <= length; i += 48)
            {
                var y0 = (Vector512.LoadUnsafe(ref src, i) + m0) * s0;
                var y1 = (Vector512.LoadUnsafe(ref src, i + 16) + m1) * s1;
                var y2 = (Vector512.LoadUnsafe(ref src, i + 32) + m2) * s2;
                y0.StoreUnsafe(ref dst, i);
                y1.StoreUnsafe(ref dst, i + 16);
                y2.StoreUnsafe(ref dst, i + 32);
                if (typeof(TCheck) == typeof(CheckFinite))
                {
                    a0 = Vector512.FusedMultiplyAdd(y0, Vector512<float>.Zero, a0);
                    a1 = Vector512.FusedMultiplyAdd(y1, Vector512<float>.Zero, a1);
                    a2 = Vector512.FusedMultiplyAdd(y2, Vector512<float>.Zero, a2);
                }
            }

            allFinite &= typeof(TCheck) != typeof(CheckFinite) || Vector512.EqualsAll(a0 + a1 + a2, Vector512<float>.Zero);
        }

        if (length - i >= 24)
        {
            var phase = i % 6;
            var m0 = Vector256.LoadUnsafe(ref m, phase);
            var m1 = Vector256.LoadUnsafe(ref m, phase + 8);
            var m2 = Vector256.LoadUnsafe(ref m, phase + 16);
            var s0 = Vector256.LoadUnsafe(ref s, phase);
            var s1 = Vector256.LoadUnsafe(ref s, phase + 8);
            var s2 = Vector256.LoadUnsafe(ref s, phase + 16);
            Vector256<float> a0 = default, a1 = default, a2 = default;
            for (; i + 24 <= length; i += 24)
            {
                var y0 = (Vector256.LoadUnsafe(ref src, i) + m0) * s0;
                var y1 = (Vector256.LoadUnsafe(ref src, i + 8) + m1) * s1;
                var y2 = (Vector256.LoadUnsafe(ref src, i + 16) + m2) * s2;
                y0.StoreUnsafe(ref dst, i);
                y1.StoreUnsafe(ref dst, i + 8);
                y2.StoreUnsafe(ref dst, i + 16);
                if (typeof(TCheck) == typeof(CheckFinite))
                {
                    a0 = Vector256.FusedMultiplyAdd(y0, Vector256<float>.Zero, a0);
                    a1 = Vector256.FusedMultiplyAdd(y1, Vector256<float>.Zero, a1);
                    a2 = Vector256.FusedMultiplyAdd(y2, Vector256<float>.Zero, a2);
                }
            }

            allFinite &= typeof(TCheck) != typeof(CheckFinite) || Vector256.EqualsAll(a0 + a1 + a2, Vector256<float>.Zero);
        }

        // The last values (fewer than 24), scalar; the tile's first six entries are the six channels.
        for (; i < length; i++)
        {
            var c = i % 6;
            var y = (Unsafe.Add(ref src, i) + Unsafe.Add(ref m, c)) * Unsafe.Add(ref s, c);
            Unsafe.Add(ref dst, i) = y;
            if (typeof(TCheck) == typeof(CheckFinite))
            {
                allFinite &= float.IsFinite(y);
            }
        }

        finite = allFinite;
        return (int)i;
    }

    /// <summary>The TensorPrimitives path alone (tiled constants), kept for the benchmark comparison.</summary>
    internal void NormalizeTensorPrimitives(ReadOnlySpan<float> source, Span<float> destination)
    {
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

    private readonly struct CheckFinite;

    private readonly struct NoCheck;
}
