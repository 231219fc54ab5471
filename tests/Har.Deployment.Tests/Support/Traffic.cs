
namespace Har.Deployment.Tests.Support;

/// <summary>Feeds an interval's worth of observations, as the serving path would.</summary>
internal static class Traffic
{
    /// <summary>
    /// Healthy: the candidate behaves like the champion. Otherwise 2 % of its requests fail (8 of 400, where the champion
    /// fails none): a failing interval by Fisher's exact test, p = C(400,8)/C(800,8) = 0.0038 ≤ 0.05, but not a decisive
    /// one (&gt; α² = 0.0025), so it takes two such intervals to roll back.
    /// </summary>
    public static void Feed(RolloutController controller, int windows, bool healthy, string champion = TestRegistry.Champion, string candidate = TestRegistry.Candidate)
    {
        var o = controller.Observations;
        var latency = TimeSpan.FromMilliseconds(12);
        for (var i = 0; i < windows; i++)
        {
            var label = i % 5;
            o.RecordPrediction(champion, new PredictionObservation(label, 0.9f, false, latency));
            if (!healthy && i % 50 == 0)
            {
                o.RecordError(candidate, latency);
                continue;
            }

            o.RecordPrediction(candidate, new PredictionObservation(label, 0.88f, false, latency));
            o.RecordPair(new PairedObservation(label, 0.88f, false, label, 0.9f, false));
        }
    }

    /// <summary>Feeds one interval, moves the fake clock past it and reconciles.</summary>
    public static async Task<RolloutStatus> IntervalAsync(TestRegistry env, RolloutController controller, int windows, bool healthy)
    {
        Feed(controller, windows, healthy);
        env.Time.Advance(TimeSpan.FromMinutes(1));
        return (await controller.ReconcileAsync())!;
    }
}
