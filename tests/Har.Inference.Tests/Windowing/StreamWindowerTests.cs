using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Time.Testing;

namespace Har.Inference.Tests.Windowing;

public sealed class StreamWindowerTests
{
    [Fact]
    public void Append_AnyChunking_GivesFloorOfNMinusLOverSPlusOneWindowsWithTheRightContent()
    {
        var gen =
            from l in Gen.Choose(1, 40)
            from s in Gen.Choose(1, 50)
            from n in Gen.Choose(0, 400)
            from cuts in Gen.ListOf(Gen.Choose(0, 400))
            select (l, s, n, cuts);
        Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (l, s, n, cuts) = t;
            const int c = 3;
            var data = new float[n * c];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = i;
            }

            var windower = new StreamWindower(l, s, c);
            var boundaries = cuts.Where(x => x < n).Distinct().Order().Append(n).ToArray();
            var count = 0;
            var position = 0;
            foreach (var end in boundaries)
            {
                var windows = windower.Append("s", data.AsSpan(position * c, (end - position) * c));
                for (var w = 0; w < windows.Count; w++)
                {
                    var start = windows.GetStartFrame(w);
                    if (start != (long)count * s || !windows[w].SequenceEqual(data.AsSpan((int)start * c, l * c)))
                    {
                        return false;
                    }

                    count++;
                }

                position = end;
            }

            var expected = n < l ? 0 : ((n - l) / s) + 1;
            return count == expected && windower.WindowCount(n) == expected;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Append_StreamsAreIndependent()
    {
        var windower = new StreamWindower(4, 2, 1);
        Assert.Equal(0, windower.Append("a", [1, 2, 3]).Count);
        Assert.Equal(0, windower.Append("b", [10, 20, 30]).Count);
        var a = windower.Append("a", [4]);
        Assert.Equal(1, a.Count);
        Assert.Equal([1f, 2, 3, 4], a[0].ToArray());
        var b = windower.Append("b", [40, 50, 60]);
        Assert.Equal(2, b.Count);
        Assert.Equal([30f, 40, 50, 60], b[1].ToArray());
    }

    [Fact]
    public void Append_PartialFrame_ThrowsNamingTheExpectedMultiple()
    {
        var windower = new StreamWindower(10, 5, 6);
        var ex = Assert.Throws<ArgumentException>(() => windower.Append("dev", new float[13]));
        Assert.Contains("13 values is not a whole number of frames; expected a multiple of 6", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void Append_NonFiniteWithThrow_ThrowsNamingFrameAndChannel(float bad)
    {
        var windower = new StreamWindower(4, 2, 3);
        windower.Append("dev", new float[6]);
        var frames = new float[9];
        frames[7] = bad;
        var ex = Assert.Throws<ArgumentException>(() => windower.Append("dev", frames));
        Assert.Contains("frame 4 channel 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("expected finite sensor values", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Append_NonFiniteWithDropWindow_DropsExactlyTheWindowsContainingIt()
    {
        var windower = new StreamWindower(4, 2, 1, new StreamWindowerOptions { InvalidSamples = InvalidSampleHandling.DropWindow });
        float[] data = [0, 1, 2, 3, 4, float.NaN, 6, 7, 8, 9, 10, 11, 12, float.NaN];

        var windows = windower.Append("dev", data);

        // Windows start at 0,2,4,6,8,10: frame 5 lies in [2,6) and [4,8); frame 13 in none complete yet ([10,14) contains it).
        var starts = new long[windows.Count];
        for (var i = 0; i < starts.Length; i++)
        {
            starts[i] = windows.GetStartFrame(i);
        }

        Assert.Equal([0L, 6, 8], starts);
        Assert.Equal(3, windower.DroppedWindows);
    }

    [Fact]
    public void Append_BeyondMaxStreams_ThrowsAndIdleStreamsAreEvicted()
    {
        var time = new FakeTimeProvider();
        var windower = new StreamWindower(4, 2, 1, new StreamWindowerOptions { MaxStreams = 2, IdleTimeout = TimeSpan.FromMinutes(1) }, time);
        windower.Append("a", [1]);
        windower.Append("b", [1]);

        var ex = Assert.Throws<StreamLimitExceededException>(() => windower.Append("c", [1]));
        Assert.Contains("limit is 2", ex.Message, StringComparison.Ordinal);

        time.Advance(TimeSpan.FromSeconds(59));
        windower.Append("a", [2]);
        time.Advance(TimeSpan.FromSeconds(2));
        windower.Append("c", [1]); // b idle for 61 s: evicted to make room

        Assert.Equal(2, windower.StreamCount);
        Assert.Equal(1, windower.EvictedStreams);
        Assert.Equal(1, windower.Append("a", [3, 4]).Count); // a kept its buffered frames
    }

    [Fact]
    public void EvictIdle_AfterTimeout_ForgetsStreams()
    {
        var time = new FakeTimeProvider();
        var windower = new StreamWindower(4, 2, 1, new StreamWindowerOptions { IdleTimeout = TimeSpan.FromSeconds(10) }, time);
        windower.Append("a", [1, 2, 3]);
        time.Advance(TimeSpan.FromSeconds(10));

        // The sweep timer evicts it (no append, no EvictIdle call needed).
        Assert.Equal(0, windower.StreamCount);
        Assert.Equal(1, windower.EvictedStreams);
        Assert.Equal(0, windower.EvictIdle());
        Assert.Equal(0, windower.Append("a", [4]).Count); // a new stream: the old frames are gone
    }

    [Fact]
    public void Append_ManySmallChunks_CountsEveryWindow()
    {
        var windower = new StreamWindower(200, 100, 6);
        var chunk = Fixture.Frames(50);
        var total = 0;
        for (var i = 0; i < 2000; i++)
        {
            total += windower.Append("dev", chunk).Count;
        }

        Assert.Equal(windower.WindowCount(2000 * 50), total);
    }

    [Fact]
    public void Remove_ThenAppend_StartsAFreshStream()
    {
        var windower = new StreamWindower(4, 2, 1);
        windower.Append("a", [1, 2, 3]);

        Assert.True(windower.Remove("a"));
        Assert.False(windower.Remove("a"));

        Assert.Equal(0, windower.Append("a", [4]).Count); // the three old frames are gone
        Assert.Equal([4f, 5, 6, 7], windower.Append("a", [5, 6, 7])[0].ToArray());
        Assert.Equal(1, windower.StreamCount);
    }

    [Fact]
    public async Task Append_ConcurrentStreams_EachGetsItsOwnWindows()
    {
        var windower = new StreamWindower(10, 5, 2);
        var tasks = Enumerable.Range(0, 8).Select(d => Task.Run(() =>
        {
            var id = $"device-{d}";
            var total = 0;
            for (var chunk = 0; chunk < 200; chunk++)
            {
                var frames = Enumerable.Repeat((float)d, 7 * 2).ToArray();
                var windows = windower.Append(id, frames);
                for (var w = 0; w < windows.Count; w++)
                {
                    if (windows[w].IndexOfAnyExcept((float)d) >= 0)
                    {
                        return -1;
                    }
                }

                total += windows.Count;
            }

            return total;
        })).ToArray();

        var counts = await Task.WhenAll(tasks);

        Assert.All(counts, c => Assert.Equal(windower.WindowCount(200 * 7), c));
    }

    [Fact]
    public void OpenStream_AnyChunking_GivesTheSameWindowsAsAppendById()
    {
        var gen =
            from n in Gen.Choose(0, 300)
            from cuts in Gen.ListOf(Gen.Choose(0, 300))
            select (n, cuts);
        Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (n, cuts) = t;
            const int c = 2;
            var data = new float[n * c];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = i;
            }

            var byId = new StreamWindower(20, 7, c);
            var byHandle = new StreamWindower(20, 7, c);
            var handle = byHandle.OpenStream("s");
            var position = 0;
            foreach (var end in cuts.Where(x => x < n).Distinct().Order().Append(n))
            {
                var chunk = data.AsSpan(position * c, (end - position) * c);
                var expected = byId.Append("s", chunk);
                var actual = handle.Append(chunk);
                if (actual.Count != expected.Count)
                {
                    return false;
                }

                for (var w = 0; w < actual.Count; w++)
                {
                    if (actual.GetStartFrame(w) != expected.GetStartFrame(w) || !actual[w].SequenceEqual(expected[w]))
                    {
                        return false;
                    }
                }

                position = end;
            }

            return byHandle.StreamCount == (n > 0 ? 1 : byId.StreamCount);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void OpenStream_SharesTheStreamWithAppendById()
    {
        var windower = new StreamWindower(4, 2, 1);
        var handle = windower.OpenStream("a");
        Assert.Equal("a", handle.Id);
        Assert.Equal(0, windower.StreamCount); // created by the first append, not by opening

        handle.Append([1, 2]);
        windower.Append("b", [9]);
        var windows = windower.Append("a", [3, 4]);

        Assert.Equal([1f, 2, 3, 4], windows[0].ToArray());
        Assert.Equal([3f, 4, 5, 6], handle.Append([5, 6])[0].ToArray());
        Assert.Throws<ArgumentException>(() => windower.OpenStream(""));
    }

    [Fact]
    public void OpenStream_AfterRemoveOrEviction_StartsAFreshStreamWithinTheCap()
    {
        var time = new FakeTimeProvider();
        var windower = new StreamWindower(4, 2, 1, new StreamWindowerOptions { MaxStreams = 1, IdleTimeout = TimeSpan.FromSeconds(10) }, time);
        var a = windower.OpenStream("a");
        a.Append([1, 2, 3]);

        Assert.True(windower.Remove("a"));
        Assert.Equal(0, a.Append([4]).Count); // the three old frames are gone
        Assert.Equal([4f, 5, 6, 7], a.Append([5, 6, 7])[0].ToArray());

        // The cap holds for handles: "a" is buffered, so a new stream is refused until "a" is idle.
        var b = windower.OpenStream("b");
        var ex = Assert.Throws<StreamLimitExceededException>(() => b.Append([1]));
        Assert.Contains("limit is 1", ex.Message, StringComparison.Ordinal);

        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, b.Append([1, 2, 3]).Count); // "a" evicted to make room
        Assert.Equal(1, windower.EvictedStreams);
        Assert.Throws<StreamLimitExceededException>(() => a.Append([8])); // the evicted "a" would be a new stream: over the cap
        Assert.Equal(1, windower.StreamCount);
    }

    [Fact]
    public void OpenStream_PartialFrameOrNonFinite_ThrowsAsById()
    {
        var handle = new StreamWindower(4, 2, 3).OpenStream("dev");
        handle.Append(new float[6]);
        var partial = Assert.Throws<ArgumentException>(() => handle.Append(new float[7]));
        Assert.Contains("7 values is not a whole number of frames; expected a multiple of 3", partial.Message, StringComparison.Ordinal);

        var frames = new float[9];
        frames[7] = float.NaN;
        var bad = Assert.Throws<ArgumentException>(() => handle.Append(frames));
        Assert.Contains("frame 4 channel 1", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CopyFinite_EveryLengthAlignmentAndPosition_CopiesAndFindsEachNonFiniteValue()
    {
        // A pinned destination, so each of the 16 float offsets is a different position within a 64-byte line.
        var destination = GC.AllocateArray<float>(100 + 16, pinned: true);
        for (var length = 0; length <= 100; length++)
        {
            var source = new float[length + 3];
            for (var i = 0; i < source.Length; i++)
            {
                source[i] = i - 20.5f;
            }

            for (var offset = 0; offset < 16; offset++)
            {
                var src = source.AsSpan(offset % 3, length);
                var into = destination.AsSpan(offset, length);
                into.Clear();
                Assert.True(Har.Inference.Windowing.FiniteCopy.CopyFinite(src, into));
                Assert.True(into.SequenceEqual(src), $"length {length} offset {offset}");
                var copy = src.ToArray();
                for (var bad = 0; bad < length; bad++)
                {
                    var saved = copy[bad];
                    copy[bad] = (bad % 3) switch { 0 => float.NaN, 1 => float.PositiveInfinity, _ => float.NegativeInfinity };
                    Assert.False(Har.Inference.Windowing.FiniteCopy.CopyFinite(copy, into), $"length {length} offset {offset} position {bad}");
                    Assert.True(into.SequenceEqual(copy), $"copy: length {length} offset {offset} position {bad}");
                    copy[bad] = saved;
                }
            }
        }
    }

    [Fact]
    public async Task HeartbeatClock_Advances_AndNeverRunsAheadOfTheTickCount()
    {
        HeartbeatClock.EnsureStarted();
        var first = HeartbeatClock.Ticks;
        Assert.True(first <= Environment.TickCount64);

        // The timer refreshes it every 250 ms; wait (bounded) until it has moved.
        var deadline = Environment.TickCount64 + 30_000;
        while (HeartbeatClock.Ticks == first && Environment.TickCount64 < deadline)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        var later = HeartbeatClock.Ticks;
        Assert.True(later > first, "the heartbeat's tick count did not advance within 30 s");
        Assert.True(later <= Environment.TickCount64);

        // The lag bound covers the lag right now.
        var lag = HeartbeatClock.MaxLag;
        Assert.True(lag >= HeartbeatClock.PeriodMilliseconds);
        Assert.True(Environment.TickCount64 - HeartbeatClock.Ticks <= HeartbeatClock.MaxLag);
    }

    [Fact]
    public async Task EvictIdle_OnTheHeartbeat_KeepsAFreshStreamAndEvictsItAfterTheTimeout()
    {
        // 10 s is the shortest timeout timed by the heartbeat (StreamWindower.HeartbeatMinimumTimeout).
        var windower = new StreamWindower(4, 2, 1, new StreamWindowerOptions { IdleTimeout = StreamWindower.HeartbeatMinimumTimeout });
        var appended = Environment.TickCount64;
        windower.Append("a", [1, 2, 3]);

        Assert.Equal(0, windower.EvictIdle());
        Assert.Equal(1, windower.StreamCount);

        // The sweep timer or this test's EvictIdle, whichever comes first, evicts it (the sweep runs on a timer now).
        var deadline = Environment.TickCount64 + 60_000;
        while (windower.StreamCount > 0 && Environment.TickCount64 < deadline)
        {
            await Task.Delay(250, TestContext.Current.CancellationToken);
            windower.EvictIdle();
        }

        Assert.Equal(1, windower.EvictedStreams);
        Assert.Equal(0, windower.StreamCount);

        // Never before the timeout (eviction allows for the heartbeat's largest lag so far).
        Assert.True(Environment.TickCount64 - appended >= (long)StreamWindower.HeartbeatMinimumTimeout.TotalMilliseconds);
    }

    [Fact]
    public async Task Append_WhileAnotherThreadRemovesAndEvictsTheStreams_NeverFailsAndEveryWindowIsContiguous()
    {
        // Each chunk continues the values of the one before, so every window (removal restarts a stream, and an
        // append racing with the removal may land in the removed buffer) must hold consecutive values.
        const int length = 8;
        var windower = new StreamWindower(length, 3, 1, new StreamWindowerOptions { IdleTimeout = TimeSpan.FromMilliseconds(1) });
        var ids = new[] { "a", "b", "c", "d" };
        using var stop = new CancellationTokenSource();
        var remover = Task.Run(
            () =>
            {
                var rng = new Random(7);
                while (!stop.IsCancellationRequested)
                {
                    windower.Remove(ids[rng.Next(ids.Length)]);
                    windower.EvictIdle();
                }
            },
            TestContext.Current.CancellationToken);

        var appenders = ids.Select(id => Task.Run(
            () =>
            {
                var handle = windower.OpenStream(id);
                var chunk = new float[5];
                var windows = 0;
                for (var round = 0; round < 20_000; round++)
                {
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        chunk[i] = (round * chunk.Length) + i;
                    }

                    var completed = round % 2 == 0 ? handle.Append(chunk) : windower.Append(id, chunk);
                    for (var w = 0; w < completed.Count; w++, windows++)
                    {
                        var window = completed[w];
                        for (var i = 1; i < length; i++)
                        {
                            Assert.Equal(window[i - 1] + 1, window[i]);
                        }
                    }
                }

                return windows;
            },
            TestContext.Current.CancellationToken)).ToArray();

        var counts = await Task.WhenAll(appenders);
        await stop.CancelAsync();
        await remover;
        Assert.All(counts, count => Assert.True(count > 0));
    }

    [Fact]
    public async Task EvictIdle_OnTheSystemClock_ForgetsStreamsIdleLongerThanTheTimeout()
    {
        var windower = new StreamWindower(4, 2, 1, new StreamWindowerOptions { IdleTimeout = TimeSpan.FromMilliseconds(20) });
        windower.Append("a", [1, 2, 3]);
        Assert.Equal(1, windower.StreamCount);

        await Task.Delay(200, TestContext.Current.CancellationToken);

        // Evicted by the sweep timer already, or by this call.
        windower.EvictIdle();
        Assert.Equal(0, windower.StreamCount);
        Assert.Equal(1, windower.EvictedStreams);
    }

    [Fact]
    public void Append_SteadyState_AllocatesNothing()
    {
        var windower = new StreamWindower(200, 100, 6);
        var handle = windower.OpenStream("dev");
        var data = Fixture.Frames(2000);
        void Feed(int chunkFrames)
        {
            for (var offset = 0; offset + chunkFrames <= 2000; offset += chunkFrames)
            {
                handle.Append(data.AsSpan(offset * 6, chunkFrames * 6));
                windower.Append("dev", data.AsSpan(offset * 6, chunkFrames * 6));
            }
        }

        Feed(50);
        Feed(400);
        var allocated = Har.Testing.Allocations.LeastPerRound(() =>
        {
            Feed(50);
            Feed(400);
            Feed(137);
        });

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Append_AnyLengthAndChannelCount_AcceptsExactlyWholeFrames()
    {
        for (var channels = 1; channels <= 13; channels++)
        {
            var windower = new StreamWindower(3, 2, channels);
            long frames = 0;
            for (var length = 0; length <= 200; length++)
            {
                if (length % channels == 0)
                {
                    windower.Append("s", new float[length]);
                    frames += length / channels;
                }
                else
                {
                    Assert.Throws<ArgumentException>(() => windower.Append("s", new float[length]));
                }
            }

            // Every accepted append was counted with the right number of frames: the next windows start where expected.
            var next = windower.Append("s", new float[3 * channels]);
            Assert.Equal(windower.WindowCount(frames + 3) - windower.WindowCount(frames), next.Count);
        }
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(2)]
    [InlineData(int.MaxValue)]
    public void GetStartFrameAndIndexer_IndexOutsideTheWindows_ThrowArgumentOutOfRangeNamingTheCount(int index)
    {
        var windower = new StreamWindower(4, 2, 1);

        // 6 frames complete 2 windows (starts 0 and 2); a ref struct cannot be captured, so each lambda appends to its own stream.
        var start = Assert.Throws<ArgumentOutOfRangeException>(() => windower.Append("start", new float[6]).GetStartFrame(index));
        var view = Assert.Throws<ArgumentOutOfRangeException>(() => windower.Append("view", new float[6])[index].Length);

        Assert.Equal("index", start.ParamName);
        Assert.Equal("index", view.ParamName);
        Assert.Contains("completed 2 window(s)", start.Message, StringComparison.Ordinal);
    }
}
