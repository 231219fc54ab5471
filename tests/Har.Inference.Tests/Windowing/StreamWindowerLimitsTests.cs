using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Time.Testing;

namespace Har.Inference.Tests.Windowing;

/// <summary>Issue 17 points 5 and 6 on the windower: stream cap, timer sweep, idle memory, all-or-nothing appends, window limit.</summary>
public sealed class StreamWindowerLimitsTests
{
    [Theory]
    [InlineData(nameof(StreamWindowerOptions.MaxStreams), 0)]
    [InlineData(nameof(StreamWindowerOptions.MaxWindowsPerAppend), -1)]
    public void InvalidOptions_NameTheOptionAndItsRange(string property, int value)
    {
        // Found by a new user: the message was "options ('0') must be greater than or equal to '1'", naming no option.
        var options = new StreamWindowerOptions();
        typeof(StreamWindowerOptions).GetProperty(property)!.SetValue(options, value);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new StreamWindower(200, 100, 6, options));
        Assert.Equal("options", ex.ParamName);
        Assert.Contains($"{property}:", ex.Message, StringComparison.Ordinal);
        Assert.Contains("between 1 and", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUndefinedInvalidSamplesValue_IsRefused_NamingTheOptionAndItsValues()
    {
        // Found from a packed package: (InvalidSampleHandling)42 was taken and behaved as DropWindow.
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new StreamWindower(200, 100, 6, new StreamWindowerOptions { InvalidSamples = (InvalidSampleHandling)42 }));
        Assert.Contains("StreamWindowerOptions.InvalidSamples must be Throw or DropWindow", ex.Message, StringComparison.Ordinal);
        using var defined = new StreamWindower(200, 100, 6, new StreamWindowerOptions { InvalidSamples = InvalidSampleHandling.DropWindow });
    }

    [Fact]
    public void AnIdleTimeoutOfZero_IsRefused_NamingTheOption()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new StreamWindower(200, 100, 6, new StreamWindowerOptions { IdleTimeout = TimeSpan.Zero }));
        Assert.Contains("IdleTimeout:", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Append_AtTheStreamLimit_EvictsTheLeastRecentlyUsedIdleStreamOrThrowsTyped()
    {
        var time = new FakeTimeProvider();
        using var windower = new StreamWindower(4, 2, 1, new StreamWindowerOptions { MaxStreams = 2, IdleTimeout = TimeSpan.FromMinutes(5), MinimumIdleForEviction = TimeSpan.FromSeconds(10) }, time);
        windower.Append("a", [1, 2]);
        time.Advance(TimeSpan.FromSeconds(1));
        windower.Append("b", [1]);

        // Both were heard from within 10 s: refused, typed, naming the limit; nothing created.
        var refused = Assert.Throws<StreamLimitExceededException>(() => windower.Append("c", [1]));
        Assert.Equal(2, refused.Limit);
        Assert.Contains("limit is 2", refused.Message, StringComparison.Ordinal);
        Assert.Equal(2, windower.StreamCount);

        // 10 s later "a" (least recently used) is idle enough: evicted for "c"; "b" keeps its frames.
        time.Advance(TimeSpan.FromSeconds(9));
        windower.Append("c", [1]);
        Assert.Equal(1, windower.EvictedStreams);
        Assert.Equal(2, windower.StreamCount);
        Assert.Equal([1f, 2, 3, 4], windower.Append("b", [2, 3, 4])[0].ToArray());
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, windower.Append("a", [3, 4]).Count); // "a" comes back as a new stream, evicting the LRU of b and c
        Assert.Equal(2, windower.EvictedStreams);
    }

    [Fact]
    public void Sweep_OnTheTimer_EvictsIdleStreamsWithoutAnyAppend()
    {
        var time = new FakeTimeProvider();
        using var windower = new StreamWindower(4, 2, 1, new StreamWindowerOptions { IdleTimeout = TimeSpan.FromMinutes(1) }, time);
        windower.Append("a", [1, 2, 3]);
        windower.Append("b", [1]);

        time.Advance(TimeSpan.FromSeconds(45));
        Assert.Equal(2, windower.StreamCount);
        windower.Append("b", [2]);

        time.Advance(TimeSpan.FromSeconds(30)); // a: 75 s silent, b: 30 s; the timer sweeps every 15 s
        Assert.Equal(1, windower.StreamCount);
        Assert.Equal(1, windower.EvictedStreams);

        time.Advance(TimeSpan.FromSeconds(45));
        Assert.Equal(0, windower.StreamCount);
    }

    [Fact]
    public void Sweep_IdleStream_IsTrimmedToLessThanOneWindowAndResumesWhereItLeftOff()
    {
        var time = new FakeTimeProvider();
        using var windower = new StreamWindower(200, 100, 6, new StreamWindowerOptions { IdleTimeout = TimeSpan.FromMinutes(5) }, time);
        var reference = new StreamWindower(200, 100, 6);
        var data = Fixture.Frames(1000);
        windower.Append("d", data.AsSpan(0, 350 * 6));
        reference.Append("d", data.AsSpan(0, 350 * 6));
        Assert.True(windower.RetainedBytes >= 4 * 200 * 6 * sizeof(float)); // the active buffer: room for four windows

        time.Advance(TimeSpan.FromSeconds(30)); // two sweeps: silent for one period, so trimmed
        Assert.Equal(1, windower.StreamCount);
        Assert.True(windower.RetainedBytes < 200 * 6 * sizeof(float), $"an idle stream retains {windower.RetainedBytes} bytes; expected less than one window (4800)");

        // Nothing lost: the next windows are the same as a stream that was never trimmed.
        var resumed = windower.Append("d", data.AsSpan(350 * 6, 300 * 6));
        var expected = reference.Append("d", data.AsSpan(350 * 6, 300 * 6));
        Assert.Equal(expected.Count, resumed.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected.GetStartFrame(i), resumed.GetStartFrame(i));
            Assert.Equal(expected[i].ToArray(), resumed[i].ToArray());
        }
    }

    [Fact]
    public void Append_MoreWindowsThanTheLimit_ThrowsTypedAndAppendsNothing()
    {
        using var windower = new StreamWindower(4, 2, 1, new StreamWindowerOptions { MaxWindowsPerAppend = 3 });
        windower.Append("s", [0, 1]);

        // 2 + 8 frames would complete windows starting at 0, 2, 4, 6: four, one over the limit.
        var refused = Assert.Throws<WindowLimitExceededException>(() => windower.Append("s", [2, 3, 4, 5, 6, 7, 8, 9]));
        Assert.Equal(3, refused.Limit);
        Assert.Equal(4, refused.Windows);
        Assert.Contains("at most 3 per append", refused.Message, StringComparison.Ordinal);

        // Nothing was appended: the stream continues from frame 2.
        var windows = windower.Append("s", [2, 3, 4, 5, 6, 7]);
        Assert.Equal(3, windows.Count);
        Assert.Equal([0f, 1, 2, 3], windows[0].ToArray());
        Assert.Equal([4f, 5, 6, 7], windows[2].ToArray());
    }

    [Fact]
    public void Append_HandlerThrows_UndoesTheAppendSoARetryAppendsOnce()
    {
        using var windower = new StreamWindower(4, 2, 1);
        windower.Append("s", [0, 1, 2]);
        Assert.Throws<InferenceQueueFullException>(() => windower.Append("s", (float[])[3, 4, 5], 0, static (w, _) => w.Count > 0 ? throw new InferenceQueueFullException("full") : 0));

        // The retry: exactly the windows the first attempt would have produced, once.
        var starts = windower.Append("s", (float[])[3, 4, 5], 0, static (w, _) => Capture(w));
        Assert.Equal([0L, 2], starts.Select(s => s.Item1));
        Assert.Equal([2f, 3, 4, 5], starts[1].Item2);

        // A refused first append of a new stream leaves no empty stream behind.
        Assert.Throws<InvalidOperationException>(() => windower.Append<int, int>("new", (float[])[1], 0, static (_, _) => throw new InvalidOperationException("refused")));
        Assert.Equal(1, windower.StreamCount);
    }

    [Fact]
    public void Append_HandlersFailingAtRandom_GiveExactlyTheWindowsOfTheSuccessfulAppends()
    {
        // Any chunking, any failure pattern, with NaN frames dropped: the windower with undone appends must give the
        // same windows as a reference that only ever saw the successful appends (zero-copy and buffered paths alike).
        Prop.ForAll(Gen.ListOf(Gen.Zip(Gen.Choose(0, 23), Gen.Elements(true, false, false))).ToArbitrary(), Gen.Choose(0, 1000).ToArbitrary(), (appends, seed) =>
        {
            var options = new StreamWindowerOptions { InvalidSamples = InvalidSampleHandling.DropWindow };
            using var windower = new StreamWindower(5, 3, 2, options);
            using var reference = new StreamWindower(5, 3, 2, options);
            var rng = new Random(seed);
            var next = 0f;
            foreach (var (frames, fail) in appends)
            {
                var chunk = new float[frames * 2];
                for (var i = 0; i < chunk.Length; i++)
                {
                    chunk[i] = rng.Next(40) == 0 ? float.NaN : next++;
                }

                if (fail)
                {
                    try
                    {
                        windower.Append<int, int>("s", chunk, 0, static (_, _) => throw new InferenceQueueFullException("full"));
                        return false;
                    }
                    catch (InferenceQueueFullException)
                    {
                    }

                    continue;
                }

                var got = windower.Append("s", chunk, 0, static (w, _) => Capture(w));
                var want = reference.Append("s", chunk);
                if (got.Length != want.Count)
                {
                    return false;
                }

                for (var i = 0; i < want.Count; i++)
                {
                    if (got[i].Item1 != want.GetStartFrame(i) || !got[i].Item2.SequenceEqual(want[i].ToArray()))
                    {
                        return false;
                    }
                }
            }

            return windower.DroppedWindows == reference.DroppedWindows;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(300));
    }

    [Fact]
    public async Task ReadmeMisuse_AChunkThatCompletesNoWindow_FailsLoudlyOrScoresNothing()
    {
        // Issue 13: a 50-frame chunk completes no window; copying "the window" out used to copy nothing, and the
        // zero-filled buffer was then scored (LAYING, 91 %) without complaint.
        var observer = new Models.HarModelPredictTests.RecordingObserver();
        using var model = HarModel.Load(Fixture.Probs, Fixture.Options(o => o.Observers.Add(observer)));
        using var windower = new StreamWindower(model.Card);
        var window = new float[model.WindowValues];

        var ex = Assert.Throws<InvalidOperationException>(() => windower.Append("d", Fixture.Frames(50)).CopyTo(window));
        Assert.Contains("completed no window", ex.Message, StringComparison.Ordinal);

        // The hand-off path: zero windows complete at once and nothing is scored.
        var predictions = new Prediction[4];
        var scored = windower.Append("d", Fixture.Frames(50), (model, predictions), static (w, s) => s.model.PredictAsync(w, new float[4 * 12], s.predictions));
        Assert.True(scored.IsCompletedSuccessfully);
        await scored;
        Assert.Empty(observer.Seen);
        Assert.Null(predictions[0].Label);
    }

    [Fact]
    public void Append_ToTheSameStreamFromInsideAHandler_ThrowsInsteadOfCorruptingTheBuffer()
    {
        using var windower = new StreamWindower(4, 2, 1);
        var ex = Assert.Throws<InvalidOperationException>(() => windower.Append("s", (float[])[1, 2, 3, 4], windower, static (_, w) => w.Append("s", [5]).Count));
        Assert.Contains("another append to this stream is in progress", ex.Message, StringComparison.Ordinal);
    }

    private static (long Start, float[] Values)[] Capture(StreamWindows windows)
    {
        var result = new (long, float[])[windows.Count];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = (windows.GetStartFrame(i), windows[i].ToArray());
        }

        return result;
    }
}
