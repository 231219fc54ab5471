using Prometheus;

namespace Har.Drift;

/// <summary>
/// Prometheus metrics of the drift monitor. Label cardinality is bounded: channel names come from the profile,
/// tests are <c>ks</c>/<c>psi</c>, and the monitor label is validated.
/// </summary>
internal sealed class DriftMetrics
{
    private readonly Gauge _score;
    private readonly Gauge _statistic;
    private readonly Gauge _pValue;
    private readonly Gauge _verdict;
    private readonly Gauge _samples;
    private readonly Gauge _effectiveSamples;
    private readonly Counter _findings;
    private readonly Counter _scorings;
    private readonly string _monitor;

    public DriftMetrics(CollectorRegistry? registry, string monitor)
    {
        var factory = Metrics.WithCustomRegistry(registry ?? Metrics.DefaultRegistry);
        _monitor = monitor;
        _score = factory.CreateGauge("har_drift_score", "Drift score per input channel: the Kolmogorov–Smirnov effect size D against the matched reference.", new GaugeConfiguration { LabelNames = ["monitor", "channel"] });
        _statistic = factory.CreateGauge("har_drift_statistic", "Test statistic per channel and test (ks: D, psi: PSI).", new GaugeConfiguration { LabelNames = ["monitor", "channel", "test"] });
        _pValue = factory.CreateGauge("har_drift_pvalue", "Multiple-testing-adjusted p-value per channel and test.", new GaugeConfiguration { LabelNames = ["monitor", "channel", "test"] });
        _verdict = factory.CreateGauge("har_drift_verdict", "Verdict per channel: 0 insufficient, 1 stable, 2 drifted.", new GaugeConfiguration { LabelNames = ["monitor", "channel"] });
        _samples = factory.CreateGauge("har_drift_samples", "Finite samples in the current window per channel.", new GaugeConfiguration { LabelNames = ["monitor", "channel"] });
        _effectiveSamples = factory.CreateGauge("har_drift_effective_samples", "Effective sample size (autocorrelation-aware) of the current window per channel.", new GaugeConfiguration { LabelNames = ["monitor", "channel"] });
        _findings = factory.CreateCounter("har_drift_sensor_findings_total", "Sensor findings by kind.", new CounterConfiguration { LabelNames = ["monitor", "kind"] });
        _scorings = factory.CreateCounter("har_drift_scorings_total", "Scorings of the current window.", new CounterConfiguration { LabelNames = ["monitor"] });
    }

    public void Record(DriftReport report)
    {
        _scorings.WithLabels(_monitor).Inc();
        foreach (var c in report.Channels)
        {
            _score.WithLabels(_monitor, c.Channel).Set(c.Score);
            _verdict.WithLabels(_monitor, c.Channel).Set((int)c.Verdict);
            _samples.WithLabels(_monitor, c.Channel).Set(c.N);
            _effectiveSamples.WithLabels(_monitor, c.Channel).Set(c.EffectiveN);
            foreach (var t in new[] { c.Ks, c.Psi })
            {
                if (t is not null)
                {
                    _statistic.WithLabels(_monitor, c.Channel, t.Test).Set(t.Statistic);
                    _pValue.WithLabels(_monitor, c.Channel, t.Test).Set(t.AdjustedPValue);
                }
            }
        }

        foreach (var f in report.Findings)
        {
            _findings.WithLabels(_monitor, f.Kind.ToString()).Inc();
        }
    }
}
