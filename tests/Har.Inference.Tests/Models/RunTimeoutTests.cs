namespace Har.Inference.Tests.Models;

/// <summary>
/// A graph that never finishes — here a Loop of 10^15 iterations — must not hold a load, a caller, a worker or a
/// dispose for ever: <see cref="HarModelOptions.RunTimeout"/> stops the run (ONNX Runtime's terminate flag). Each test
/// bounds its own wait generously, so that a regression fails instead of hanging the run; no duration is asserted.
/// </summary>
public sealed class RunTimeoutTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Load_GraphThatNeverFinishesItsWarmUp_IsRefusedNamingTheTimeout()
    {
        var load = Task.Run(() => HarModel.Load(Fixture.Model("slow-loop-1.0.0.onnx"), Fixture.Options(o => o.RunTimeout = TimeSpan.FromMilliseconds(500))));

        var ex = await Assert.ThrowsAsync<ModelCardException>(() => load.WaitAsync(Bound));

        Assert.Contains("Model slow-loop@1.0.0 did not finish its warm-up: The run of", ex.Message, StringComparison.Ordinal);
        Assert.Contains("it ran longer than HarModelOptions.RunTimeout (00:00:00.5000000)", ex.Message, StringComparison.Ordinal);
        Assert.IsType<TimeoutException>(ex.InnerException);
    }

    [Fact]
    public async Task Predict_WindowThatRunsAway_FailsWithTimeout_AndTheNextRunsAreServed()
    {
        // slow-on-input counts a Loop only for a window holding a value more than 10 std above the card's mean.
        using var logs = new ListLoggerFactory();
        await using var model = HarModel.Load(Fixture.Model("slow-on-input-1.0.0.onnx"), Fixture.Options(o => o.RunTimeout = TimeSpan.FromMilliseconds(500)), logs);
        var normal = Fixture.Frames(200);
        var runaway = (float[])normal.Clone();
        runaway[7] = 1000f;
        var expected = model.Predict(normal);

        var sync = await Assert.ThrowsAsync<TimeoutException>(() => Task.Run(() => model.Predict(runaway)).WaitAsync(Bound));
        Assert.Contains("The run of 1 window(s) was stopped", sync.Message, StringComparison.Ordinal);

        // Through the micro-batcher: the runaway window's caller fails, and the flag does not stop the next run.
        await Assert.ThrowsAsync<TimeoutException>(() => model.PredictAsync(runaway).AsTask().WaitAsync(Bound));
        var after = await model.PredictAsync(normal).AsTask().WaitAsync(Bound);
        Assert.Equal(expected.ClassIndex, after.ClassIndex);
        Assert.Equal(expected.Confidence, after.Confidence, 5);
        Assert.Equal(expected.ClassIndex, model.Predict(normal).ClassIndex);
        Assert.Contains(logs.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Error && e.Message.Contains("failed to score 1 window(s)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Dispose_WhileARunawayRunIsInProgress_StopsItInsteadOfWaiting()
    {
        // A run timeout of a day: only the dispose can stop the run.
        using var logs = new ListLoggerFactory();
        var model = HarModel.Load(Fixture.Model("slow-on-input-1.0.0.onnx"), Fixture.Options(o => o.RunTimeout = TimeSpan.FromDays(1)), logs);
        var runaway = Fixture.Frames(200);
        runaway[0] = 1000f;
        var pending = model.PredictAsync(runaway).AsTask();
        await Task.Delay(200); // the batcher's worker has started the run (a later start fails as disposed: the same outcome)

        await Task.Run(model.Dispose).WaitAsync(Bound);

        var ex = await Assert.ThrowsAnyAsync<Exception>(() => pending.WaitAsync(Bound));
        Assert.True(ex is TimeoutException or ObjectDisposedException, ex.ToString());

        // A run the dispose stopped is said at Information, not as the model's failure: an Error with a stack trace at every
        // shutdown and unloaded version taught operators to ignore the Errors that matter (found from outside).
        Assert.DoesNotContain(logs.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Error);
        if (ex is TimeoutException)
        {
            Assert.Contains(logs.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Information && e.Message.Contains("stopped a run of 1 window(s) because it is being disposed", StringComparison.Ordinal));
        }
    }
}
