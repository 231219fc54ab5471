using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using Har.Deployment.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Prometheus;

namespace Har.Deployment.Tests.Feedback;

/// <summary><c>har_model_accuracy{model}</c> and <c>har_model_labelled_windows{model}</c> on both metric paths, and the store in DI.</summary>
public sealed class FeedbackMetricsTests
{
    private static readonly string[] Activities = ["WALKING", "SITTING", "STANDING"];

    [Fact]
    public async Task AccuracyAndLabelledWindows_OnPrometheusAndOnTheHarDeploymentMeter()
    {
        var measurements = new ConcurrentBag<(string Instrument, double Value, string? Model)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Har.Deployment" && instrument.Name.StartsWith("har_model_", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            string? model = null;
            foreach (var t in tags)
            {
                model = t.Key == "model" ? t.Value?.ToString() : model;
            }

            measurements.Add((instrument.Name, value, model));
        });
        listener.Start();

        // A model name no other test uses: the meter observes every live store.
        var model = "metrics-" + Guid.NewGuid().ToString("N");
        var registry = Metrics.NewCustomRegistry();
        var store = new FeedbackStore(Activities, 128, 50, _ => null, new FakeTimeProvider(), new FeedbackMetrics(registry));
        store.Record("d1", model, [0, 128, 256, 384], [.. new[] { 0, 0, 1, 0 }.Select(c => TestPrediction.Of(c, Activities[c], model))]);
        Assert.Equal(4, store.Report("d1", "WALKING", 0, 512));

        using var text = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(text, TestContext.Current.CancellationToken);
        var lines = System.Text.Encoding.UTF8.GetString(text.ToArray()).Split('\n');
        Assert.Equal(0.75, Value(lines, $"har_model_accuracy{{model=\"{model}\"}} "));
        Assert.Equal(4, Value(lines, $"har_model_labelled_windows{{model=\"{model}\"}} "));

        listener.RecordObservableInstruments();
        Assert.Contains(measurements, m => m.Instrument == "har_model_accuracy" && m.Model == model && m.Value == 0.75);
        Assert.Contains(measurements, m => m.Instrument == "har_model_labelled_windows" && m.Model == model && m.Value == 4);
    }

    [Fact]
    public async Task AddHarDeployment_RegistersThePipelinesFeedbackStore()
    {
        using var env = new TestRegistry();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(env.Time);
        services.AddHarDeployment(o =>
        {
            o.RegistryPath = env.Registry.Root;
            o.Rollouts.MetricsRegistry = Metrics.NewCustomRegistry();
            o.Serving.MetricsRegistry = Metrics.NewCustomRegistry();
            o.Serving.Model.EnableMetrics = false;
        });
        await using var provider = services.BuildServiceProvider();
        var pipeline = provider.GetRequiredService<ServingPipeline>();
        Assert.Same(pipeline.Feedback, provider.GetRequiredService<FeedbackStore>());
        Assert.Equal(pipeline.Models.GetCard(pipeline.Plan.Stable).Labels, pipeline.Feedback.Activities);
    }

    private static double Value(string[] lines, string prefix) =>
        double.Parse(lines.Single(l => l.StartsWith(prefix, StringComparison.Ordinal))[prefix.Length..], CultureInfo.InvariantCulture);
}
