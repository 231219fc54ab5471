namespace Har.Deployment;

/// <summary>
/// A rollout strategy: turns a rollout request into the ordered steps the controller executes.
/// Implement it (and register it with <c>AddStrategy</c>) to add your own.
/// </summary>
public interface IRolloutStrategy
{
    /// <summary>Gets the name users pass to start a rollout with this strategy (e.g. <c>canary</c>).</summary>
    string Name { get; }

    /// <summary>Creates the steps of one rollout. The controller persists them with the rollout, so a later change of the strategy never alters a running rollout.</summary>
    /// <param name="context">Gives access to the other registered strategies (to hand over to one).</param>
    /// <returns>The steps, in order; the candidate is promoted after the last one unless it is <see cref="RolloutStepKind.Finish"/>.</returns>
    IReadOnlyList<RolloutStep> CreateSteps(RolloutStrategyContext context);
}

/// <summary>What a strategy may consult while creating its steps.</summary>
public sealed class RolloutStrategyContext
{
    private readonly Func<string, IRolloutStrategy> _resolve;

    internal RolloutStrategyContext(Func<string, IRolloutStrategy> resolve) => _resolve = resolve;

    /// <summary>Gets another registered strategy by name.</summary>
    /// <param name="name">The strategy's name.</param>
    /// <returns>The strategy.</returns>
    /// <exception cref="KeyNotFoundException">No strategy of that name is registered.</exception>
    public IRolloutStrategy GetStrategy(string name) => _resolve(name);
}
