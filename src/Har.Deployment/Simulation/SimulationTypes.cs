namespace Har.Deployment;

/// <summary>One recorded device stream the simulation replays: interleaved frames in sensor units (e.g. a HAPT session).</summary>
/// <param name="Id">The stream's name.</param>
/// <param name="Frames">Interleaved frames (<c>ax ay az gx gy gz</c> …).</param>
/// <param name="FrameLabels">The true activity of each frame (class index of the models' cards, −1 unknown), or empty when unknown.</param>
internal sealed record RecordedSession(string Id, ReadOnlyMemory<float> Frames, ReadOnlyMemory<int> FrameLabels = default);

/// <summary>What a simulated run offers a feedback feeder (delayed ground-truth labels): the seam the feedback labels plug into.</summary>
/// <param name="Serving">The run's serving stand-in (its observations and plan).</param>
/// <param name="WindowTruth">The true class of every window of the simulation (−1 when unknown or when the window's frames disagree).</param>
/// <param name="WindowLength">Frames per window.</param>
/// <param name="Stride">Frames between consecutive windows of a stream.</param>
/// <param name="Seed">The run's seed.</param>
internal sealed record SimulationFeedbackContext(SimulatedServing Serving, int[] WindowTruth, int WindowLength, int Stride, int Seed);

/// <summary>Feeds delayed ground-truth labels into a simulated run (e.g. a share of the HAPT labels, a minute late).</summary>
internal interface ISimulationFeedback
{
    /// <summary>Called for every window a version scored (served, shadow or mirror run).</summary>
    /// <param name="deviceId">The device.</param>
    /// <param name="window">The simulation's global window index (into <see cref="SimulationFeedbackContext.WindowTruth"/>).</param>
    /// <param name="version">The version that scored it.</param>
    /// <param name="role">Why it ran.</param>
    /// <param name="predicted">The predicted class.</param>
    /// <param name="now">Virtual time.</param>
    void OnServed(string deviceId, int window, string version, PredictionRole role, int predicted, DateTimeOffset now);

    /// <summary>Gets how long after a window is served its label arrives: a fault only ground truth shows becomes visible that much later.</summary>
    TimeSpan Delay { get; }

    /// <summary>Called before each reconciliation: report the labels that are due.</summary>
    /// <param name="now">Virtual time.</param>
    /// <returns>The number of windows labelled.</returns>
    int Deliver(DateTimeOffset now);
}

/// <summary>A fault injected into the candidate's serving path.</summary>
internal enum SimulationFault
{
    /// <summary>The candidate is served as it is.</summary>
    None,

    /// <summary>A share of the candidate's requests fail (<see cref="SimulationScenario.ErrorRate"/>, 20 % by default).</summary>
    Errors,

    /// <summary>The candidate is slower than it should be by <see cref="SimulationScenario.LatencyFactor"/> (3× by default).</summary>
    Latency,

    /// <summary>The candidate's input normalization is skipped (raw sensor units reach the network), so its predictions are wrong: the real model is run on such windows.</summary>
    BrokenNormalization,

    /// <summary>The candidate's output labels are permuted (class i is reported as class i + 1): a packaging error with confident, wrong answers.</summary>
    PermutedLabels,

    /// <summary>
    /// The candidate is a less accurate model: it answers as the champion does, except on a fixed share of the windows the
    /// champion gets right (<see cref="SimulationScenario.AccuracyDrop"/> of the labelled windows, chosen by window, the
    /// same in every run), where it answers the neighbouring class with the champion's confidence. Agreement and class mix barely move; only ground truth shows it.
    /// </summary>
    LessAccurate,
}

/// <summary>One simulated rollout.</summary>
internal sealed class SimulationScenario
{
    /// <summary>Gets or sets the injected fault.</summary>
    /// <value>The default value is <see cref="SimulationFault.None"/>.</value>
    public SimulationFault Fault { get; set; }

    /// <summary>Gets or sets the seed of the devices' streams, offsets, errors and latencies.</summary>
    /// <value>The default value is 1.</value>
    public int Seed { get; set; } = 1;

    /// <summary>Gets or sets the strategy.</summary>
    /// <value>The default value is <c>canary</c>.</value>
    public string Strategy { get; set; } = RolloutStrategyNames.Canary;

    /// <summary>Gets or sets the number of devices streaming.</summary>
    /// <value>The default value is 200.</value>
    public int Devices { get; set; } = 200;

    /// <summary>Gets or sets how many windows each device sends per analysis interval (used when <see cref="WindowsPerSecond"/> is not set).</summary>
    /// <value>The default value is 30 (a window every 2 s over a 1-minute interval: stride 100 at 50 Hz).</value>
    public int WindowsPerDeviceInterval { get; set; } = 30;

    /// <summary>Gets or sets the fleet's total windows per second (each window from a device picked at random); <see langword="null"/> for <see cref="WindowsPerDeviceInterval"/> per device.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public double? WindowsPerSecond { get; set; }

    /// <summary>
    /// Gets or sets how many requests are in flight at once. Each version's service time is its own
    /// (sampled from its measured single-window times); the caller's wait adds queueing behind the other
    /// requests in flight, shared by both versions, and CPU contention slows both alike.
    /// </summary>
    /// <value>The default value is 1.</value>
    public int InFlight { get; set; } = 1;

    /// <summary>Gets or sets whether the smoke test and the calibration reference use known real windows (<see langword="false"/>: synthetic smoke windows, no calibration reference — the defaults of a host that sets no <see cref="RolloutControllerOptions.SmokeTestWindows"/>).</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool SmokeTestWindows { get; set; } = true;

    /// <summary>Gets or sets the seam for delayed ground-truth labels: called once per run to create its feeder; <see langword="null"/> for none.</summary>
    public Func<SimulationFeedbackContext, ISimulationFeedback?>? Feedback { get; set; }

    /// <summary>Gets or sets the share of failing candidate requests under <see cref="SimulationFault.Errors"/>.</summary>
    /// <value>The default value is 0.20.</value>
    public double ErrorRate { get; set; } = 0.20;

    /// <summary>Gets or sets the candidate's slowdown under <see cref="SimulationFault.Latency"/>.</summary>
    /// <value>The default value is 3.</value>
    public double LatencyFactor { get; set; } = 3;

    /// <summary>Gets or sets how many accuracy points below the champion the candidate is under <see cref="SimulationFault.LessAccurate"/> (absolute share of the labelled windows).</summary>
    /// <value>The default value is 0.06 (six points: the "at least 5 points less accurate" candidate).</value>
    public double AccuracyDrop { get; set; } = 0.06;

    /// <summary>Gets or sets a change to this run's copy of the simulation's controller options (e.g. a different <see cref="AnalysisOptions.AccuracyWaitIntervals"/>).</summary>
    public Action<RolloutControllerOptions>? Configure { get; set; }

    /// <summary>Gets or sets the most analysis intervals simulated before giving up.</summary>
    /// <value>The default value is 40.</value>
    public int MaxIntervals { get; set; } = 40;
}

/// <summary>One decision of a simulated rollout (from its audit events).</summary>
/// <param name="At">Virtual time.</param>
/// <param name="EventType">The audit event type, e.g. <c>rollout.verdict</c>.</param>
/// <param name="Summary">What was decided, with the key evidence.</param>
internal sealed record SimulationDecision(DateTimeOffset At, string EventType, string Summary);

/// <summary>The outcome of one simulated rollout.</summary>
internal sealed class SimulationResult
{
    internal SimulationResult(RolloutStatus status, int intervals, IReadOnlyList<SimulationDecision> decisions, TimeSpan elapsed, int? faultVisibleInterval = null, string course = "")
    {
        FaultVisibleInterval = faultVisibleInterval;
        Course = course;
        Status = status;
        Intervals = intervals;
        Decisions = decisions;
        Elapsed = elapsed;
    }

    /// <summary>Gets the rollout's final status.</summary>
    public RolloutStatus Status { get; }

    /// <summary>Gets whether the candidate was promoted.</summary>
    public bool Promoted => Status.Phase == RolloutPhase.Succeeded && Status.Promoted;

    /// <summary>Gets whether the candidate was rolled back.</summary>
    public bool RolledBack => Status.Phase == RolloutPhase.RolledBack;

    /// <summary>Gets the number of analysis intervals evaluated (for a rollback: how many it took).</summary>
    public int AnalysisIntervals => Status.AnalysesRun;

    /// <summary>Gets the number of intervals of traffic simulated.</summary>
    public int Intervals { get; }

    /// <summary>Gets the decisions, in order.</summary>
    public IReadOnlyList<SimulationDecision> Decisions { get; }

    /// <summary>Gets every analysis in one line: weight, verdict initial (Pass, Fail, Inconclusive) and the counted gates that did not pass, e.g. <c>10%:I[agreement] 10%:F[agreement]</c>.</summary>
    public string Course { get; }

    /// <summary>Gets the virtual time the rollout took.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Gets the 1-based interval in which the candidate first served traffic (when a fault becomes visible), or <see langword="null"/> if it never did.</summary>
    public int? FaultVisibleInterval { get; }

    /// <summary>Gets the intervals from the one in which the candidate first served traffic to the end of the run, that one included (for a rollback: how long the fault was served).</summary>
    public int? IntervalsAfterVisible => FaultVisibleInterval is { } v ? Intervals - v + 1 : null;

    /// <summary>Gets whether the run ended paused for want of data.</summary>
    public bool WaitingForData => Status.WaitingForData;
}

/// <summary>Where simulated runs spend their wall time, summed over runs (Stopwatch, this machine).</summary>
internal sealed class SimulationProfile
{
    /// <summary>Gets or sets the time opening each run's controller and starting its rollout took.</summary>
    public TimeSpan Open { get; set; }

    /// <summary>Gets or sets the time routing and recording the windows (observations, feedback predictions) took.</summary>
    public TimeSpan Traffic { get; set; }

    /// <summary>Gets or sets the time delivering due feedback labels took.</summary>
    public TimeSpan Feedback { get; set; }

    /// <summary>Gets or sets the time the controller's reconciliations (analysis, state, audit events) took.</summary>
    public TimeSpan Reconcile { get; set; }

    /// <summary>Gets or sets the number of runs.</summary>
    public int Runs { get; set; }

    /// <summary>Gets or sets the number of intervals simulated.</summary>
    public long Intervals { get; set; }

    /// <inheritdoc />
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{Runs} runs, {Intervals} intervals: open {Open.TotalSeconds:0.0} s, traffic {Traffic.TotalSeconds:0.0} s, feedback {Feedback.TotalSeconds:0.0} s, reconcile {Reconcile.TotalSeconds:0.0} s");
}
