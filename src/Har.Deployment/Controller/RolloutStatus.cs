
namespace Har.Deployment;

/// <summary>An immutable view of a rollout at one revision; <see cref="LastAnalysis"/> says why it is where it is.</summary>
public sealed class RolloutStatus
{
    internal RolloutStatus()
    {
    }

    /// <summary>Gets the rollout's id.</summary>
    public string RolloutId { get; internal init; } = string.Empty;

    /// <summary>Gets the phase.</summary>
    public RolloutPhase Phase { get; internal init; }

    /// <summary>Gets the revision: it increases with every transition and command.</summary>
    public long Revision { get; internal init; }

    /// <summary>Gets the strategy's name.</summary>
    public string Strategy { get; internal init; } = string.Empty;

    /// <summary>Gets the champion (the version that was current when the rollout started).</summary>
    public string Champion { get; internal init; } = string.Empty;

    /// <summary>Gets the candidate.</summary>
    public string Candidate { get; internal init; } = string.Empty;

    /// <summary>Gets the steps.</summary>
    public IReadOnlyList<RolloutStep> Steps { get; internal init; } = [];

    /// <summary>Gets the index of the current step (equal to the step count once every step has been applied).</summary>
    public int StepIndex { get; internal init; }

    /// <summary>Gets the candidate's share of streams in percent.</summary>
    public double CandidatePercent { get; internal init; }

    /// <summary>Gets the share of the champion's streams mirrored to the candidate in percent.</summary>
    public double ShadowPercent { get; internal init; }

    /// <summary>Gets the number of consecutive passing analysis intervals in the current step.</summary>
    public int ConsecutivePasses { get; internal init; }

    /// <summary>Gets the failure count (reset only by a passing interval).</summary>
    public int Failures { get; internal init; }

    /// <summary>Gets the phase before the pause, when <see cref="Phase"/> is <see cref="RolloutPhase.Paused"/>.</summary>
    public RolloutPhase? PausedFrom { get; internal init; }

    /// <summary>
    /// Gets whether the rollout is <see cref="RolloutPhase.Paused"/> because its analysis could not decide
    /// (too few samples, or intervals straddling a limit): <see cref="Message"/> and <see cref="LastAnalysis"/>
    /// say what is missing. Analysis goes on while paused, so the first conclusive interval resumes it
    /// (or rolls it back on a failure); an operator's <see cref="RolloutCommandKind.Resume"/> resumes it too.
    /// </summary>
    public bool WaitingForData { get; internal init; }

    /// <summary>Gets whether the candidate was promoted (registry <c>current</c> moved).</summary>
    public bool Promoted { get; internal init; }

    /// <summary>Gets who started the rollout.</summary>
    public string StartedBy { get; internal init; } = string.Empty;

    /// <summary>Gets when the rollout started.</summary>
    public DateTimeOffset StartedAt { get; internal init; }

    /// <summary>Gets when the rollout last changed.</summary>
    public DateTimeOffset UpdatedAt { get; internal init; }

    /// <summary>Gets when the next analysis is due, if one is scheduled.</summary>
    public DateTimeOffset? NextAnalysisAt { get; internal init; }

    /// <summary>Gets the number of analysis intervals evaluated so far.</summary>
    public int AnalysesRun { get; internal init; }

    /// <summary>Gets the most recent analysis, if any.</summary>
    public AnalysisResult? LastAnalysis { get; internal init; }

    /// <summary>Gets a sentence about the latest transition.</summary>
    public string Message { get; internal init; } = string.Empty;

    /// <summary>Gets the current step, or <see langword="null"/> when all steps were applied.</summary>
    public RolloutStep? CurrentStep => StepIndex < Steps.Count ? Steps[StepIndex] : null;

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{RolloutId} ({Strategy}) {Champion} -> {Candidate}: {Phase}, candidate {CandidatePercent:0.##}%, step {StepIndex}/{Steps.Count}, revision {Revision}: {Message}");
}
