using Har.Deployment.Tests.Support;
using Har.Inference;

namespace Har.Deployment.Tests.Serving;

/// <summary>The single-window baselines the latency gate divides by: measured for several versions at once, their calls interleaved.</summary>
public sealed class BaselineMeasurementTests
{
    [Fact]
    public void MeasureBaselines_SeveralModels_OnePositiveMedianEach_ModelsStayUsable()
    {
        using var champion = HarModel.Load(TestRegistry.ChampionFile);
        using var candidate = HarModel.Load(TestRegistry.CandidateFile);

        var medians = HarModelHost.MeasureBaselines([champion, candidate, champion]);

        Assert.Equal(3, medians.Length);
        Assert.All(medians, m => Assert.True(m > TimeSpan.Zero, $"median {m}"));
        Assert.True(HarModelHost.MeasureBaseline(candidate) > TimeSpan.Zero);

        // The measurement scores synthetic windows on the caller's thread; the models serve as before.
        var window = new float[candidate.WindowValues];
        Assert.InRange(candidate.Predict(window).ClassIndex, 0, candidate.Card.ClassCount - 1);
    }

    [Fact]
    public void MeasureBaselines_NoModels_NoMedians() => Assert.Empty(HarModelHost.MeasureBaselines([]));
}
