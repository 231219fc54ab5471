using FsCheck;
using FsCheck.Fluent;

namespace Har.Inference.Tests.Windowing;

/// <summary>
/// Windows of a model that also reads frames before each window (<see cref="ModelCard.ContextFrames"/>): each is the
/// context and then the labelled window, cut at the same frames as without context, a stream's first frame standing in
/// for the frames before the stream began (as training pads).
/// </summary>
public sealed class StreamWindowerContextTests
{
    /// <summary>The reference: frame <paramref name="f"/> of the stream, the first frame for f &lt; 0.</summary>
    private static ReadOnlySpan<float> Frame(float[] data, int f, int c) => data.AsSpan(Math.Max(0, f) * c, c);

    [Fact]
    public void Append_AnyChunking_WindowIsContextThenLabelledSpan_FirstFrameRepeatedBeforeTheStream()
    {
        var gen =
            from l in Gen.Choose(1, 30)
            from p in Gen.Choose(1, 40)
            from s in Gen.Choose(1, 40)
            from n in Gen.Choose(0, 300)
            from cuts in Gen.ListOf(Gen.Choose(0, 300))
            select (l, p, s, n, cuts);
        Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (l, p, s, n, cuts) = t;
            const int c = 2;
            var data = new float[n * c];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = i + 1;
            }

            var windower = new StreamWindower(p + l, s, c, contextFrames: p);
            var boundaries = cuts.Where(x => x < n).Distinct().Order().Append(n).ToArray();
            var count = 0;
            var position = 0;
            foreach (var end in boundaries)
            {
                var windows = windower.Append("s", data.AsSpan(position * c, (end - position) * c));
                for (var w = 0; w < windows.Count; w++)
                {
                    var start = windows.GetStartFrame(w);
                    if (start != (long)count * s || windows[w].Length != (p + l) * c)
                    {
                        return false;
                    }

                    for (var f = 0; f < p + l; f++)
                    {
                        if (!windows[w].Slice(f * c, c).SequenceEqual(Frame(data, (int)start - p + f, c)))
                        {
                            return false;
                        }
                    }

                    count++;
                }

                position = end;
            }

            // The labelled windows are those of a model without context: ⌊(n − L)/S⌋ + 1.
            var expected = n < l ? 0 : ((n - l) / s) + 1;
            return count == expected && windower.WindowCount(n) == expected;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void HeldAndUndoneAppends_AnyChunking_SameWindowsAsPaddedSlices()
    {
        // Each chunk is appended by id, or held (its windows read through the hold), or held and undone and then
        // appended again: the windows handed out are always the padded reference's, each once.
        var gen =
            from l in Gen.Choose(1, 12)
            from p in Gen.Choose(1, 15)
            from s in Gen.Choose(1, 12)
            from n in Gen.Choose(0, 120)
            from cuts in Gen.ListOf(Gen.Choose(0, 120))
            from modes in Gen.ListOf(Gen.Choose(0, 2))
            select (l, p, s, n, cuts, modes);
        Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (l, p, s, n, cuts, modes) = t;
            var data = new float[n];
            for (var i = 0; i < n; i++)
            {
                data[i] = i + 1;
            }

            using var windower = new StreamWindower(p + l, s, 1, contextFrames: p);
            var boundaries = cuts.Where(x => x < n).Distinct().Order().Append(n).ToArray();
            var modeList = modes.ToArray();
            var count = 0;
            var position = 0;
            bool Check(StreamWindows windows)
            {
                for (var w = 0; w < windows.Count; w++, count++)
                {
                    var start = windows.GetStartFrame(w);
                    if (start != (long)count * s)
                    {
                        return false;
                    }

                    for (var f = 0; f < p + l; f++)
                    {
                        if (windows[w][f] != data[Math.Max(0, (int)start - p + f)])
                        {
                            return false;
                        }
                    }
                }

                return true;
            }

            for (var b = 0; b < boundaries.Length; b++)
            {
                var chunk = data.AsMemory(position, boundaries[b] - position);
                var mode = modeList.Length == 0 ? 0 : modeList[b % modeList.Length];
                if (mode == 2 && windower.TryAppendAndHold("s", chunk, out var undone))
                {
                    undone.Undo();
                }

                bool ok;
                if (mode == 0)
                {
                    ok = Check(windower.Append("s", chunk.Span));
                }
                else
                {
                    if (!windower.TryAppendAndHold("s", chunk, out var hold))
                    {
                        return false;
                    }

                    ok = Check(hold.Windows);
                    hold.Dispose();
                }

                if (!ok)
                {
                    return false;
                }

                position = boundaries[b];
            }

            return count == (n < l ? 0 : ((n - l) / s) + 1);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Append_WindowsCompleteAtTheSameFramesAsWithoutContext()
    {
        using var plain = new StreamWindower(4, 2, 1);
        using var context = new StreamWindower(7, 2, 1, contextFrames: 3);
        for (var f = 1; f <= 12; f++)
        {
            var a = plain.Append("d", [f]);
            var b = context.Append("d", [f]);
            Assert.Equal(a.Count, b.Count);
            for (var w = 0; w < a.Count; w++)
            {
                Assert.Equal(a.GetStartFrame(w), b.GetStartFrame(w));
                Assert.Equal(a[w].ToArray(), b[w][3..].ToArray()); // the labelled span is the plain window
            }
        }
    }

    [Fact]
    public void Append_FirstWindow_RepeatsTheFirstFrameForTheContext()
    {
        using var windower = new StreamWindower(6, 2, 2, contextFrames: 3);
        var windows = windower.Append("d", [1, 10, 2, 20, 3, 30]);
        Assert.Equal(1, windows.Count);
        Assert.Equal(0, windows.GetStartFrame(0));
        Assert.Equal([1f, 10, 1, 10, 1, 10, 1, 10, 2, 20, 3, 30], windows[0].ToArray());

        var next = windower.Append("d", [4, 40, 5, 50]);
        Assert.Equal(1, next.Count);
        Assert.Equal(2, next.GetStartFrame(0));
        Assert.Equal([1f, 10, 1, 10, 2, 20, 3, 30, 4, 40, 5, 50], next[0].ToArray());
    }

    [Fact]
    public void Append_EmptyFirstAppend_PadsWithTheFirstFrameThatArrives()
    {
        using var windower = new StreamWindower(3, 1, 1, contextFrames: 2);
        Assert.Equal(0, windower.Append("d", []).Count);
        var windows = windower.Append("d", [7]);
        Assert.Equal(1, windows.Count);
        Assert.Equal([7f, 7, 7], windows[0].ToArray());
    }

    [Fact]
    public void UndoneFirstAppend_LeavesNoStream_AndTheRetryPadsOnce()
    {
        using var windower = new StreamWindower(5, 1, 1, contextFrames: 2);
        Assert.True(windower.TryAppendAndHold("d", new float[] { 9, 8, 7 }, out var hold));
        Assert.Equal(1, hold.Windows.Count);
        hold.Undo();
        Assert.Equal(0, windower.StreamCount);

        var windows = windower.Append("d", [9, 8, 7]);
        Assert.Equal(1, windows.Count);
        Assert.Equal([9f, 9, 9, 8, 7], windows[0].ToArray());
    }

    [Fact]
    public void NonFiniteFirstFrame_WithThrow_NamesTheCallersFrame()
    {
        using var windower = new StreamWindower(4, 2, 2, contextFrames: 2);
        var ex = Assert.Throws<ArgumentException>(() => windower.Append("d", [1, float.NaN, 2, 3]));
        Assert.Contains("frame 0 channel 1", ex.Message, StringComparison.Ordinal);

        // Nothing was appended: the next append starts the stream, padded with its own first frame.
        var windows = windower.Append("d", [5, 6, 7, 8]);
        Assert.Equal(1, windows.Count);
        Assert.Equal([5f, 6, 5, 6, 5, 6, 7, 8], windows[0].ToArray());
    }

    [Fact]
    public void NonFiniteLaterFrame_WithThrow_NamesTheCallersFrameNotCountingTheContextCopies()
    {
        using var windower = new StreamWindower(4, 2, 1, contextFrames: 2);
        windower.Append("d", [1, 2, 3]);
        var ex = Assert.Throws<ArgumentException>(() => windower.Append("d", [4, float.PositiveInfinity]));
        Assert.Contains("frame 4 channel 0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NonFiniteFirstFrame_WithDropWindow_DropsEveryWindowWhoseInputHoldsItOrItsCopies()
    {
        using var windower = new StreamWindower(4, 1, 1, new StreamWindowerOptions { InvalidSamples = InvalidSampleHandling.DropWindow }, contextFrames: 2);
        var windows = windower.Append("d", [float.NaN, 1, 2, 3, 4, 5]);

        // Inputs are frames [k − 2, k + 2): they hold frame 0 (or its copies) for k ≤ 2; k = 3, 4 are clean.
        Assert.Equal(2, windows.Count);
        Assert.Equal(3, windows.GetStartFrame(0));
        Assert.Equal([1f, 2, 3, 4], windows[0].ToArray());
        Assert.Equal(3, windower.DroppedWindows);
    }

    [Theory]
    [InlineData(40)] // first append: windows in the context copies' buffer and in the chunk itself (zero copy)
    [InlineData(7)]
    [InlineData(1)]
    public void HeldAppends_AnyChunking_WindowsAreTheContextThenTheLabelledSpan(int firstChunk)
    {
        const int L = 4, P = 3, S = 2;
        var data = new float[60];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = i + 1;
        }

        using var windower = new StreamWindower(P + L, S, 1, contextFrames: P);
        var count = 0;
        var position = 0;
        foreach (var n in new[] { firstChunk, 9, 1, 11 })
        {
            var chunk = data.AsMemory(position, Math.Min(n, data.Length - position));
            Assert.True(windower.TryAppendAndHold("d", chunk, out var hold));
            var windows = hold.Windows;
            for (var w = 0; w < windows.Count; w++)
            {
                var start = windows.GetStartFrame(w);
                Assert.Equal(count * (long)S, start);
                var expected = Enumerable.Range((int)start - P, P + L).Select(f => data[Math.Max(0, f)]).ToArray();
                Assert.Equal(expected, windows[w].ToArray());
                count++;
            }

            hold.Dispose();
            position += chunk.Length;
        }

        Assert.Equal(((position - L) / S) + 1, count);
    }

    [Fact]
    public void FromCard_UsesTheCardsInputFramesAndContext()
    {
        var metadata = Cards.ModelCardTests.ValidMetadata();
        metadata[ModelCardKeys.ContextFrames] = "50";
        var card = ModelCard.FromMetadata(metadata);
        using var windower = new StreamWindower(card);
        Assert.Equal(card.InputFrames, windower.WindowLength);
        Assert.Equal(50, windower.ContextFrames);
    }
}
