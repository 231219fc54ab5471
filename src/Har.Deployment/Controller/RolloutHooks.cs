namespace Har.Deployment;

/// <summary>When a <see cref="IRolloutHook"/> runs (Flagger's webhook types).</summary>
public enum RolloutHookPoint
{
    /// <summary>Before the candidate is loaded and receives traffic (e.g. a compliance gate). A refusal holds the rollout in <see cref="RolloutPhase.Pending"/> and asks again every analysis interval; at <see cref="RolloutControllerOptions.FailureThreshold"/> consecutive refusals the rollout fails.</summary>
    PreRollout,

    /// <summary>During a smoke-test step, after the built-in check. A refusal rolls back.</summary>
    SmokeTest,

    /// <summary>Before promotion. A refusal rolls back.</summary>
    PrePromotion,

    /// <summary>After the rollout ends (any terminal phase). Informational: a refusal or error is logged and audited but changes nothing.</summary>
    PostRollout,

    /// <summary>First of all, before the pre-rollout hooks (e.g. a manual go-ahead). A refusal holds the rollout in <see cref="RolloutPhase.Pending"/> until the hook allows it (asked again every analysis interval) or an operator aborts.</summary>
    ConfirmRollout,

    /// <summary>At every analysis interval, before the gates (e.g. a load test or an external check). A refusal counts as a failing interval.</summary>
    Rollout,

    /// <summary>After every phase transition (notifications: start, success, rollback, …; <see cref="RolloutHookContext.Status"/> holds the new phase). Informational like <see cref="PostRollout"/>.</summary>
    Event,
}

/// <summary>What a hook sees.</summary>
public sealed class RolloutHookContext
{
    internal RolloutHookContext(RolloutHookPoint point, RolloutStatus status, string idempotencyKey)
    {
        Point = point;
        Status = status;
        IdempotencyKey = idempotencyKey;
    }

    /// <summary>Gets where in the rollout the hook runs.</summary>
    public RolloutHookPoint Point { get; }

    /// <summary>Gets the rollout's status when the hook runs.</summary>
    public RolloutStatus Status { get; }

    /// <summary>Gets a key that is the same every time this hook runs for this rollout step (a retried call after a crash repeats it): use it to make side effects idempotent.</summary>
    public string IdempotencyKey { get; }
}

/// <summary>A hook's answer.</summary>
public readonly struct RolloutHookResult
{
    private RolloutHookResult(bool allowed, string message)
    {
        Allowed = allowed;
        Message = message;
    }

    /// <summary>Gets whether the rollout may proceed.</summary>
    public bool Allowed { get; }

    /// <summary>Gets why (recorded in the audit log).</summary>
    public string Message { get; }

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
internal sealed class DelegateRolloutHook : IRolloutHook
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
