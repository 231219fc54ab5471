namespace Har.Deployment;

/// <summary>One recorded device stream the simulation replays: interleaved frames in sensor units (e.g. a HAPT session).</summary>
/// <param name="Id">The stream's name.</param>
/// <param name="Frames">Interleaved frames (<c>ax ay az gx gy gz</c> …).</param>
internal sealed record RecordedSession(string Id, ReadOnlyMemory<float> Frames);

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

    /// <summary>Gets or sets how many windows each device sends per analysis interval.</summary>
    /// <value>The default value is 30 (a window every 2 s over a 1-minute interval: stride 100 at 50 Hz).</value>
    public int WindowsPerDeviceInterval { get; set; } = 30;

    /// <summary>Gets or sets the share of failing candidate requests under <see cref="SimulationFault.Errors"/>.</summary>
    /// <value>The default value is 0.20.</value>
    public double ErrorRate { get; set; } = 0.20;

    /// <summary>Gets or sets the candidate's slowdown under <see cref="SimulationFault.Latency"/>.</summary>
    /// <value>The default value is 3.</value>
    public double LatencyFactor { get; set; } = 3;

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
    internal SimulationResult(RolloutStatus status, int intervals, IReadOnlyList<SimulationDecision> decisions, TimeSpan elapsed)
    {
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

    /// <summary>Gets the virtual time the rollout took.</summary>
    public TimeSpan Elapsed { get; }
}
