using FsCheck;
using FsCheck.Fluent;
using Har.Inference.Windowing;

namespace Har.Inference.Tests.Windowing;

public sealed class WindowNormalizerTests
{
    private static readonly float[] Mean = [0.8f, 0.05f, -0.1f, 0f, 0.01f, -0.02f];
    private static readonly float[] Std = [0.4f, 0.3f, 0.35f, 0.5f, 0.45f, 0.3f];

    [Fact]
    public void Normalize_EveryLength0To256AndUnalignedOffsets_EqualsScalarReference()
    {
        var normalizer = new WindowNormalizer(Mean, Std);
        var rng = new Random(3);
        var source = new float[256 * 6 + 16];
        for (var i = 0; i < source.Length; i++)
        {
            source[i] = (float)(rng.NextDouble() * 20 - 10);
        }

        for (var frames = 0; frames <= 256; frames++)
        {
            for (var offset = 0; offset < 4; offset++)
            {
                var src = source.AsSpan(offset, frames * 6);
                var fast = new float[frames * 6 + 5];
                var reference = new float[frames * 6];
                var unchecked_ = new float[frames * 6 + 5];
                Assert.True(normalizer.Normalize(src, fast.AsSpan(offset % 3)));
                normalizer.NormalizeUnchecked(src, unchecked_.AsSpan(offset % 3));
                normalizer.NormalizeScalar(src, reference);
                Assert.True(fast.AsSpan(offset % 3, frames * 6).SequenceEqual(reference), $"frames {frames}, offset {offset}");
                Assert.True(unchecked_.AsSpan(offset % 3, frames * 6).SequenceEqual(reference), $"unchecked: frames {frames}, offset {offset}");
            }
        }
    }

    [Fact]
    public void NormalizeScalar_MatchesTheTrainingFormula()
    {
        // (x - mean) / std in float32, as numpy computes it; the reciprocal form may differ by at most 1 ulp.
        var normalizer = new WindowNormalizer(Mean, Std);
        var x = Fixture.Frames(500);
        var y = new float[x.Length];
        normalizer.NormalizeScalar(x, y);
        for (var i = 0; i < x.Length; i++)
        {
            var expected = (x[i] - Mean[i % 6]) / Std[i % 6];
            var ulp = MathF.BitIncrement(Math.Abs(expected)) - Math.Abs(expected);
            Assert.True(Math.Abs(y[i] - expected) <= 2 * ulp, $"{i}: {y[i]} vs {expected}");
        }
    }

    [Fact]
    public void Normalize_RoundTripsThroughTheInverse()
    {
        Prop.ForAll(Gen.Choose(0, 300).ToArbitrary(), frames =>
        {
            var normalizer = new WindowNormalizer(Mean, Std);
            var x = Fixture.Frames(frames, seed: frames);
            var y = new float[x.Length];
            normalizer.Normalize(x, y);
            for (var i = 0; i < x.Length; i++)
            {
                var back = (y[i] * Std[i % 6]) + Mean[i % 6];
                if (Math.Abs(back - x[i]) > 1e-5f * Math.Max(1, Math.Abs(x[i])))
                {
                    return false;
                }
            }

            return true;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Normalize_ReportsNonFiniteAtAnyPosition()
    {
        var normalizer = new WindowNormalizer(Mean, Std);
        for (var frames = 1; frames <= 40; frames++)
        {
            var x = Fixture.Frames(frames);
            var y = new float[x.Length];
            Assert.True(normalizer.Normalize(x, y));
            for (var i = 0; i < x.Length; i++)
            {
                var saved = x[i];
                x[i] = i % 2 == 0 ? float.NaN : float.NegativeInfinity;
                Assert.False(normalizer.Normalize(x, y), $"frames {frames}, index {i}");
                x[i] = saved;
            }
        }
    }

    [Fact]
    public void Normalize_EveryDestinationAlignment_EqualsScalarReferenceAndFindsNonFinite()
    {
        // A pinned destination, so each of the 16 float offsets is a different position within a 64-byte line.
        var normalizer = new WindowNormalizer(Mean, Std);
        var destination = GC.AllocateArray<float>((201 * 6) + 16, pinned: true);
        foreach (var frames in Enumerable.Range(0, 65).Append(200).Append(201))
        {
            var x = Fixture.Frames(frames, seed: frames);
            var reference = new float[x.Length];
            normalizer.NormalizeScalar(x, reference);
            for (var offset = 0; offset < 16; offset++)
            {
                var into = destination.AsSpan(offset, x.Length);
                Assert.True(normalizer.Normalize(x, into));
                Assert.True(into.SequenceEqual(reference), $"frames {frames}, destination offset {offset}");
                into.Clear();
                normalizer.NormalizeUnchecked(x, into);
                Assert.True(into.SequenceEqual(reference), $"unchecked: frames {frames}, destination offset {offset}");
                if (frames is 20 or 201)
                {
                    for (var i = 0; i < x.Length; i++)
                    {
                        var saved = x[i];
                        x[i] = float.PositiveInfinity;
                        Assert.False(normalizer.Normalize(x, into), $"frames {frames}, destination offset {offset}, index {i}");
                        x[i] = saved;
                    }
                }
            }
        }
    }

    [Fact]
    public void Normalize_PartialFrame_Throws()
    {
        var normalizer = new WindowNormalizer(Mean, Std);
        var ex = Assert.Throws<ArgumentException>(() => normalizer.Normalize(new float[13], new float[13]));
        Assert.Contains("not a whole number of 6-channel frames", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_ZeroStd_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => new WindowNormalizer([0f, 0f], [1f, 0f]));
        Assert.Contains("finite std > 0", ex.Message, StringComparison.Ordinal);
    }
}
