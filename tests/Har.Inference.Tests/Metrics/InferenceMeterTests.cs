using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Time.Testing;

namespace Har.Inference.Tests.Metrics;

public sealed class InferenceMeterTests
{
    [Fact]
    public void Meter_HarInference_PublishesThePrometheusNamesForModelsAndStreams()
    {
        var seen = new ConcurrentDictionary<string, double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Har.Inference")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var tag in tags)
            {
                if ((tag.Key == "model" && tag.Value is "1.2.0") || (tag.Key == "reason" && tag.Value is "idle" or "window_limit") || (tag.Key == "geometry" && tag.Value is "7x3x1"))
                {
                    seen.AddOrUpdate(instrument.Name, value, (_, v) => v + value);
                }
            }
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<int>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();

        // A model (metrics on, in a registry of its own) scores three windows.
        using (var model = HarModel.Load(Fixture.HugeLogits, Fixture.Options(o =>
        {
            o.EnableMetrics = true;
            o.MetricsRegistry = Prometheus.Metrics.NewCustomRegistry();
        })))
        {
            model.Predict(Fixture.Frames(600), new float[36], new Prediction[3]);
            listener.RecordObservableInstruments();
        }

        // A windower with an odd geometry: one stream, one refused append, one idle eviction by the timer.
        var time = new FakeTimeProvider();
        using (var windower = new StreamWindower(7, 3, 1, new StreamWindowerOptions { MaxStreams = 3, MaxWindowsPerAppend = 1, IdleTimeout = TimeSpan.FromSeconds(4) }, time))
        {
            windower.Append("s", [1, 2]);
            Assert.Throws<WindowLimitExceededException>(() => windower.Append("s", new float[20]));
            listener.RecordObservableInstruments();
            time.Advance(TimeSpan.FromSeconds(5));
        }

        Assert.Equal(1, seen["har_inference_requests_total"]);
        Assert.Equal(3, seen["har_inference_windows_total"]);
        Assert.Equal(3, seen["har_inference_batch_size"]);
        Assert.True(seen.ContainsKey("har_inference_latency_seconds"));
        Assert.True(seen["har_model_memory_bytes"] > 0);
        Assert.True(seen.ContainsKey("har_model_confidence") && seen.ContainsKey("har_model_entropy"));
        Assert.Equal(1, seen["har_inference_streams"]);
        Assert.Equal(3, seen["har_inference_stream_capacity"]);
        Assert.True(seen["har_inference_stream_refusals_total"] >= 1);
        Assert.True(seen["har_inference_stream_evictions_total"] >= 1);
    }
}
