namespace Har.Inference.Tests.Models;

/// <summary>
/// Allocations of the calling thread. Alone in its collection: a <see cref="System.Diagnostics.Metrics.MeterListener"/>
/// of a test running meanwhile (InferenceMeterTests) records this model's measurements on this thread, and its
/// callback's allocations were counted here once (12,800 bytes for 100 calls with metrics on, in a CI run; a listener
/// started in this test reproduces exactly that figure).
/// </summary>
[Collection(nameof(ProcessWideMeasurements))]
public sealed class HarModelAllocationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Predict_SpanOverloadInSteadyState_AllocatesNothing(bool metrics)
    {
        using var model = HarModel.Load(Fixture.Logits, Fixture.Options(o =>
        {
            o.EnableMetrics = metrics;
            o.MetricsRegistry = Prometheus.Metrics.NewCustomRegistry();
            o.Workers = 1;
        }));
        var windows = Fixture.Frames(200 * 3);
        var probabilities = new float[36];
        var predictions = new Prediction[3];
        for (var i = 0; i < 50; i++)
        {
            model.Predict(windows, probabilities, predictions);
        }

        var allocated = Har.Testing.Allocations.LeastPerRound(() =>
        {
            for (var i = 0; i < 100; i++)
            {
                model.Predict(windows, probabilities, predictions);
            }
        });

        Assert.Equal(0, allocated);
    }
}
