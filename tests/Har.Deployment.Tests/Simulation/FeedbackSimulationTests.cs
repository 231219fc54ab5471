namespace Har.Deployment.Tests.Simulation;

/// <summary>
/// The simulation with delayed ground truth (10 % of the windows whose HAPT labels agree, one minute late, through
/// <see cref="SimulatedFeedback"/>): the labels join both versions' predictions, the accuracy gate judges the
/// committed candidate against the champion on them, and the healthy candidate is still promoted while a candidate
/// with permuted labels is still rolled back.
/// </summary>
public sealed class FeedbackSimulationTests(SimulationFixture fixture) : IClassFixture<SimulationFixture>
{
    [Fact]
    public async Task HealthyCandidate_WithTenPercentLabelsAMinuteLate_IsPromotedWithTheAccuracyGateMeasured()
    {
        var simulation = Require();
        for (var seed = 1; seed <= 10; seed++)
        {
            var result = await simulation.RunAsync(new SimulationScenario { Seed = seed, Feedback = SimulatedFeedback.Labels(0.10, TimeSpan.FromMinutes(1)) });
            var detail = $"seed {seed}: {result.Status.Phase} after {result.AnalysisIntervals} intervals\n{string.Join('\n', result.Decisions.Select(d => d.Summary))}";
            Assert.True(result.Promoted, detail);
            var accuracy = result.Status.LastAnalysis!.Gates.Single(g => g.Gate == "accuracy");
            Assert.True(accuracy.Evidence["candidate_labelled"] > 0 && accuracy.Evidence["stable_labelled"] > 0, detail);
            Assert.NotEqual(GateVerdict.Fail, accuracy.Verdict);
        }
    }

    [Fact]
    public async Task PermutedLabels_WithFeedback_IsRolledBackWithinTwoIntervals()
    {
        var simulation = Require();
        for (var seed = 1; seed <= 10; seed++)
        {
            var result = await simulation.RunAsync(new SimulationScenario { Seed = seed, Fault = SimulationFault.PermutedLabels, Feedback = SimulatedFeedback.Labels(0.10, TimeSpan.FromMinutes(1)) });
            Assert.True(result.RolledBack && result.AnalysisIntervals <= 2, $"seed {seed}: {result.Status.Phase} after {result.AnalysisIntervals} intervals\n{string.Join('\n', result.Decisions.Select(d => d.Summary))}");
        }
    }

    private RolloutSimulation Require()
    {
        if (fixture.SkipReason is { } reason)
        {
            Assert.Skip(reason);
        }

        return fixture.Simulation!;
    }
}
