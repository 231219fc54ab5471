using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Controller;

/// <summary>
/// A failing interval followed by one too thin to decide alone: the two intervals' samples are judged together, and a
/// decisive failure there (p ≤ α²) rolls the candidate back at once. The p-values are the hypergeometric tails of
/// Fisher's exact test against a champion without errors, derived by hand: C(60,2)/C(600,2) = 0.0098 for one interval
/// with 2 errors in 60 requests; C(120,3)/C(1200,3) = 0.00098 and C(120,2)/C(1200,2) = 0.0099 for two joined.
/// </summary>
public sealed class FailingStreakTests : IDisposable
{
    private readonly TestRegistry _env = new();

    public void Dispose() => _env.Dispose();

    [Fact]
    public async Task FailingInterval_ThenAThinOne_JoinedSamplesDecisive_RolledBackWithTheJoinedEvidence()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options());
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));

        // 2 errors in 60: failing (p = 0.0098 ≤ 0.05), not decisive (> 0.0025).
        var s = await IntervalAsync(c, candidateErrors: 2);
        Assert.Equal((RolloutPhase.Progressing, 1), (s.Phase, s.Failures));
        Assert.Contains(s.LastAnalysis!.Gates, g => g.Gate == "error-rate" && g.Verdict == GateVerdict.Fail);

        // 1 error in the next 60 proves nothing alone (p = 0.1); 3 in 120 together do (p = 0.00098).
        s = await IntervalAsync(c, candidateErrors: 1);
        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        Assert.Contains(s.LastAnalysis!.Gates, g => g.Gate == "error-rate" && g.Verdict == GateVerdict.Inconclusive);
        var verdict = _env.Audit.OfType("rollout.verdict").Last();
        var joined = verdict.Details["joined_intervals"]!;
        Assert.Equal(2, joined["intervals"]!.GetValue<int>());
        var gate = Assert.Single(joined["gates"]!.AsArray());
        Assert.Equal("error-rate", gate!["gate"]!.GetValue<string>());
        Assert.Equal(120, gate["evidence"]!["requests"]!.GetValue<double>());
        Assert.Equal(3, gate["evidence"]!["errors"]!.GetValue<double>());
        Assert.Equal(280840.0 / 287280400, gate["evidence"]!["p_exact_champion"]!.GetValue<double>(), 12); // C(120,3) / C(1200,3)
        Assert.Contains("2 intervals since the first failing one", _env.Audit.OfType("rollout.rollback").Single().Details["reason"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task FailingInterval_ThenAThinOne_JoinedSamplesNotDecisive_KeepsGoing()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options());
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        Assert.Equal(1, (await IntervalAsync(c, candidateErrors: 2)).Failures);

        // 2 in 120 together: p = 0.0099, not decisive; the step goes on as before.
        var s = await IntervalAsync(c, candidateErrors: 0);
        Assert.Equal((RolloutPhase.Progressing, 1), (s.Phase, s.Failures));
        Assert.Null(_env.Audit.OfType("rollout.verdict").Last().Details["joined_intervals"]);
    }

    [Fact]
    public async Task DecisiveFailure_RolledBackAtTheFirstInterval_TheReasonSaysItCountedTwice()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options());
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));

        // 20 errors in 60 against none in 540: p = C(60,20)/C(600,20) < 1e-20, far below α² = 0.0025.
        var s = await IntervalAsync(c, candidateErrors: 20);
        Assert.Equal(RolloutPhase.RolledBack, s.Phase);
        Assert.Equal(1, s.AnalysesRun);

        // The demo printed "rolled back after 1 analysis interval" beside "2 failing analysis interval(s)".
        var reason = _env.Audit.OfType("rollout.rollback").Single().Details["reason"]!.GetValue<string>();
        Assert.StartsWith("a decisive failure (counted as two failing analysis intervals; 2 counted, threshold 2): ", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PassingIntervalInBetween_EndsTheStreak()
    {
        await using var c = await _env.OpenAsync(TestRegistry.Options());
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        Assert.Equal(1, (await IntervalAsync(c, candidateErrors: 2)).Failures);

        // A clean interval with enough requests passes and resets the count; the earlier errors are not joined with later ones.
        var s = await IntervalAsync(c, candidateErrors: 0, candidateRequests: 400);
        Assert.Equal((RolloutPhase.Progressing, 0), (s.Phase, s.Failures));
        s = await IntervalAsync(c, candidateErrors: 1);
        Assert.Equal((RolloutPhase.Progressing, 0), (s.Phase, s.Failures));
        Assert.Null(_env.Audit.OfType("rollout.verdict").Last().Details["joined_intervals"]);
    }

    private async Task<RolloutStatus> IntervalAsync(RolloutController controller, int candidateErrors, int candidateRequests = 60)
    {
        var o = controller.Observations;
        var latency = TimeSpan.FromMilliseconds(12);
        for (var i = 0; i < candidateRequests * 9; i++)
        {
            o.RecordPrediction(TestRegistry.Champion, new PredictionObservation(i % 5, 0.9f, false, latency));
        }

        for (var i = 0; i < candidateRequests; i++)
        {
            if (i < candidateErrors)
            {
                o.RecordError(TestRegistry.Candidate, latency);
                continue;
            }

            o.RecordPrediction(TestRegistry.Candidate, new PredictionObservation(i % 5, 0.88f, false, latency));
            o.RecordPair(new PairedObservation(i % 5, 0.88f, false, i % 5, 0.9f, false));
        }

        _env.Time.Advance(TimeSpan.FromMinutes(1));
        return (await controller.ReconcileAsync())!;
    }
}
