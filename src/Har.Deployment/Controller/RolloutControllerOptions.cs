using Prometheus;

namespace Har.Deployment;

/// <summary>Options of a <see cref="RolloutController"/>.</summary>
public sealed class RolloutControllerOptions
{
    /// <summary>Gets or sets the folder holding the rollout state (<c>rollout.json</c>) and finished rollouts (<c>history/</c>).</summary>
    /// <value>The default value is <see langword="null"/>: <c>.rollout</c> inside the registry directory.</value>
    public string? StateDirectory { get; set; }

    /// <summary>Gets the thresholds and minimum sample sizes of the analysis gates, and user gates.</summary>
    public AnalysisOptions Analysis { get; } = new();

    /// <summary>Gets or sets how many failing intervals roll back (a passing interval resets the count: hysteresis, so one noisy interval never rolls back on its own).</summary>
    /// <value>The default value is 2.</value>
    public int FailureThreshold { get; set; } = 2;

    /// <summary>Gets or sets how many consecutive unmeasurable intervals roll back (no data is not good news).</summary>
    /// <value>The default value is 3.</value>
    public int UnmeasurableLimit { get; set; } = 3;

    /// <summary>Gets or sets how many inconclusive intervals one analysis step may take before it rolls back (a candidate that cannot be judged is not promoted).</summary>
    /// <value>The default value is 10.</value>
    public int MaxInconclusiveIntervals { get; set; } = 10;

    /// <summary>Gets the hooks (pre-rollout, smoke test, pre-promotion, post-rollout).</summary>
    public IList<IRolloutHook> Hooks { get; } = [];

    /// <summary>Gets user strategies, in addition to the built-in ones (a user strategy with a built-in name replaces it).</summary>
    public IList<IRolloutStrategy> Strategies { get; } = [];

    /// <summary>Gets the options of the built-in <c>recreate</c> strategy.</summary>
    public RecreateStrategyOptions Recreate { get; } = new();

    /// <summary>Gets the options of the built-in <c>blue-green</c> strategy.</summary>
    public BlueGreenStrategyOptions BlueGreen { get; } = new();

    /// <summary>Gets the options of the built-in <c>canary</c> strategy.</summary>
    public CanaryStrategyOptions Canary { get; } = new();

    /// <summary>Gets the options of the built-in <c>shadow</c> strategy.</summary>
    public ShadowStrategyOptions Shadow { get; } = new();

    /// <summary>Gets known windows (sensor units, interleaved frames) the built-in smoke test runs the candidate on; the candidate must agree with the champion on at least <see cref="SmokeTestMinAgreement"/> of them.</summary>
    /// <value>The default value is an empty list: the smoke test uses synthetic windows and checks only that outputs are valid and deterministic.</value>
    public IList<float[]> SmokeTestWindows { get; } = [];

    /// <summary>Gets or sets the lowest agreement with the champion on <see cref="SmokeTestWindows"/>.</summary>
    /// <value>The default value is 0.5.</value>
    public double SmokeTestMinAgreement { get; set; } = 0.5;

    /// <summary>Gets or sets the Prometheus registry the rollout metrics go to.</summary>
    /// <value>The default value is <see langword="null"/>: <see cref="Prometheus.Metrics.DefaultRegistry"/>.</value>
    public CollectorRegistry? MetricsRegistry { get; set; }

    /// <summary>Gets or sets how long <see cref="RolloutController.RunAsync"/> waits before it retries after a failed reconciliation.</summary>
    /// <value>The default value is 5 seconds.</value>
    public TimeSpan FaultRetryInterval { get; set; } = TimeSpan.FromSeconds(5);

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(FailureThreshold, 1, nameof(FailureThreshold));
        ArgumentOutOfRangeException.ThrowIfLessThan(UnmeasurableLimit, 1, nameof(UnmeasurableLimit));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxInconclusiveIntervals, 1, nameof(MaxInconclusiveIntervals));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(FaultRetryInterval, TimeSpan.Zero, nameof(FaultRetryInterval));
        if (!(SmokeTestMinAgreement >= 0 && SmokeTestMinAgreement <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(SmokeTestMinAgreement), SmokeTestMinAgreement, "Expected a fraction in [0, 1].");
        }

        Analysis.Validate();
    }
}
