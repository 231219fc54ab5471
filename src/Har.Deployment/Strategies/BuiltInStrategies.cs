namespace Har.Deployment;

/// <summary>The names of the built-in strategies.</summary>
public static class RolloutStrategyNames
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

internal sealed class RecreateStrategy(RecreateStrategyOptions options) : IRolloutStrategy
{
    public string Name => RolloutStrategyNames.Recreate;

    public IReadOnlyList<RolloutStep> CreateSteps(RolloutStrategyContext context) =>
        options.SmokeTest ? [RolloutStep.SmokeTest(), RolloutStep.SetWeight(100)] : [RolloutStep.SetWeight(100)];
}

internal sealed class BlueGreenStrategy(BlueGreenStrategyOptions options) : IRolloutStrategy
{
    public string Name => RolloutStrategyNames.BlueGreen;

    public IReadOnlyList<RolloutStep> CreateSteps(RolloutStrategyContext context)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RollbackWindowIntervals, 1, nameof(options.RollbackWindowIntervals));
        var steps = new List<RolloutStep> { RolloutStep.SmokeTest() };
        if (options.RequireApproval)
        {
            steps.Add(RolloutStep.Approval());
        }

        steps.Add(RolloutStep.SetWeight(100, options.MirrorToChampion));
        steps.Add(RolloutStep.Analyze(options.AnalysisInterval, options.RollbackWindowIntervals));
        return steps;
    }
}

internal sealed class CanaryStrategy(CanaryStrategyOptions options) : IRolloutStrategy
{
    public string Name => RolloutStrategyNames.Canary;

    public IReadOnlyList<RolloutStep> CreateSteps(RolloutStrategyContext context)
    {
        if (options.Steps.Count == 0)
        {
            throw new InvalidOperationException("CanaryStrategyOptions.Steps is empty; expected increasing weights such as 10, 50, 100.");
        }

        var steps = new List<RolloutStep>();
        if (options.SmokeTest)
        {
            steps.Add(RolloutStep.SmokeTest());
        }

        var previous = 0.0;
        foreach (var weight in options.Steps)
        {
            if (!(weight > previous))
            {
                throw new InvalidOperationException($"CanaryStrategyOptions.Steps must increase strictly; {weight} follows {previous}.");
            }

            steps.Add(RolloutStep.SetWeight(weight, options.MirrorToChampion));
            steps.Add(RolloutStep.Analyze(options.AnalysisInterval, options.PassesPerStep));
            previous = weight;
        }

        if (options.RequireApprovalBeforePromotion)
        {
            steps.Add(RolloutStep.Approval());
        }

        return steps;
    }
}

internal sealed class ShadowStrategy(ShadowStrategyOptions options) : IRolloutStrategy
{
    public string Name => RolloutStrategyNames.Shadow;

    public IReadOnlyList<RolloutStep> CreateSteps(RolloutStrategyContext context)
    {
        var steps = new List<RolloutStep>
        {
            RolloutStep.SmokeTest(),
            RolloutStep.Shadow(options.MirrorPercent),
            RolloutStep.Analyze(options.AnalysisInterval, options.PassesRequired),
            RolloutStep.Shadow(0),
        };
        if (options.Then is null)
        {
            steps.Add(RolloutStep.Finish());
            return steps;
        }

        if (options.Then == RolloutStrategyNames.Shadow)
        {
            throw new InvalidOperationException("ShadowStrategyOptions.Then names the shadow strategy itself; expected another strategy such as 'canary' or null.");
        }

        foreach (var step in context.GetStrategy(options.Then).CreateSteps(context))
        {
            if (step.Kind != RolloutStepKind.SmokeTest)
            {
                steps.Add(step);
            }
        }

        return steps;
    }
}
