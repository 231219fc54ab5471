using Prometheus;

namespace Har.Deployment;

/// <summary>Options of a <see cref="RolloutController"/>.</summary>
public sealed class RolloutControllerOptions
{
    /// <summary>
    /// Gets or sets the folder holding the rollout state (<c>rollout.json</c>) and finished rollouts (<c>history/</c>).
    /// Not public: backups and restores (<see cref="DeploymentBackup"/>) read and write the state at <c>.rollout</c> inside
    /// the registry, so a state kept elsewhere would be missing from an offline backup; the simulation and tests set it.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: <c>.rollout</c> inside the registry directory.</value>
    internal string? StateDirectory { get; set; }

    /// <summary>
    /// Gets or sets a state store that replaces the <c>rollout.json</c> file (the simulation's in-memory store: its
    /// scratch rollouts are never resumed, so fsync'd state files only cost time).
    /// </summary>
    internal IRolloutStateStore? StateStore { get; set; }

    /// <summary>Gets the thresholds and minimum sample sizes of the analysis gates, and user gates.</summary>
    public AnalysisOptions Analysis { get; } = new();

    /// <summary>Gets or sets how many failing intervals roll back (a passing interval resets the count: hysteresis, so one noisy interval never rolls back on its own).</summary>
    /// <value>The default value is 2.</value>
    public int FailureThreshold { get; set; } = 2;

    /// <summary>Gets or sets how many consecutive unmeasurable intervals (no data at all) pause the rollout (or roll it back with <see cref="RollbackOnInconclusive"/>): no data is not good news.</summary>
    /// <value>The default value is 3.</value>
    public int UnmeasurableLimit { get; set; } = 3;

    /// <summary>
    /// Gets or sets how many inconclusive intervals one analysis step may take before the rollout pauses
    /// (or rolls back with <see cref="RollbackOnInconclusive"/>). Until then an inconclusive interval extends
    /// the step: its samples are kept and the next analysis judges them together with the next interval's.
    /// </summary>
    /// <value>The default value is 10.</value>
    public int MaxInconclusiveIntervals { get; set; } = 10;

    /// <summary>
    /// Gets or sets whether a candidate that cannot be judged (past <see cref="MaxInconclusiveIntervals"/> or
    /// <see cref="UnmeasurableLimit"/>) is rolled back instead of paused. Too few samples is not evidence of
    /// a fault, so by default the rollout pauses with a status that says what is missing
    /// (<see cref="RolloutStatus.WaitingForData"/>), like Argo Rollouts' inconclusive analysis.
    /// </summary>
    /// <value>The default value is <see langword="false"/>.</value>
    public bool RollbackOnInconclusive { get; set; }

    /// <summary>Gets or sets how many distinct people must approve each approval step (<see cref="BuiltInStrategyOptions.RequireApproval"/>); one person cannot approve twice. Fixed for a rollout when it starts.</summary>
    /// <value>The default value is 1.</value>
    public int RequiredApprovals { get; set; } = 1;

    /// <summary>Gets or sets whether the person who started a rollout may be one of its approvers. Fixed for a rollout when it starts.</summary>
    /// <value>The default value is <see langword="false"/>: the starter's approval is refused (four eyes).</value>
    public bool StarterMayApprove { get; set; }

    /// <summary>
    /// Gets or sets the compliance gate on the candidate's test accuracy: a rollout of a version whose deployment record
    /// (from its model card) records a lower <c>test_accuracy</c> is refused at start, and the refusal audited.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: no minimum.</value>
    public double? MinCandidateAccuracy { get; set; }

    /// <summary>Gets or sets the compliance gate on the candidate's recorded macro-F1 (see <see cref="MinCandidateAccuracy"/>).</summary>
    /// <value>The default value is <see langword="null"/>: no minimum.</value>
    public double? MinCandidateMacroF1 { get; set; }

    /// <summary>Gets the hooks (pre-rollout, smoke test, pre-promotion, post-rollout).</summary>
    public IList<IRolloutHook> Hooks { get; } = [];

    /// <summary>Gets user strategies, in addition to the built-in ones (a user strategy with a built-in name replaces it).</summary>
    public IList<IRolloutStrategy> Strategies { get; } = [];

    /// <summary>Gets the options of the built-in strategies (<c>recreate</c>, <c>blue-green</c>, <c>canary</c>, <c>shadow</c>).</summary>
    public BuiltInStrategyOptions BuiltInStrategies { get; } = new();

    /// <summary>
    /// Gets known windows (sensor units, interleaved frames) the built-in smoke test runs the candidate on; the candidate must agree with the champion on at least <see cref="SmokeTestMinAgreement"/> of them.
    /// They are also each version's calibration reference for the confidence and uncertain-rate gates, per predicted class: give a sample of each activity as it comes
    /// (a few dozen windows of each, not only windows the champion is sure of), so each class the versions predict has its own figures.
    /// </summary>
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

    /// <summary>
    /// Gets or sets the PostgreSQL connection string of a fleet's shared control plane (the service reads it from
    /// <c>ConnectionStrings:Har</c>). When set, the rollout state and the registry's <c>current</c> pointer live in the
    /// database (schema <c>har_fleet</c>, created and migrated on open) instead of the registry's <c>.rollout</c> folder; every
    /// replica follows the current traffic plan, and only the holder of the controller lease runs analyses and applies steps.
    /// With an audit log on the registry, the registered models' files are shared there too: a version registered through
    /// any replica is fetched by the others when they need it, verified against its registration in the audit log.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: one process, state in <c>rollout.json</c>.</value>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// Gets or sets how long the controller lease lasts without renewal (with <see cref="ConnectionString"/>). The leader
    /// renews it every quarter of this and stops driving after three quarters without a renewal; when it dies, another
    /// replica leads within this plus a quarter of it.
    /// </summary>
    /// <value>The default value is 8 seconds.</value>
    internal TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>Gets or sets how often a replica polls the shared state when no change notification arrives (with <see cref="ConnectionString"/>; a notification is usually heard within milliseconds).</summary>
    /// <value>The default value is 1 second.</value>
    internal TimeSpan PlanPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(LeaseDuration, TimeSpan.FromSeconds(1), nameof(LeaseDuration));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(PlanPollInterval, TimeSpan.Zero, nameof(PlanPollInterval));
        ArgumentOutOfRangeException.ThrowIfLessThan(FailureThreshold, 1, nameof(FailureThreshold));
        ArgumentOutOfRangeException.ThrowIfLessThan(RequiredApprovals, 1, nameof(RequiredApprovals));
        ArgumentOutOfRangeException.ThrowIfLessThan(UnmeasurableLimit, 1, nameof(UnmeasurableLimit));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxInconclusiveIntervals, 1, nameof(MaxInconclusiveIntervals));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(FaultRetryInterval, TimeSpan.Zero, nameof(FaultRetryInterval));
        if (!(SmokeTestMinAgreement >= 0 && SmokeTestMinAgreement <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(SmokeTestMinAgreement), SmokeTestMinAgreement, "Expected a fraction in [0, 1].");
        }

        foreach (var (name, value) in (ReadOnlySpan<(string, double?)>)[(nameof(MinCandidateAccuracy), MinCandidateAccuracy), (nameof(MinCandidateMacroF1), MinCandidateMacroF1)])
        {
            if (value is { } v && !(v >= 0 && v <= 1))
            {
                throw new ArgumentOutOfRangeException(name, v, "Expected a fraction in [0, 1] (or null for no minimum).");
            }
        }

        Analysis.Validate();
    }
}
