using Microsoft.ML.OnnxRuntime;

namespace Har.Inference.Tests.Models;

public sealed class HarModelPredictTests
{
    /// <summary>Scores windows with a plain ONNX Runtime session on inputs normalized in double precision: the reference.</summary>
    private static float[][] Reference(string modelPath, float[] windows, int count)
    {
        var card = ModelCard.Load(modelPath);
        var input = new float[windows.Length];
        for (var i = 0; i < input.Length; i++)
        {
            var c = i % card.ChannelCount;
            input[i] = (float)((windows[i] - (double)card.NormalizationMean[c]) / card.NormalizationStd[c]);
        }

        using var session = new InferenceSession(modelPath);
        using var value = OrtValue.CreateTensorValueFromMemory(input, [count, card.WindowLength, card.ChannelCount]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, [session.InputNames[0]], [value], [session.OutputNames[0]]);
        var raw = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var result = new float[count][];
        for (var w = 0; w < count; w++)
        {
            var row = raw.AsSpan(w * card.ClassCount, card.ClassCount).ToArray();
            if (card.Output == ModelOutputKind.Logits)
            {
                var max = row.Max();
                var exp = row.Select(z => Math.Exp(z - max)).ToArray();
                var sum = exp.Sum();
                row = exp.Select(e => (float)(e / sum)).ToArray();
            }

            result[w] = row;
        }

        return result;
    }

    [Theory]
    [InlineData("tiny-probs-1.0.0.onnx")]
    [InlineData("tiny-logits-1.1.0.onnx")]
    public void Predict_Batch_MatchesPlainOnnxRuntimeOnDoubleNormalizedInput(string file)
    {
        var path = Fixture.Model(file);
        using var model = HarModel.Load(path, Fixture.Options(o => o.MaxBatchSize = 8));
        const int n = 21; // more than two full batches
        var windows = Fixture.Frames(200 * n, seed: 5);
        var probabilities = new float[n * 12];
        var predictions = new Prediction[n];

        model.Predict(windows, probabilities, predictions);

        var reference = Reference(path, windows, n);
        for (var w = 0; w < n; w++)
        {
            for (var k = 0; k < 12; k++)
            {
                Assert.Equal(reference[w][k], predictions[w].Probabilities.Span[k], 4);
            }

            var expectedClass = Array.IndexOf(reference[w], reference[w].Max());
            Assert.Equal(expectedClass, predictions[w].ClassIndex);
            Assert.Equal(model.Card.Labels[expectedClass], predictions[w].Label);
            Assert.Equal(reference[w].Max(), predictions[w].Confidence, 4);
            var entropy = -reference[w].Where(p => p > 0).Sum(p => p * Math.Log(p));
            Assert.Equal(entropy, predictions[w].Entropy, 3);
            Assert.True(predictions[w].Probabilities.Span.Overlaps(probabilities), "span path returns slices of the caller's buffer");
        }
    }

    [Fact]
    public void Predict_HugeLogits_GivesFiniteProbabilitiesSummingToOne()
    {
        using var model = HarModel.Load(Fixture.HugeLogits, Fixture.Options());
        var windows = Fixture.Frames(200 * 4, seed: 9);
        var predictions = new Prediction[4];
        model.Predict(windows, new float[48], predictions);

        foreach (var p in predictions)
        {
            Assert.All(p.Probabilities.ToArray(), v => Assert.True(float.IsFinite(v)));
            Assert.Equal(1.0, p.Probabilities.ToArray().Sum(), 4);
        }
    }

    [Theory]
    [InlineData(0f, false)]
    [InlineData(1.0f, true)]
    public void Predict_UncertaintyThreshold_FlagsBelowIt(float threshold, bool uncertain)
    {
        using var model = HarModel.Load(Fixture.Probs, Fixture.Options(o => o.UncertaintyThreshold = threshold));
        var p = model.Predict(Fixture.Frames(200));
        Assert.Equal(uncertain, p.IsUncertain);
    }

    [Fact]
    public void Predict_NotWholeWindows_Throws()
    {
        using var model = HarModel.Load(Fixture.Probs, Fixture.Options());
        var ex = Assert.Throws<ArgumentException>(() => model.Predict(new float[1201], new float[24], new Prediction[2]));
        Assert.Contains("not a whole number of windows; expected a multiple of 1200 (200 frames × 6 channels ax ay az gx gy gz)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Predict_WrongSingleWindowLength_Throws()
    {
        using var model = HarModel.Load(Fixture.Probs, Fixture.Options());
        var ex = Assert.Throws<ArgumentException>(() => model.Predict(new float[600]));
        Assert.Contains("Window holds 600 values", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Predict_NonFiniteWindow_Throws(float bad)
    {
        using var model = HarModel.Load(Fixture.Probs, Fixture.Options());
        var windows = Fixture.Frames(400);
        windows[1300] = bad;
        var ex = Assert.Throws<ArgumentException>(() => model.Predict(windows, new float[24], new Prediction[2]));
        Assert.Contains("Window 1 holds NaN or infinite values", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Predict_DestinationsTooSmall_Throw()
    {
        using var model = HarModel.Load(Fixture.Probs, Fixture.Options());
        var windows = Fixture.Frames(400);
        var p = Assert.Throws<ArgumentException>(() => model.Predict(windows, new float[23], new Prediction[2]));
        Assert.Contains("2 windows × 12 classes need 24", p.Message, StringComparison.Ordinal);
        var q = Assert.Throws<ArgumentException>(() => model.Predict(windows, new float[24], new Prediction[1]));
        Assert.Contains("expected at least 2", q.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Predict_StreamWindows_EqualsPredictingEachWindowCopy()
    {
        using var model = HarModel.Load(Fixture.Short, Fixture.Options());
        var windower = new StreamWindower(model.Card);
        var frames = Fixture.Frames(137, seed: 4);

        var windows = windower.Append("dev", frames);
        var viaStream = model.Predict(windows);

        Assert.Equal(windower.WindowCount(137), viaStream.Length);
        for (var w = 0; w < viaStream.Length; w++)
        {
            var copy = frames.AsSpan(w * 10 * 6, 20 * 6).ToArray();
            Assert.Equal(model.Predict(copy).Probabilities.ToArray(), viaStream[w].Probabilities.ToArray());
        }
    }

    [Fact]
    public async Task Predict_WithObserverAndRegistry_ReportsPredictionsAndReferenceMetricNames()
    {
        var registry = Prometheus.Metrics.NewCustomRegistry();
        var observer = new RecordingObserver();
        using var model = HarModel.Load(Fixture.Probs, Fixture.Options(o =>
        {
            o.EnableMetrics = true;
            o.MetricsRegistry = registry;
            o.Observers.Add(observer);
        }));

        var predictions = new Prediction[3];
        model.Predict(Fixture.Frames(600), new float[36], predictions);

        Assert.Equal(predictions, observer.Seen);
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream);
        var text = System.Text.Encoding.UTF8.GetString(stream.ToArray());
        Assert.Contains("har_inference_requests_total{model=\"1.0.0\",status=\"success\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("har_inference_windows_total{model=\"1.0.0\"} 3", text, StringComparison.Ordinal);
        Assert.Contains("har_inference_latency_seconds_bucket{model=\"1.0.0\",le=\"0.01\"}", text, StringComparison.Ordinal);
        Assert.Contains("har_inference_latency_seconds_bucket{model=\"1.0.0\",le=\"2.5\"}", text, StringComparison.Ordinal);
        Assert.Contains("har_inference_batch_size_bucket{model=\"1.0.0\",le=\"4\"} 1", text, StringComparison.Ordinal);
        var confidence = System.Text.RegularExpressions.Regex.Match(text, "har_model_confidence\\{model=\"1.0.0\"\\} (\\S+)");
        Assert.Equal(predictions.Average(p => (double)p.Confidence), double.Parse(confidence.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 6);
        Assert.Contains("har_model_entropy{model=\"1.0.0\"}", text, StringComparison.Ordinal);
        Assert.Contains($"har_model_memory_bytes{{model=\"1.0.0\"}} {model.MemoryBytes}", text, StringComparison.Ordinal);
    }

    internal sealed class RecordingObserver : IPredictionObserver
    {
        public List<Prediction> Seen { get; } = [];

        public List<Exception> Errors { get; } = [];

        public Action? OnBatch { get; set; }

        public void OnPredictions(ModelCard model, ReadOnlySpan<Prediction> predictions)
        {
            lock (Seen)
            {
                Seen.AddRange(predictions);
            }

            OnBatch?.Invoke();
        }

        public void OnError(ModelCard model, int windows, Exception error)
        {
            lock (Errors)
            {
                Errors.Add(error);
            }
        }
    }
}
