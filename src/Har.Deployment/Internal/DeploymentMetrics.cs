using Prometheus;

namespace Har.Deployment;

/// <summary>The rollout's Prometheus metrics: weights per version, phase, gate verdicts, rollbacks.</summary>
internal sealed class DeploymentMetrics
{
    private static readonly string[] Phases = Enum.GetNames<RolloutPhase>();
    private readonly Gauge _weight;
    private readonly Gauge _phase;
    private readonly Counter _verdicts;
    private readonly Counter _rollbacks;
    private readonly Counter _rollbackVerifications;
    private readonly Counter _analyses;
    private readonly Gauge _loopFaulted;
    private readonly Gauge _leader;
    private readonly Gauge _clockOffset;
    private readonly HashSet<string> _versions = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private KeyValuePair<string, double>[] _weights = [];
    private RolloutPhase? _currentPhase;
    private volatile bool _loopFaultedNow;

    private readonly CollectorRegistry _registry;

    public DeploymentMetrics(CollectorRegistry? registry)
    {
        _registry = registry ?? Metrics.DefaultRegistry;
        var factory = Metrics.WithCustomRegistry(_registry);
        _weight = factory.CreateGauge("har_rollout_weight_percent", "Share of streams served by each model version, in percent.", "version");
        _phase = factory.CreateGauge("har_rollout_phase", "1 for the rollout's current phase, 0 for the others.", "phase");
        _verdicts = factory.CreateCounter("har_rollout_gate_verdicts_total", "Analysis gate verdicts by gate and verdict.", "gate", "verdict");
        _rollbacks = factory.CreateCounter("har_rollout_rollbacks_total", "Rollbacks, by trigger (automatic or manual).", "trigger");
        _rollbackVerifications = factory.CreateCounter("har_rollout_rollback_verifications_total", "Rollback verifications (smoke windows through the restored version and its gates over the next interval), by result: passed, failed, unmeasurable.", "result");
        _analyses = factory.CreateCounter("har_rollout_analyses_total", "Analysis intervals evaluated, by combined verdict.", "verdict");
        _loopFaulted = factory.CreateGauge("har_rollout_loop_faulted", "1 while the rollout controller's reconcile loop is failing (it retries; traffic stays on the plan in force), else 0.");
        _leader = factory.CreateGauge("har_rollout_leader", "1 while this replica drives rollouts (holds the controller lease of a fleet; always in one process), else 0.");
        _clockOffset = factory.CreateGauge("har_fleet_clock_offset_seconds", "This replica's clock minus the fleet database's, measured at each heartbeat (a fleet only): the audit records, analysis times and durations a replica writes carry its own clock.", new GaugeConfiguration { SuppressInitialValue = true });
        // Every trigger and result exported from the start (at 0): increase() needs a sample before the first event, so an
        // alert on rollbacks or failed verifications would otherwise miss the first one after each start.
        foreach (var trigger in (ReadOnlySpan<string>)["automatic", "manual"])
        {
            _rollbacks.WithLabels(trigger);
        }

        foreach (var result in (ReadOnlySpan<string>)["passed", "failed", "unmeasurable"])
        {
            _rollbackVerifications.WithLabels(result);
        }

        foreach (var verdict in (ReadOnlySpan<GateVerdict>)[GateVerdict.Pass, GateVerdict.Fail, GateVerdict.Inconclusive, GateVerdict.Unmeasurable])
        {
            _analyses.WithLabels(Name(verdict));
        }

        DeploymentMeter.Track(this);
    }

    /// <summary>Gets the current weight per version (for the <see cref="DeploymentMeter"/> gauges).</summary>
    public KeyValuePair<string, double>[] Weights => Volatile.Read(ref _weights);

    /// <summary>Gets the current phase, or <see langword="null"/> before the first rollout.</summary>
    public RolloutPhase? Phase
    {
        get
        {
            lock (_lock)
            {
                return _currentPhase;
            }
        }
    }

    /// <summary>Gets whether the reconcile loop is failing.</summary>
    public bool LoopFaulted => _loopFaultedNow;

    public void SetPhase(RolloutPhase phase)
    {
        lock (_lock)
        {
            _currentPhase = phase;
        }

        var current = phase.ToString();
        foreach (var p in Phases)
        {
            _phase.WithLabels(p).Set(p == current ? 1 : 0);
        }
    }

    public void SetWeights(string stable, string? candidate, double candidatePercent)
    {
        lock (_lock)
        {
            foreach (var v in _versions)
            {
                if (v != stable && v != candidate)
                {
                    _weight.RemoveLabelled(v);
                }
            }

            _versions.Clear();
            _versions.Add(stable);
            _weight.WithLabels(stable).Set(100 - candidatePercent);
            if (candidate is not null)
            {
                _versions.Add(candidate);
                _weight.WithLabels(candidate).Set(candidatePercent);
            }

            Volatile.Write(ref _weights, candidate is null
                ? [new(stable, 100 - candidatePercent)]
                : [new(stable, 100 - candidatePercent), new(candidate, candidatePercent)]);
        }
    }

    public void Analysis(AnalysisResult result)
    {
        _analyses.WithLabels(Name(result.Verdict)).Inc();
        DeploymentMeter.Analyses.Add(1, new KeyValuePair<string, object?>("verdict", Name(result.Verdict)));
        foreach (var gate in result.Gates)
        {
            _verdicts.WithLabels(gate.Gate, Name(gate.Verdict)).Inc();
            DeploymentMeter.Verdicts.Add(1, new("gate", gate.Gate), new("verdict", Name(gate.Verdict)));
        }
    }

    public void SetLoopFaulted(bool faulted)
    {
        _loopFaultedNow = faulted;
        _loopFaulted.Set(faulted ? 1 : 0);
    }

    public void SetLeader(bool leader) => _leader.Set(leader ? 1 : 0);

    /// <summary>
    /// Reads leadership at every scrape (a fleet): set only after each reconcile, a replica whose reconcile waited on an
    /// unreachable database kept exporting 1 for about 20 s beside the new leader. Held weakly: a disposed controller's
    /// callback does nothing.
    /// </summary>
    public void TrackLeader<T>(T owner, Func<T, bool> isLeader)
        where T : class
    {
        var weak = new WeakReference<T>(owner);
        _registry.AddBeforeCollectCallback(() =>
        {
            if (weak.TryGetTarget(out var target))
            {
                _leader.Set(isLeader(target) ? 1 : 0);
            }
        });
    }

    public void SetClockOffset(TimeSpan offset) => _clockOffset.Set(offset.TotalSeconds);

    public void RollbackVerification(string result) => _rollbackVerifications.WithLabels(result).Inc();

    public void Rollback(bool automatic)
    {
        var trigger = automatic ? "automatic" : "manual";
        _rollbacks.WithLabels(trigger).Inc();
        DeploymentMeter.Rollbacks.Add(1, new KeyValuePair<string, object?>("trigger", trigger));
    }

    private static string Name(GateVerdict verdict) => verdict switch
    {
        GateVerdict.Pass => "pass",
        GateVerdict.Fail => "fail",
        GateVerdict.Inconclusive => "inconclusive",
        _ => "unmeasurable",
    };
}
