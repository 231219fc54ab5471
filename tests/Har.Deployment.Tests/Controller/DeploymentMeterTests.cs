using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Controller;

/// <summary>The Har.Deployment meter: the Prometheus metrics' names, recorded where they are, for OpenTelemetry users.</summary>
public sealed class DeploymentMeterTests : IDisposable
{
    private readonly TestRegistry _env = new();

    public void Dispose() => _env.Dispose();

    [Fact]
    public async Task Meter_AfterAFailedInterval_RecordsVerdictsRollbackWindowsAndObservesWeightsAndPhase()
    {
        var measurements = new ConcurrentBag<(string Instrument, double Value, Dictionary<string, string?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Har.Deployment")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
            where T : struct
        {
            var copy = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var t in tags)
            {
                copy[t.Key] = t.Value?.ToString();
            }

            measurements.Add((instrument.Name, Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture), copy));
        }

        listener.SetMeasurementEventCallback<long>(Record);
        listener.SetMeasurementEventCallback<int>(Record);
        listener.SetMeasurementEventCallback<double>(Record);
        listener.Start();

        await using var c = await _env.OpenAsync();
        await c.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try"));
        listener.RecordObservableInstruments();
        Assert.Contains(measurements, m => m.Instrument == "har_rollout_weight_percent" && m.Tags["version"] == "1.1.0" && m.Value > 0);
        Assert.Contains(measurements, m => m.Instrument == "har_rollout_phase" && m.Tags["phase"] == "Progressing" && m.Value == 1);

        var served = await _env.PredictAsync("meter-device", new float[200 * 6]);
        Assert.Contains(measurements, m => m.Instrument == "har_serving_windows_total" && m.Tags["version"] == served.ModelVersion && m.Tags["role"] == "served" && m.Value == 1);

        // Failed intervals until the failure threshold rolls the candidate back (a handful at most).
        var s = await Traffic.IntervalAsync(_env, c, 400, healthy: false);
        for (var i = 0; i < 5 && s.Phase != RolloutPhase.RolledBack; i++)
        {
            s = await Traffic.IntervalAsync(_env, c, 400, healthy: false);
        }

        Assert.Equal(RolloutPhase.RolledBack, s.Phase);

        Assert.Contains(measurements, m => m.Instrument == "har_rollout_analyses_total" && m.Tags["verdict"] == "fail");
        Assert.Contains(measurements, m => m.Instrument == "har_rollout_gate_verdicts_total" && m.Tags["gate"] == "error-rate" && m.Tags["verdict"] == "fail");
        Assert.Contains(measurements, m => m.Instrument == "har_rollout_rollbacks_total" && m.Tags["trigger"] == "automatic");
    }
}
