namespace Har.Deployment;

/// <summary>The names of the built-in strategies.</summary>
internal static class RolloutStrategyNames
{
    /// <summary>Verify, load, warm up, switch.</summary>
    public const string Recreate = "recreate";

    /// <summary>Load beside the champion, smoke-test, switch, keep the champion warm for a rollback window.</summary>
    public const string BlueGreen = "blue-green";

    /// <summary>Stepped weights with analysis at every step.</summary>
    public const string Canary = "canary";

    /// <summary>Mirror traffic, gate on agreement and class-mix shift, then hand over or stop.</summary>
    public const string Shadow = "shadow";
}

internal sealed class RecreateStrategy(BuiltInStrategyOptions options) : IRolloutStrategy
{
    public string Name => RolloutStrategyNames.Recreate;

    public IReadOnlyList<RolloutStep> CreateSteps(RolloutStrategyContext context) =>
        options.SmokeTest ? [RolloutStep.SmokeTest(), RolloutStep.SetWeight(100)] : [RolloutStep.SetWeight(100)];
}

internal sealed class BlueGreenStrategy(BuiltInStrategyOptions options) : IRolloutStrategy
{
    public string Name => RolloutStrategyNames.BlueGreen;

    public IReadOnlyList<RolloutStep> CreateSteps(RolloutStrategyContext context)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BlueGreenRollbackWindowIntervals, 1, nameof(options.BlueGreenRollbackWindowIntervals));
        var steps = new List<RolloutStep> { RolloutStep.SmokeTest() };
        if (options.RequireApproval)
        {
            steps.Add(RolloutStep.Approval());
        }

        steps.Add(RolloutStep.SetWeight(100, options.MirrorToChampion));
        steps.Add(RolloutStep.Analyze(options.AnalysisInterval, options.BlueGreenRollbackWindowIntervals));
        return steps;
    }
}

internal sealed class CanaryStrategy(BuiltInStrategyOptions options) : IRolloutStrategy
{
    public string Name => RolloutStrategyNames.Canary;

    public IReadOnlyList<RolloutStep> CreateSteps(RolloutStrategyContext context)
    {
        if (options.CanarySteps.Count == 0)
        {
            throw new InvalidOperationException("BuiltInStrategyOptions.CanarySteps is empty; expected increasing weights such as 10, 50, 100.");
        }

        var steps = new List<RolloutStep>();
        if (options.SmokeTest)
        {
            steps.Add(RolloutStep.SmokeTest());
        }

        if (options.CanaryShadowPercent != 0)
        {
            steps.Add(RolloutStep.Shadow(options.CanaryShadowPercent));
        }

        var previous = 0.0;
        foreach (var weight in options.CanarySteps)
        {
            if (!(weight > previous))
            {
                throw new InvalidOperationException($"BuiltInStrategyOptions.CanarySteps must increase strictly; {weight} follows {previous}.");
            }

            steps.Add(RolloutStep.SetWeight(weight, options.MirrorToChampion));
            steps.Add(RolloutStep.Analyze(options.AnalysisInterval, options.CanaryPassesPerStep));
            previous = weight;
        }

        if (options.RequireApproval)
        {
            steps.Add(RolloutStep.Approval());
        }

        return steps;
    }
}

internal sealed class ShadowStrategy(BuiltInStrategyOptions options) : IRolloutStrategy
{
    public string Name => RolloutStrategyNames.Shadow;

    public IReadOnlyList<RolloutStep> CreateSteps(RolloutStrategyContext context)
    {
        var steps = new List<RolloutStep>
        {
            RolloutStep.SmokeTest(),
            RolloutStep.Shadow(options.ShadowPercent),
            RolloutStep.Analyze(options.AnalysisInterval, options.ShadowPassesRequired),
            RolloutStep.Shadow(0),
        };
        if (options.ShadowThen is null)
        {
            steps.Add(RolloutStep.Finish());
            return steps;
        }

        if (options.ShadowThen == RolloutStrategyNames.Shadow)
        {
            throw new InvalidOperationException("BuiltInStrategyOptions.ShadowThen names the shadow strategy itself; expected another strategy such as 'canary' or null.");
        }

        foreach (var step in context.GetStrategy(options.ShadowThen).CreateSteps(context))
        {
            if (step.Kind != RolloutStepKind.SmokeTest)
            {
                steps.Add(step);
            }
        }

        return steps;
    }
}
