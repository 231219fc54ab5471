using System.Collections.Concurrent;
using Prometheus;

namespace Har.Drift;

/// <summary>
/// Metrics of a drift monitor, exported through prometheus-net (the registry of <see cref="DriftMonitorOptions.MetricsRegistry"/>)
/// and through the <see cref="System.Diagnostics.Metrics.Meter"/> <c>Har.Drift</c> (<see cref="DriftMeter"/>) under the same
/// names. Label cardinality is bounded: channel names come from the profile, tests and reasons are fixed sets, and the
/// monitor label is validated; devices are never a label.
/// </summary>
internal sealed class DriftMetrics : IDisposable
{
    /// <summary>The results of a device's lookup in the state store.</summary>
    public static readonly string[] RestoreResults = ["restored", "absent", "other_profile", "failed"];

    private readonly string _monitor;
    private readonly Dictionary<string, Gauge> _gauges = new(StringComparer.Ordinal);
    private readonly Counter _findings;
    private readonly Counter _scorings;
    private readonly Counter _evicted;
    private readonly Counter _unchecked;
    private readonly Counter _unmonitored;
    private readonly Counter _ticksSkipped;
    private readonly Histogram _duration;
    private readonly Counter _stateSaves;
    private readonly Histogram _stateSaveDuration;
    private readonly Counter _stateRestores;

    public DriftMetrics(CollectorRegistry? registry, string monitor)
    {
        var factory = Metrics.WithCustomRegistry(registry ?? Metrics.DefaultRegistry);
        _monitor = monitor;
        foreach (var g in DriftMeter.Gauges)
        {
            _gauges[g.Name] = factory.CreateGauge(g.Name, g.Help, new GaugeConfiguration { LabelNames = ["monitor", .. g.Labels] });
        }

        _findings = factory.CreateCounter(DriftMeter.FindingsTotal, "Sensor findings by kind.", new CounterConfiguration { LabelNames = ["monitor", "kind"] });
        _scorings = factory.CreateCounter(DriftMeter.ScoringsTotal, "Scorings of a current window.", new CounterConfiguration { LabelNames = ["monitor"] });
        _evicted = factory.CreateCounter(DriftMeter.DevicesEvictedTotal, "Per-device monitors evicted, by reason (capacity: the least recently seen device, silent for MinimumIdleForEviction, made room for a new one; idle: nothing for the idle timeout).", new CounterConfiguration { LabelNames = ["monitor", "reason"] });
        _unchecked = factory.CreateCounter(DriftMeter.UncheckedTotal, "Scorings in which a check had no evidence to work with (no still posture, no gait, no earlier minutes of the device, window too short), by check.", new CounterConfiguration { LabelNames = ["monitor", "check"] });
        _unmonitored = factory.CreateCounter(DriftMeter.UnmonitoredTotal, DriftMeter.UnmonitoredHelp, new CounterConfiguration { LabelNames = ["monitor"] });
        _unmonitored.WithLabels(monitor); // exported at 0 from the start, so that an alert on its increase has a series to read
        _ticksSkipped = factory.CreateCounter(DriftMeter.TicksSkippedTotal, DriftMeter.TicksSkippedHelp, new CounterConfiguration { LabelNames = ["monitor"] });
        _ticksSkipped.WithLabels(monitor);
        // 0.5 ms … 4 s: a device's minute takes about 5 ms on a 2-core VM (benchmarks/results/Drift), a loaded host more.
        _duration = factory.CreateHistogram(DriftMeter.ScoringSeconds, DriftMeter.ScoringHelp, new HistogramConfiguration { LabelNames = ["monitor"], Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) });
        _stateSaves = factory.CreateCounter(DriftMeter.StateSavesTotal, DriftMeter.StateSavesHelp, new CounterConfiguration { LabelNames = ["monitor", "result"] });
        _stateSaves.WithLabels(monitor, "failed"); // exported at 0 from the start, so that an alert on its increase has a series to read
        _stateSaveDuration = factory.CreateHistogram(DriftMeter.StateSaveSeconds, DriftMeter.StateSaveHelp, new HistogramConfiguration { LabelNames = ["monitor"], Buckets = Histogram.ExponentialBuckets(0.001, 4, 10) });
        _stateRestores = factory.CreateCounter(DriftMeter.StateRestoresTotal, DriftMeter.StateRestoresHelp, new CounterConfiguration { LabelNames = ["monitor", "result"] });
        foreach (var result in RestoreResults)
        {
            _stateRestores.WithLabels(monitor, result); // exported at 0 from the start, so that an alert on its increase has a series to read
        }

        DriftMeter.Register(this);
    }

    /// <summary>Gets the last value of every gauge series, keyed by (name, first label, second label), for the Meter's observable gauges.</summary>
    internal ConcurrentDictionary<(string Name, string A, string B), double> Values { get; } = new();

    internal string Monitor => _monitor;

    /// <summary>Records one scoring of a single stream (and how long it took): channels, findings, outputs.</summary>
    public void Record(DriftReport report, TimeSpan elapsed)
    {
        Scored(report, elapsed);
        foreach (var c in report.Channels)
        {
            RecordChannel(c);
        }

        if (report.Outputs is { } o)
        {
            RecordOutputs(o);
        }
    }

    /// <summary>Counts one scoring, its duration and its findings.</summary>
    public void Scored(DriftReport report, TimeSpan elapsed)
    {
        _scorings.WithLabels(_monitor).Inc();
        DriftMeter.Scorings.Add(1, new KeyValuePair<string, object?>("monitor", _monitor));
        _duration.WithLabels(_monitor).Observe(elapsed.TotalSeconds);
        DriftMeter.ScoringDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("monitor", _monitor));
        foreach (var note in report.Unchecked)
        {
            var check = CheckName(note);
            _unchecked.WithLabels(_monitor, check).Inc();
            DriftMeter.Unchecked.Add(1, new("monitor", _monitor), new("check", check));
        }

        foreach (var f in report.Findings)
        {
            var kind = f.Kind.ToString();
            _findings.WithLabels(_monitor, kind).Inc();
            DriftMeter.Findings.Add(1, new("monitor", _monitor), new("kind", kind));
        }
    }

    public void RecordChannel(ChannelVerdict c)
    {
        Set(DriftMeter.Score, c.Score, c.Channel);
        Set(DriftMeter.Verdict, (int)c.Verdict, c.Channel);
        Set(DriftMeter.Samples, c.N, c.Channel);
        Set(DriftMeter.EffectiveSamples, c.EffectiveN, c.Channel);
        foreach (var t in (ReadOnlySpan<TestEvidence?>)[c.Ks, c.Psi])
        {
            if (t is not null)
            {
                Set(DriftMeter.Statistic, t.Statistic, c.Channel, t.Test);
                Set(DriftMeter.PValue, t.AdjustedPValue, c.Channel, t.Test);
            }
        }
    }

    /// <summary>The fixed label of a no-evidence note (bounded cardinality).</summary>
    internal static string CheckName(string note) =>
        note.StartsWith("no still posture", StringComparison.Ordinal) ? "still_posture"
        : note.StartsWith("no 8 s of gait", StringComparison.Ordinal) ? "cadence"
        : note == FrameStepCheck.NoEvidenceNote ? "frame_step"
        : note.StartsWith("fewer than", StringComparison.Ordinal) ? "own_history"
        : note.StartsWith("window of", StringComparison.Ordinal) ? "short_window"
        : note.StartsWith("too little", StringComparison.Ordinal) ? "motion_consistency"
        : "other";

    public void RecordOutputs(OutputVerdict o)
    {
        Set(DriftMeter.OutputPredictions, o.Predictions);
        Set(DriftMeter.OutputOtherActivity, o.OtherActivityPredictions);
        if (o.EstimatedAccuracy is { } a && !double.IsNaN(a))
        {
            Set(DriftMeter.EstimatedAccuracy, a);
            Set(DriftMeter.EstimateNamedFaultShare, o.Predictions == 0 ? 0 : o.NamedFaults.Sum(f => f.Predictions) / (double)o.Predictions);
            Set(DriftMeter.EstimateReliable, o.EstimateReliable ? 1 : 0);
        }

        if (o.ReferenceAccuracy is { } r)
        {
            Set(DriftMeter.ReferenceAccuracy, r);
        }
        foreach (var t in (ReadOnlySpan<TestEvidence?>)[o.ClassMix, o.Confidence, o.Entropy])
        {
            if (t is not null)
            {
                Set(DriftMeter.OutputStatistic, t.Statistic, t.Test);
                Set(DriftMeter.OutputPValue, t.AdjustedPValue, t.Test);
                Set(DriftMeter.OutputVerdict, (int)(t.Significant && t.AboveFloor ? DriftVerdict.Drifted : DriftVerdict.Stable), t.Test);
            }
        }
    }

    /// <summary>The causes an alarm can name (every one exported, so a cleared alarm reads 0 rather than a stale series).</summary>
    internal static readonly DriftCause[] AlarmCauses = [.. Enum.GetValues<DriftCause>().Where(c => c != DriftCause.None)];

    public void Devices(int live, int flagged, int alarmed = 0, int[]? alarmedByCause = null)
    {
        Set(DriftMeter.Devices, live);
        Set(DriftMeter.DevicesFlagged, flagged);
        Set(DriftMeter.DevicesAlarmed, alarmed);
        if (alarmedByCause is not null)
        {
            foreach (var cause in AlarmCauses)
            {
                Set(DriftMeter.DevicesAlarmedByCause, alarmedByCause[(int)cause], cause.ToString());
            }
        }
    }

    /// <summary>Publishes, per channel of the profile, how many live devices' latest reports have it Drifted.</summary>
    public void DevicesDrifted(IReadOnlyList<string> channels, int[] drifted)
    {
        for (var c = 0; c < channels.Count; c++)
        {
            Set(DriftMeter.DevicesDrifted, drifted[c], channels[c]);
        }
    }

    public void Capacity(int devices) => Set(DriftMeter.DeviceCapacity, devices);

    public void TickSkipped()
    {
        _ticksSkipped.WithLabels(_monitor).Inc();
        DriftMeter.TicksSkipped.Add(1, new KeyValuePair<string, object?>("monitor", _monitor));
    }

    public void StateSaved(TimeSpan elapsed)
    {
        _stateSaves.WithLabels(_monitor, "saved").Inc();
        _stateSaveDuration.WithLabels(_monitor).Observe(elapsed.TotalSeconds);
        DriftMeter.StateSaves.Add(1, new("monitor", _monitor), new("result", "saved"));
        DriftMeter.StateSaveDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("monitor", _monitor));
    }

    public void StateSaveFailed()
    {
        _stateSaves.WithLabels(_monitor, "failed").Inc();
        DriftMeter.StateSaves.Add(1, new("monitor", _monitor), new("result", "failed"));
    }

    /// <summary>Counts devices looked up in the state store, by result (one of <see cref="RestoreResults"/>).</summary>
    public void StateRestores(string result, int devices)
    {
        if (devices > 0)
        {
            _stateRestores.WithLabels(_monitor, result).Inc(devices);
            DriftMeter.StateRestores.Add(devices, new("monitor", _monitor), new("result", result));
        }
    }

    public void Unmonitored()
    {
        _unmonitored.WithLabels(_monitor).Inc();
        DriftMeter.Unmonitored.Add(1, new KeyValuePair<string, object?>("monitor", _monitor));
    }

    public void Evicted(string reason)
    {
        _evicted.WithLabels(_monitor, reason).Inc();
        DriftMeter.Evicted.Add(1, new("monitor", _monitor), new("reason", reason));
    }

    public void Dispose() => DriftMeter.Unregister(this);

    private void Set(DriftMeter.GaugeSpec spec, double value, string a = "", string b = "")
    {
        var gauge = _gauges[spec.Name];
        var child = spec.Labels.Length switch
        {
            0 => gauge.WithLabels(_monitor),
            1 => gauge.WithLabels(_monitor, a),
            _ => gauge.WithLabels(_monitor, a, b),
        };
        child.Set(value);
        Values[(spec.Name, a, b)] = value;
    }
}
