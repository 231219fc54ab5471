using Microsoft.Extensions.Time.Testing;

namespace Har.Inference.Tests.Models;

/// <summary><see cref="Prediction.ServiceTime"/>: the model's own run time per window, on the monotonic clock, never the TimeProvider.</summary>
public sealed class HarModelServiceTimeTests
{
    [Fact]
    public async Task ServiceTime_ClockThatNeverAdvances_IsPositiveOnEveryPathWhileLatencyIsZero()
    {
        var time = new FakeTimeProvider();
        using var model = HarModel.Load(Fixture.Logits, Fixture.Options(o => o.MaxBatchWait = TimeSpan.Zero), timeProvider: time);
        var windows = Fixture.Frames(3 * model.Card.WindowLength);
        var k = model.Card.ClassCount;

        var batched = new Prediction[3];
        await model.PredictAsync(windows, new float[3 * k], batched);
        var single = await model.PredictAsync(windows.AsMemory(0, model.WindowValues));
        var synchronous = new Prediction[3];
        model.Predict(windows, new float[3 * k], synchronous);

        Assert.All([.. batched, single, .. synchronous], p =>
        {
            Assert.Equal(TimeSpan.Zero, p.Latency);
            Assert.True(p.ServiceTime > TimeSpan.Zero, $"service time {p.ServiceTime}");
        });
    }

    [Fact]
    public async Task ServiceTime_RealClock_IsPositiveAndAtMostTheLatency()
    {
        using var model = HarModel.Load(Fixture.Logits, Fixture.Options(o =>
        {
            o.MaxBatchSize = 8;
            o.MaxBatchWait = TimeSpan.FromMilliseconds(2);
        }));
        var window = Fixture.Frames(model.Card.WindowLength);

        var predictions = await Task.WhenAll(Enumerable.Range(0, 24).Select(_ => model.PredictAsync(window).AsTask()));

        Assert.All(predictions, p =>
        {
            Assert.True(p.ServiceTime > TimeSpan.Zero);
            Assert.True(p.ServiceTime <= p.Latency, $"service time {p.ServiceTime} > latency {p.Latency}");
        });
    }

    [Fact]
    public async Task BatchSize_IsTheNumberOfWindowsInTheRunThatScoredEachWindow()
    {
        using var model = HarModel.Load(Fixture.Logits, Fixture.Options(o =>
        {
            o.MaxBatchSize = 4;
            o.MaxBatchWait = TimeSpan.Zero;
        }));
        var k = model.Card.ClassCount;
        var windows = Fixture.Frames(6 * model.Card.WindowLength);

        // The synchronous path scores 6 windows in runs of at most MaxBatchSize: 4, then 2.
        var synchronous = new Prediction[6];
        model.Predict(windows, new float[6 * k], synchronous);
        Assert.Equal([4, 4, 4, 4, 2, 2], synchronous.Select(p => p.BatchSize));

        // One window alone is a run of one; a prediction made by hand was never run.
        Assert.Equal(1, model.Predict(windows.AsSpan(0, model.WindowValues)).BatchSize);
        Assert.Equal(1, (await model.PredictAsync(windows.AsMemory(0, model.WindowValues))).BatchSize);
        Assert.Equal(0, default(Prediction).BatchSize);
    }
}
