namespace Har.Deployment;

/// <summary>Options of the <c>recreate</c> strategy: verify, load, warm up, switch 100 %, promote.</summary>
public sealed class RecreateStrategyOptions
{
    /// <summary>Gets or sets whether the candidate is smoke-tested before the switch.</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool SmokeTest { get; set; } = true;
}

/// <summary>Options of the <c>blue-green</c> strategy: load beside the champion, smoke-test, switch 100 %, keep the champion warm for a rollback window.</summary>
public sealed class BlueGreenStrategyOptions
{
    /// <summary>Gets or sets whether a person must approve before the switch.</summary>
    /// <value>The default value is <see langword="false"/>.</value>
    public bool RequireApproval { get; set; }

    /// <summary>Gets or sets the analysis interval during the rollback window.</summary>
    /// <value>The default value is 1 minute.</value>
    public TimeSpan AnalysisInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets how many consecutive passing intervals close the rollback window (the champion stays loaded until then, so a rollback is instant).</summary>
    /// <value>The default value is 3.</value>
    public int RollbackWindowIntervals { get; set; } = 3;

    /// <summary>Gets or sets the share of the candidate's streams also run on the champion for a paired comparison during the rollback window.</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool MirrorToChampion { get; set; } = true;
}

/// <summary>Options of the <c>canary</c> strategy: stepped weights with analysis at every step.</summary>
public sealed class CanaryStrategyOptions
{
    /// <summary>Gets the candidate's weights in percent, in order.</summary>
    /// <value>The default value is 10, 50, 100 (the reference rollout).</value>
    public IList<double> Steps { get; } = [10, 50, 100];

    /// <summary>Gets or sets the analysis interval.</summary>
    /// <value>The default value is 1 minute.</value>
    public TimeSpan AnalysisInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets how many consecutive passing intervals each step needs (hysteresis: one good interval never promotes).</summary>
    /// <value>The default value is 2.</value>
    public int PassesPerStep { get; set; } = 2;

    /// <summary>Gets or sets whether the candidate is smoke-tested before it receives traffic.</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool SmokeTest { get; set; } = true;

    /// <summary>Gets or sets whether a person must approve before the candidate is promoted.</summary>
    /// <value>The default value is <see langword="false"/>.</value>
    public bool RequireApprovalBeforePromotion { get; set; }

    /// <summary>Gets or sets whether the candidate's windows are also run on the warm champion, so confidence, class mix and agreement are compared on identical inputs rather than across different devices.</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool MirrorToChampion { get; set; } = true;
}

/// <summary>Options of the <c>shadow</c> strategy: mirror traffic to the candidate, gate on agreement and class-mix shift, then hand over or stop.</summary>
public sealed class ShadowStrategyOptions
{
    /// <summary>Gets or sets the share of streams mirrored to the candidate, in percent.</summary>
    /// <value>The default value is 100.</value>
    public double MirrorPercent { get; set; } = 100;

    /// <summary>Gets or sets the analysis interval.</summary>
    /// <value>The default value is 1 minute.</value>
    public TimeSpan AnalysisInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets how many consecutive passing intervals end the shadow period.</summary>
    /// <value>The default value is 5.</value>
    public int PassesRequired { get; set; } = 5;

    /// <summary>Gets or sets the strategy to hand over to after a successful shadow period (e.g. <c>canary</c>), or <see langword="null"/> to stop without promoting.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? Then { get; set; }
}
