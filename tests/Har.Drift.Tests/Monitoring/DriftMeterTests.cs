using System.Diagnostics.Metrics;
using Prometheus;

namespace Har.Drift.Tests.Monitoring;

public sealed class DriftMeterTests
{
    [Fact]
    public async Task ScoreNow_MeterHarDrift_PublishesThePrometheusNamesWithTags()
    {
        var gauges = new List<(string Name, double Value, Dictionary<string, object?> Tags)>();
        long scorings = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Har.Drift")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            var t = new Dictionary<string, object?>();
            foreach (var tag in tags)
            {
                t[tag.Key] = tag.Value;
            }

            lock (gauges)
            {
                gauges.Add((instrument.Name, value, t));
            }
        });
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (instrument.Name == "har_drift_scorings_total" && tag.Key == "monitor" && (string?)tag.Value == "meter-test")
                {
                    Interlocked.Add(ref scorings, value);
                }
            }
        });
        listener.Start();

        var registry = Metrics.NewCustomRegistry();
        using var monitor = new DriftMonitor(Synthetic.Profile(), new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = registry, MonitorName = "meter-test" });
        monitor.Append(Synthetic.Recording(45, 1000));
        var report = monitor.ScoreNow();
        listener.RecordObservableInstruments();

        Assert.Equal(1, Interlocked.Read(ref scorings));

        // The scoring's duration: one measurement on the Meter, one observation in the Prometheus histogram.
        using var text = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(text, TestContext.Current.CancellationToken);
        Assert.Contains("har_drift_scoring_seconds_count{monitor=\"meter-test\"} 1", System.Text.Encoding.UTF8.GetString(text.ToArray()), StringComparison.Ordinal);
        lock (gauges)
        {
            var duration = Assert.Single(gauges, g => g.Name == "har_drift_scoring_seconds" && (string?)g.Tags["monitor"] == "meter-test");
            Assert.True(duration.Value > 0, $"scoring took {duration.Value} s");
            var score = Assert.Single(gauges, g => g.Name == "har_drift_score" && (string?)g.Tags["monitor"] == "meter-test" && (string?)g.Tags["channel"] == "ax");
            Assert.Equal(report.Channels[0].Score, score.Value);
            Assert.Contains(gauges, g => g.Name == "har_drift_pvalue" && (string?)g.Tags["monitor"] == "meter-test" && (string?)g.Tags["test"] == "psi");
        }
    }

    [Fact]
    public void Dispose_Monitor_ItsGaugesLeaveTheMeter()
    {
        var names = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Har.Drift")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((instrument, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                // The gauges (observable); the scoring's duration was recorded once, before the dispose.
                if (instrument.IsObservable && tag.Key == "monitor" && (string?)tag.Value == "disposed-test")
                {
                    lock (names)
                    {
                        names.Add(instrument.Name);
                    }
                }
            }
        });
        listener.Start();
        var monitor = new DriftMonitor(Synthetic.Profile(), new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = Metrics.NewCustomRegistry(), MonitorName = "disposed-test" });
        monitor.Append(Synthetic.Recording(46, 1000));
        monitor.ScoreNow();
        monitor.Dispose();

        listener.RecordObservableInstruments();
        lock (names)
        {
            Assert.Empty(names);
        }
    }
}
