using FsCheck;
using FsCheck.Fluent;

namespace Har.Inference.Tests.Models;

public sealed class HarModelBatchingTests : IDisposable
{
    private readonly HarModel _model = HarModel.Load(Fixture.Logits, Fixture.Options(o => o.MaxBatchSize = 8));

    public void Dispose() => _model.Dispose();

    [Fact]
    public void PredictAsync_ManyConcurrentCallers_EachGetsExactlyItsOwnPrediction()
    {
        Prop.ForAll(Gen.Choose(1, 64).ToArbitrary(), Gen.Choose(0, 10_000).ToArbitrary(), (callers, seed) =>
        {
            return ConcurrentCallersGetTheirOwn(_model, _model, callers, seed);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(25));
    }

    [Fact]
    public void PredictAsync_LargeBatchesSplitAcrossIdleWorkers_EachCallerGetsItsOwnPredictionAndEveryWindowRunsOnce()
    {
        // Four workers and batches of up to 64 collected over 20 ms: a batch that finds idle workers is split
        // across them (parts of at least 8), so up to four parts of one batch run at once.
        var observer = new HarModelPredictTests.RecordingObserver();
        using var model = HarModel.Load(Fixture.Logits, Fixture.Options(o =>
        {
            o.Workers = 4;
            o.MaxBatchSize = 64;
            o.MaxBatchWait = TimeSpan.FromMilliseconds(20);
            o.Observers.Add(observer);
        }));
        using var reference = HarModel.Load(Fixture.Logits, Fixture.Options(o => o.Workers = 1));

        Prop.ForAll(Gen.Choose(1, 160).ToArbitrary(), Gen.Choose(0, 10_000).ToArbitrary(), (callers, seed) =>
        {
            lock (observer.Seen)
            {
                observer.Seen.Clear();
            }

            var own = ConcurrentCallersGetTheirOwn(model, reference, callers, seed);
            lock (observer.Seen)
            {
                return own && observer.Seen.Count == callers;
            }
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(25));
    }

    [Fact]
    public async Task PredictAsync_PartialBatchFallsDueBetweenTheBatchersTwoLooks_StillRuns()
    {
        // A clock that moves 15 ms at every read, and batches that wait up to 20 ms for more windows: when the lone
        // window is enqueued, the batcher's first look finds its batch not due yet (15 ms) and its second look, about
        // to arm the timer, finds it overdue (30 ms). It must run the batch then: arming no timer and dispatching no
        // worker left the caller waiting for ever (a thread preempted between the two looks does the same on the real
        // clock, which hung a test on a loaded machine).
        using var model = HarModel.Load(Fixture.Logits, Fixture.Options(o =>
        {
            o.Workers = 2;
            o.MaxBatchSize = 64;
            o.MaxBatchWait = TimeSpan.FromMilliseconds(20);
        }), timeProvider: new SteppingClock(TimeSpan.FromMilliseconds(15)));
        var window = Fixture.Frames(200, seed: 5);

        // The bound is against a hang (the fault this test guards against), not a speed expectation.
        var prediction = await model.PredictAsync(window).AsTask().WaitAsync(HangBound, TestContext.Current.CancellationToken);

        Assert.Equal(_model.Predict(window).Probabilities.ToArray(), prediction.Probabilities.ToArray());
    }

    private static readonly TimeSpan HangBound = TimeSpan.FromMinutes(2);

    /// <summary>A monotonic clock that advances by a fixed step at every read (timers are the system's).</summary>
    private sealed class SteppingClock(TimeSpan step) : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Add(ref _ticks, step.Ticks);
    }

    [Fact]
    public async Task PredictAsync_WrongLengthOrNaN_ThrowsAtOnce()
    {
        var shortWindow = await Assert.ThrowsAsync<ArgumentException>(async () => await _model.PredictAsync(new float[10]));
        Assert.Contains("Window holds 10 values", shortWindow.Message, StringComparison.Ordinal);

        var window = Fixture.Frames(200);
        window[7] = float.NaN;
        var nan = await Assert.ThrowsAsync<ArgumentException>(async () => await _model.PredictAsync(window));
        Assert.Contains("NaN or infinite", nan.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PredictAsync_QueueFull_RejectsClearlyAndCancellationAndDisposeReleaseWaiters()
    {
        using var gate = new ManualResetEventSlim(false);
        using var holding = new ManualResetEventSlim(false);
        var observer = new HarModelPredictTests.RecordingObserver();
        var model = HarModel.Load(Fixture.Probs, Fixture.Options(o =>
        {
            o.Workers = 1;
            o.MaxBatchSize = 1;
            o.QueueCapacity = 2;
            o.Observers.Add(observer);
        }));
        try
        {
            // Hold the only worker: a synchronous Predict blocks inside the observer until the gate opens.
            observer.OnBatch = () =>
            {
                holding.Set();
                gate.Wait();
            };
            var blocker = Task.Run(() => model.Predict(Fixture.Frames(200)));
            holding.Wait();
            observer.OnBatch = null;

            var window = Fixture.Frames(200, seed: 2);
            using var cts = new CancellationTokenSource();
            var accepted = new List<Task<Prediction>>();
            InferenceQueueFullException? full = null;
            for (var i = 0; i < 4 && full is null; i++)
            {
                try
                {
                    accepted.Add(model.PredictAsync(window, i == 1 ? cts.Token : default).AsTask());
                }
                catch (InferenceQueueFullException ex)
                {
                    full = ex;
                }
            }

            Assert.NotNull(full);
            Assert.Contains("queue is full (2 windows waiting", full.Message, StringComparison.Ordinal);
            Assert.InRange(accepted.Count, 2, 3);

            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => accepted[1]);

            gate.Set();
            await blocker;
            var first = await accepted[0];
            Assert.Equal(model.Predict(window).Probabilities.ToArray(), first.Probabilities.ToArray());
        }
        finally
        {
            gate.Set();
            model.Dispose();
        }

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await model.PredictAsync(Fixture.Frames(200)));
    }

    [Fact]
    public async Task Dispose_WithWindowsWaiting_FailsThemAndWaitsForTheRunningBatch()
    {
        using var gate = new ManualResetEventSlim(false);
        using var holding = new ManualResetEventSlim(false);
        var observer = new HarModelPredictTests.RecordingObserver();
        var model = HarModel.Load(Fixture.Probs, Fixture.Options(o =>
        {
            o.Workers = 1;
            o.MaxBatchSize = 1;
            o.Observers.Add(observer);
        }));
        observer.OnBatch = () =>
        {
            holding.Set();
            gate.Wait();
        };
        var running = Task.Run(() => model.Predict(Fixture.Frames(200)));
        holding.Wait();
        observer.OnBatch = null;

        var first = model.PredictAsync(Fixture.Frames(200, seed: 3)).AsTask();
        var second = model.PredictAsync(Fixture.Frames(200, seed: 4)).AsTask();
        var disposing = Task.Run(model.Dispose);

        await Assert.ThrowsAsync<ObjectDisposedException>(() => first);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => second);
        Assert.False(disposing.IsCompleted, "Dispose waits for the running batch");

        gate.Set();
        var prediction = await running;
        await disposing;
        Assert.Equal(1.0, prediction.Probabilities.ToArray().Sum(), 4);
        Assert.False(model.IsReady);
    }

    /// <summary>
    /// <paramref name="callers"/> concurrent callers of <paramref name="model"/>'s micro-batcher, one window each:
    /// whether every caller got the prediction <paramref name="reference"/> gives its window alone.
    /// </summary>
    private static bool ConcurrentCallersGetTheirOwn(HarModel model, HarModel reference, int callers, int seed)
    {
        var windows = Enumerable.Range(0, callers).Select(i => Fixture.Frames(200, seed: seed + i)).ToArray();
        var expected = windows.Select(w => reference.Predict(w).Probabilities.ToArray()).ToArray();

        var tasks = windows.Select(w => Task.Run(async () => await model.PredictAsync(w))).ToArray();
        var results = Task.WhenAll(tasks).GetAwaiter().GetResult();

        return results.Select((r, i) => r.Probabilities.ToArray().SequenceEqual(expected[i])).All(x => x);
    }
}
