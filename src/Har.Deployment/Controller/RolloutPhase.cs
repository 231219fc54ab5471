namespace Har.Deployment;

/// <summary>The phase of a rollout. See the package README for the state diagram.</summary>
public enum RolloutPhase
{
    /// <summary>Created; pre-rollout hooks, verification, loading and warm-up are running.</summary>
    Pending,

    /// <summary>Executing its steps (weights, smoke tests, analysis).</summary>
    Progressing,

    /// <summary>Stopped by an operator; traffic stays as it was and no analysis runs until resumed.</summary>
    Paused,

    /// <summary>Waiting for a person to approve the next step.</summary>
    AwaitingApproval,

    /// <summary>Pre-promotion hooks passed; switching all traffic and the registry's <c>current</c> to the candidate.</summary>
    Promoting,

    /// <summary>The candidate serves everything and is <c>current</c> (or, after a <see cref="RolloutStepKind.Finish"/> step, the evaluation ended without promotion).</summary>
    Succeeded,

    /// <summary>Traffic is back on the champion; the candidate is being unloaded and the rollback recorded.</summary>
    RollingBack,

    /// <summary>Rolled back, automatically (failed gate) or by an operator.</summary>
    RolledBack,

    /// <summary>Stopped by an operator; traffic is back on the champion.</summary>
    Aborted,

    /// <summary>Could not proceed (a pre-rollout hook refused, the candidate failed verification or loading); traffic is on the champion.</summary>
    Failed,
}

/// <summary>The typed commands an operator can send to a rollout.</summary>
public enum RolloutCommandKind
{
    /// <summary>Start a rollout of a candidate with a strategy.</summary>
    Start,

    /// <summary>Pause a progressing rollout.</summary>
    Pause,

    /// <summary>Resume a paused rollout.</summary>
    Resume,

    /// <summary>Approve a rollout waiting at an approval gate.</summary>
    Approve,

    /// <summary>Skip the remaining steps and promote the candidate now.</summary>
    Promote,

    /// <summary>Stop the rollout and return all traffic to the champion.</summary>
    Abort,

    /// <summary>Roll the candidate back (also after it was promoted).</summary>
    Rollback,

    /// <summary>Complete the incident report of a rolled-back rollout (summary, cause, actions); each update is a new audit record.</summary>
    Incident,
}

/// <summary>Extension helpers on <see cref="RolloutPhase"/>.</summary>
internal static class RolloutPhaseExtensions
{
    /// <summary>Returns whether no further transition can happen without a new <see cref="RolloutCommandKind.Start"/> (or, for <see cref="RolloutPhase.Succeeded"/>, a rollback).</summary>
    /// <param name="phase">The phase.</param>
    /// <returns><see langword="true"/> for Succeeded, RolledBack, Aborted and Failed.</returns>
    internal static bool IsTerminal(this RolloutPhase phase) =>
        phase is RolloutPhase.Succeeded or RolloutPhase.RolledBack or RolloutPhase.Aborted or RolloutPhase.Failed;
}
