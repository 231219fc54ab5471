
namespace Har.Deployment;

/// <summary>An immutable view of a rollout at one revision.</summary>
public sealed record RolloutStatus
{
    /// <summary>Gets the rollout's id.</summary>
    public required string RolloutId { get; init; }

    /// <summary>Gets the phase.</summary>
    public required RolloutPhase Phase { get; init; }

    /// <summary>Gets the revision: it increases with every transition and command.</summary>
    public required long Revision { get; init; }

    /// <summary>Gets the strategy's name.</summary>
    public required string Strategy { get; init; }

    /// <summary>Gets the champion (the version that was current when the rollout started).</summary>
    public required string Champion { get; init; }

    /// <summary>Gets the candidate.</summary>
    public required string Candidate { get; init; }

    /// <summary>Gets the steps.</summary>
    public required IReadOnlyList<RolloutStep> Steps { get; init; }

    /// <summary>Gets the index of the current step (equal to the step count once every step has been applied).</summary>
    public required int StepIndex { get; init; }

    /// <summary>Gets the candidate's share of streams in percent.</summary>
    public required double CandidatePercent { get; init; }

    /// <summary>Gets the share of the champion's streams mirrored to the candidate in percent.</summary>
    public required double ShadowPercent { get; init; }

    /// <summary>Gets the number of consecutive passing analysis intervals in the current step.</summary>
    public required int ConsecutivePasses { get; init; }

    /// <summary>Gets the failure count (reset only by a passing interval).</summary>
    public required int Failures { get; init; }

    /// <summary>Gets the phase before the pause, when <see cref="Phase"/> is <see cref="RolloutPhase.Paused"/>.</summary>
    public RolloutPhase? PausedFrom { get; init; }

    /// <summary>Gets whether the candidate was promoted (registry <c>current</c> moved).</summary>
    public required bool Promoted { get; init; }

    /// <summary>Gets who started the rollout.</summary>
    public required string StartedBy { get; init; }

    /// <summary>Gets when the rollout started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>Gets when the rollout last changed.</summary>
    public required DateTimeOffset UpdatedAt { get; init; }

    /// <summary>Gets when the next analysis is due, if one is scheduled.</summary>
    public DateTimeOffset? NextAnalysisAt { get; init; }

    /// <summary>Gets the number of analysis intervals evaluated so far.</summary>
    public required int AnalysesRun { get; init; }

    /// <summary>Gets the most recent analysis, if any.</summary>
    public AnalysisResult? LastAnalysis { get; init; }

    /// <summary>Gets a sentence about the latest transition.</summary>
    public required string Message { get; init; }

    /// <summary>Gets the current step, or <see langword="null"/> when all steps were applied.</summary>
    public RolloutStep? CurrentStep => StepIndex < Steps.Count ? Steps[StepIndex] : null;
}
