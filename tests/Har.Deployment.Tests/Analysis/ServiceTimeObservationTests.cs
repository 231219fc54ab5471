using Har.Deployment.Tests.Support;
using Har.Inference;

namespace Har.Deployment.Tests.Analysis;

/// <summary>The rollout analysis sees each version's own service time from the real pipeline, whatever the TimeProvider says.</summary>
public sealed class ServiceTimeObservationTests : IDisposable
{
    private readonly TestRegistry _env = new(registerCandidate: false);

    public void Dispose() => _env.Dispose();

    [Fact]
    public async Task RealPipelineOnAFakeClock_ServiceTimeIsMeasuredAndTheLatencyGateJudgesIt()
    {
        // The fake clock never moves while the pipeline serves: every caller's wait reads 0, as in the issue's
        // "durations read from the TimeProvider come out near zero". The service time comes from a monotonic clock.
        var pipeline = _env.Pipeline;
        var card = ModelCard.Load(TestRegistry.ChampionFile);
        var windows = new float[120 * pipeline.WindowValues];
        var rng = new Random(7);
        for (var i = 0; i < windows.Length; i++)
        {
            windows[i] = (float)((rng.NextDouble() * 2) - 1);
        }

        var predictions = new Prediction[120];
        await pipeline.PredictAsync("device-1", windows, predictions);

        var snapshot = pipeline.Observations.TakeSnapshot(TestRegistry.Champion, TestRegistry.Champion, _env.Time.GetUtcNow(), card.Labels);
        Assert.Equal(120, snapshot.Candidate.ServiceTimeSamples);
        Assert.True(snapshot.Candidate.ServiceTimeP50 > TimeSpan.Zero);
        Assert.True(snapshot.Candidate.LatencyP50 <= TimeSpan.FromTicks(10), $"the fake clock's wait should be ~0, was {snapshot.Candidate.LatencyP50}");

        var result = new LatencyGate(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 1.5, 1.5, 100).Evaluate(snapshot);
        Assert.Equal(1, result.Evidence["basis"]);
        Assert.Equal(result.Evidence["candidate_service_p50_ms"], snapshot.Candidate.ServiceTimeP50.TotalMilliseconds);

        // 120 windows in one call are scored in runs of up to 32: none is a single-window run, and the gate says so.
        Assert.Equal(0, snapshot.Candidate.SingleServiceHistogram!.Count);
        Assert.Equal(0, result.Evidence["candidate_single_samples"]);
    }
}
