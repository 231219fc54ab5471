namespace Har.Deployment;

/// <summary>When a <see cref="IRolloutHook"/> runs.</summary>
public enum RolloutHookPoint
{
    /// <summary>Before the candidate is loaded (e.g. a compliance gate). A refusal fails the rollout.</summary>
    PreRollout,

    /// <summary>During a smoke-test step, after the built-in check. A refusal rolls back.</summary>
    SmokeTest,

    /// <summary>Before promotion. A refusal rolls back.</summary>
    PrePromotion,

    /// <summary>After the rollout ends (any terminal phase). Informational: a refusal or error is logged and audited but changes nothing.</summary>
    PostRollout,
}

/// <summary>What a hook sees.</summary>
/// <param name="Point">When the hook runs.</param>
/// <param name="Status">The rollout's status at that moment.</param>
/// <param name="IdempotencyKey">Unique per rollout, hook point and step: a hook that runs twice after a crash receives the same key, so external side effects can be de-duplicated.</param>
public sealed record RolloutHookContext(RolloutHookPoint Point, RolloutStatus Status, string IdempotencyKey);

/// <summary>A hook's answer.</summary>
/// <param name="Allowed">Whether the rollout may proceed.</param>
/// <param name="Message">Why (recorded in the audit log).</param>
public readonly record struct RolloutHookResult(bool Allowed, string Message)
{
    /// <summary>Allows the rollout to proceed.</summary>
    /// <param name="message">A note for the audit log.</param>
    /// <returns>The result.</returns>
    public static RolloutHookResult Allow(string message = "allowed") => new(true, message);

    /// <summary>Refuses.</summary>
    /// <param name="message">Why, for the audit log.</param>
    /// <returns>The result.</returns>
    public static RolloutHookResult Deny(string message) => new(false, message);
}

/// <summary>
/// A user hook at a point of the rollout (webhooks in Flagger's terms). Hooks run at least once: after a
/// crash a hook may run again with the same <see cref="RolloutHookContext.IdempotencyKey"/>.
/// </summary>
public interface IRolloutHook
{
    /// <summary>Gets the hook's name (for the audit log).</summary>
    string Name { get; }

    /// <summary>Gets when the hook runs.</summary>
    RolloutHookPoint Point { get; }

    /// <summary>Runs the hook. Throwing counts as a refusal (except for <see cref="RolloutHookPoint.PostRollout"/>).</summary>
    /// <param name="context">The rollout at this point.</param>
    /// <param name="cancellationToken">Cancels the hook.</param>
    /// <returns>Whether the rollout may proceed.</returns>
    ValueTask<RolloutHookResult> RunAsync(RolloutHookContext context, CancellationToken cancellationToken);
}

/// <summary>A hook from a delegate.</summary>
public sealed class DelegateRolloutHook : IRolloutHook
{
    private readonly Func<RolloutHookContext, CancellationToken, ValueTask<RolloutHookResult>> _run;

    /// <summary>Initializes a new instance of the <see cref="DelegateRolloutHook"/> class.</summary>
    /// <param name="name">The hook's name.</param>
    /// <param name="point">When it runs.</param>
    /// <param name="run">What it does.</param>
    public DelegateRolloutHook(string name, RolloutHookPoint point, Func<RolloutHookContext, CancellationToken, ValueTask<RolloutHookResult>> run)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(run);
        Name = name;
        Point = point;
        _run = run;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public RolloutHookPoint Point { get; }

    /// <inheritdoc />
    public ValueTask<RolloutHookResult> RunAsync(RolloutHookContext context, CancellationToken cancellationToken) => _run(context, cancellationToken);
}
