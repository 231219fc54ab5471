using System.Globalization;

namespace Har.Deployment;

/// <summary>What one step of a rollout does.</summary>
public enum RolloutStepKind
{
    /// <summary>Route <see cref="RolloutStep.Percent"/> % of the streams to the candidate.</summary>
    SetWeight,

    /// <summary>Mirror <see cref="RolloutStep.Percent"/> % of the champion's streams to the candidate as a shadow (0 stops mirroring).</summary>
    Shadow,

    /// <summary>Run the built-in check on known windows and the user's smoke-test hooks; a failure rolls back.</summary>
    SmokeTest,

    /// <summary>Judge the candidate every <see cref="RolloutStep.Interval"/> until <see cref="RolloutStep.RequiredPasses"/> consecutive passes (advance) or the failure threshold (roll back).</summary>
    Analyze,

    /// <summary>Wait for a person to approve.</summary>
    Approval,

    /// <summary>Wait for <see cref="RolloutStep.Interval"/>.</summary>
    Pause,

    /// <summary>End the rollout without promoting (e.g. after a shadow evaluation); traffic stays on the champion.</summary>
    Finish,
}

/// <summary>
/// One declarative step of a rollout (in the spirit of Argo Rollouts' steps). A strategy is a list of
/// steps; the controller executes them in order, persists the index of the step it is on, and applies
/// each step exactly once. After the last step the candidate is promoted (unless the last step is
/// <see cref="RolloutStepKind.Finish"/>).
/// </summary>
public sealed class RolloutStep
{
    internal RolloutStep(RolloutStepKind kind, double percent, TimeSpan interval, int requiredPasses, bool mirrorToStable = false)
    {
        Kind = kind;
        Percent = percent;
        Interval = interval;
        RequiredPasses = requiredPasses;
        MirrorToStable = mirrorToStable;
    }

    /// <summary>Gets what the step does.</summary>
    public RolloutStepKind Kind { get; }

    /// <summary>Gets the candidate's (or shadow's) share of streams in percent, for <see cref="RolloutStepKind.SetWeight"/> and <see cref="RolloutStepKind.Shadow"/>.</summary>
    public double Percent { get; }

    /// <summary>Gets the analysis interval (<see cref="RolloutStepKind.Analyze"/>) or the wait (<see cref="RolloutStepKind.Pause"/>).</summary>
    public TimeSpan Interval { get; }

    /// <summary>Gets how many consecutive passing intervals an <see cref="RolloutStepKind.Analyze"/> step needs.</summary>
    public int RequiredPasses { get; }

    /// <summary>Gets whether, from a <see cref="RolloutStepKind.SetWeight"/> step on, the candidate's windows are also run on the stable version (paired comparison; the stable result is never returned).</summary>
    public bool MirrorToStable { get; }

    internal int Buckets => (int)Math.Round(Percent * 100, MidpointRounding.AwayFromZero);

    /// <summary>A step that routes <paramref name="percent"/> % of the streams to the candidate.</summary>
    /// <param name="percent">0 … 100, in steps of 0.01.</param>
    /// <param name="mirrorToStable">Whether the candidate's windows are also run on the stable version for a paired comparison.</param>
    /// <returns>The step.</returns>
    public static RolloutStep SetWeight(double percent, bool mirrorToStable = false)
    {
        CheckPercent(percent);
        return new(RolloutStepKind.SetWeight, percent, TimeSpan.Zero, 0, mirrorToStable);
    }

    /// <summary>A step that mirrors <paramref name="percent"/> % of the champion's streams to the candidate as a shadow.</summary>
    /// <param name="percent">0 … 100; 0 stops mirroring.</param>
    /// <returns>The step.</returns>
    public static RolloutStep Shadow(double percent)
    {
        CheckPercent(percent);
        return new(RolloutStepKind.Shadow, percent, TimeSpan.Zero, 0);
    }

    /// <summary>A smoke-test step.</summary>
    /// <returns>The step.</returns>
    public static RolloutStep SmokeTest() => new(RolloutStepKind.SmokeTest, 0, TimeSpan.Zero, 0);

    /// <summary>An analysis step.</summary>
    /// <param name="interval">How long each analysis interval lasts.</param>
    /// <param name="requiredPasses">How many consecutive passing intervals advance the rollout (≥ 1).</param>
    /// <returns>The step.</returns>
    public static RolloutStep Analyze(TimeSpan interval, int requiredPasses = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(requiredPasses, 1);
        return new(RolloutStepKind.Analyze, 0, interval, requiredPasses);
    }

    /// <summary>A manual approval gate.</summary>
    /// <returns>The step.</returns>
    public static RolloutStep Approval() => new(RolloutStepKind.Approval, 0, TimeSpan.Zero, 0);

    /// <summary>A timed wait.</summary>
    /// <param name="duration">How long to wait.</param>
    /// <returns>The step.</returns>
    public static RolloutStep Pause(TimeSpan duration)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(duration, TimeSpan.Zero);
        return new(RolloutStepKind.Pause, 0, duration, 0);
    }

    /// <summary>Ends the rollout without promoting the candidate.</summary>
    /// <returns>The step.</returns>
    public static RolloutStep Finish() => new(RolloutStepKind.Finish, 0, TimeSpan.Zero, 0);

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        RolloutStepKind.SetWeight => string.Create(CultureInfo.InvariantCulture, $"setWeight {Percent}%{(MirrorToStable ? " (mirrored to stable)" : string.Empty)}"),
        RolloutStepKind.Shadow => string.Create(CultureInfo.InvariantCulture, $"shadow {Percent}%"),
        RolloutStepKind.Analyze => string.Create(CultureInfo.InvariantCulture, $"analyze every {Interval} until {RequiredPasses} passes"),
        RolloutStepKind.Pause => string.Create(CultureInfo.InvariantCulture, $"pause {Interval}"),
        _ => Kind.ToString().ToLowerInvariant(),
    };

    private static void CheckPercent(double percent)
    {
        if (!(percent >= 0 && percent <= 100))
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "Expected a share in percent between 0 and 100.");
        }
    }
}
