namespace Har.Deployment;

/// <summary>
/// Options of the built-in strategies: <c>recreate</c> (verify, load, warm up, switch 100 %, promote),
/// <c>blue-green</c> (load beside the champion, smoke-test, switch 100 %, keep the champion warm for a
/// rollback window), <c>canary</c> (stepped weights with analysis at every step) and <c>shadow</c> (mirror
/// traffic to the candidate, gate on agreement and class-mix shift, then hand over or stop).
/// </summary>
public sealed class BuiltInStrategyOptions
{
    /// <summary>Gets or sets the analysis interval of every analysis step (each canary weight, the blue-green rollback window, the shadow period).</summary>
    /// <value>The default value is 1 minute.</value>
    public TimeSpan AnalysisInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets whether <c>recreate</c> and <c>canary</c> smoke-test the candidate before it receives traffic (<c>blue-green</c> and <c>shadow</c> always do).</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool SmokeTest { get; set; } = true;

    /// <summary>Gets or sets whether a person must approve: before the <c>blue-green</c> switch, and before a <c>canary</c> candidate is promoted.</summary>
    /// <value>The default value is <see langword="false"/>.</value>
    public bool RequireApproval { get; set; }

    /// <summary>Gets or sets whether, in <c>canary</c> and <c>blue-green</c>, the candidate's windows are also run on the warm champion, so confidence, class mix and agreement are compared on identical inputs rather than across different devices.</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool MirrorToChampion { get; set; } = true;

    /// <summary>Gets or sets the share of the champion's streams whose windows a <c>canary</c> candidate also scores as a shadow, in percent (0 turns it off).</summary>
    /// <value>The default value is 100.</value>
    public double CanaryShadowPercent { get; set; } = 100;

    /// <summary>Gets the <c>canary</c> candidate's weights in percent, in strictly increasing order.</summary>
    /// <value>The default value is 10, 50, 100 (the reference rollout).</value>
    public IList<double> CanarySteps { get; } = [10, 50, 100];

    /// <summary>Gets or sets how many consecutive passing intervals each <c>canary</c> weight needs (hysteresis: one good interval never promotes).</summary>
    /// <value>The default value is 2.</value>
    public int CanaryPassesPerStep { get; set; } = 2;

    /// <summary>Gets or sets how many consecutive passing intervals close the <c>blue-green</c> rollback window (the champion stays loaded until then, so a rollback is instant).</summary>
    /// <value>The default value is 3.</value>
    public int BlueGreenRollbackWindowIntervals { get; set; } = 3;

    /// <summary>Gets or sets the share of streams mirrored to a <c>shadow</c> candidate, in percent.</summary>
    /// <value>The default value is 100.</value>
    public double ShadowPercent { get; set; } = 100;

    /// <summary>Gets or sets how many consecutive passing intervals end the <c>shadow</c> period.</summary>
    /// <value>The default value is 5.</value>
    public int ShadowPassesRequired { get; set; } = 5;

    /// <summary>Gets or sets the strategy <c>shadow</c> hands over to after a successful shadow period (e.g. <c>canary</c>), or <see langword="null"/> to stop without promoting.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? ShadowThen { get; set; }

    internal void CopyTo(BuiltInStrategyOptions target)
    {
        target.CanarySteps.Clear();
        foreach (var weight in CanarySteps)
        {
            target.CanarySteps.Add(weight);
        }

        (target.AnalysisInterval, target.SmokeTest, target.RequireApproval, target.MirrorToChampion) = (AnalysisInterval, SmokeTest, RequireApproval, MirrorToChampion);
        (target.CanaryPassesPerStep, target.BlueGreenRollbackWindowIntervals) = (CanaryPassesPerStep, BlueGreenRollbackWindowIntervals);
        (target.ShadowPercent, target.ShadowPassesRequired, target.ShadowThen, target.CanaryShadowPercent) = (ShadowPercent, ShadowPassesRequired, ShadowThen, CanaryShadowPercent);
    }
}
