namespace Har.Inference.Tests.Models;

/// <summary>
/// A model that also reads the frames before each window, served through <see cref="StreamWindower"/> and
/// <see cref="HarModel"/>: the analytic fixture tiny-context-1.0.0.onnx (Fixtures/make_fixtures.py) reports in its
/// outputs which frames it was fed, z[i] = ln(p[i] / p[11]): z0 = 10 · mean of the context's normalised ax, z1 = the
/// same over the labelled window, z2 = 10 · the first context frame's, z3 = 10 · the first labelled frame's.
/// </summary>
public sealed class ContextModelTests
{
    private const float Mean = 0.8f;
    private const float Std = 0.4f;

    private static string ContextModel => Fixture.Model("tiny-context-1.0.0.onnx");

    /// <summary>A stream whose ax is a slow ramp (so every frame is told apart), other channels constant.</summary>
    private static float[] Ramp(int frames)
    {
        var data = new float[frames * 6];
        for (var f = 0; f < frames; f++)
        {
            data[f * 6] = 0.5f + (0.001f * f);
            data[(f * 6) + 1] = 0.1f;
        }

        return data;
    }

    /// <summary>The fixture's z from the stream, computed here from its definition: frames before the stream are its first frame.</summary>
    private static double[] ExpectedZ(float[] stream, long start)
    {
        double U(long f) => (stream[(int)Math.Max(0, f) * 6] - Mean) / Std;
        double context = 0, labelled = 0;
        for (var t = 0; t < 200; t++)
        {
            context += U(start - 200 + t);
            labelled += U(start + t);
        }

        return [10 * context / 200, 10 * labelled / 200, 10 * U(start - 200), 10 * U(start)];
    }

    private static double[] ObservedZ(ReadOnlySpan<float> p) =>
        [Math.Log(p[0] / p[11]), Math.Log(p[1] / p[11]), Math.Log(p[2] / p[11]), Math.Log(p[3] / p[11])];

    [Fact]
    public void Load_ReadsTheContextFromTheCard()
    {
        using var model = HarModel.Load(ContextModel, Fixture.Options());

        Assert.Equal(200, model.Card.WindowLength);
        Assert.Equal(200, model.Card.ContextFrames);
        Assert.Equal(400, model.Card.InputFrames);
        Assert.Equal(400 * 6, model.WindowValues);
    }

    [Fact]
    public void StreamPredictions_AreMadeOnTheContextThenTheWindow_FirstFrameRepeatedBeforeTheStream()
    {
        using var model = HarModel.Load(ContextModel, Fixture.Options());
        using var windower = new StreamWindower(model.Card);
        var stream = Ramp(750);

        // Appended in uneven chunks, as a device sends them.
        var seen = 0;
        var position = 0;
        foreach (var chunk in new[] { 37, 250, 1, 199, 263 })
        {
            var windows = windower.Append("dev", stream.AsSpan(position * 6, chunk * 6));
            var predictions = model.Predict(windows);
            for (var w = 0; w < windows.Count; w++)
            {
                var start = windows.GetStartFrame(w);
                Assert.Equal(seen * 100L, start);
                var expected = ExpectedZ(stream, start);
                var observed = ObservedZ(predictions[w].Probabilities.Span);
                for (var i = 0; i < 4; i++)
                {
                    Assert.True(Math.Abs(expected[i] - observed[i]) < 1e-3, $"window {start}: z{i} is {observed[i]}, expected {expected[i]}");
                }

                seen++;
            }

            position += chunk;
        }

        // The labelled windows are those of a model without context: ⌊(750 − 200) / 100⌋ + 1.
        Assert.Equal(6, seen);
    }

    [Fact]
    public void WholeWindow_OfTheWrongLength_IsRefusedSayingHowTheFramesSplit()
    {
        using var model = HarModel.Load(ContextModel, Fixture.Options());

        var ex = Assert.Throws<ArgumentException>(() => model.Predict(new float[200 * 6]));

        Assert.Contains("expects 2400 (400 frames: 200 frames of context, then the 200-frame window the prediction labels × 6 channels)", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(200, 0)] // a plain model's windows: no context at all
    [InlineData(400, 0)] // as many values, but no context: 400 frames labelled, not 200 after 200
    [InlineData(300, 100)] // less context than the model reads
    public void StreamWindowsWithoutTheContextItReads_AreRefused(int windowFrames, int context)
    {
        using var model = HarModel.Load(ContextModel, Fixture.Options());
        using var windower = new StreamWindower(windowFrames, 100, 6, contextFrames: context);
        var frames = Ramp(600);

        var ex = Assert.Throws<ArgumentException>(() => model.Predict(windower.Append("dev", frames)));

        Assert.Contains($"({windowFrames} frames, {context} of them context) do not fit model tiny-context@1.0.0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StreamWindowsWithMoreContext_AreReadFromTheirLastFrames()
    {
        using var model = HarModel.Load(ContextModel, Fixture.Options());
        using var exact = new StreamWindower(model.Card);
        using var longer = new StreamWindower(model.Card, new StreamWindowerOptions { ContextFrames = 350 });
        var stream = Ramp(700);

        var expected = model.Predict(exact.Append("dev", stream));
        var got = model.Predict(longer.Append("dev", stream));

        Assert.Equal(expected.Length, got.Length);
        for (var w = 0; w < got.Length; w++)
        {
            Assert.Equal(expected[w].Probabilities.ToArray(), got[w].Probabilities.ToArray());
        }
    }

    [Fact]
    public void Evaluate_LabelsEachWindowByItsLabelledSpan_NotItsContext()
    {
        using var model = HarModel.Load(ContextModel, Fixture.Options());

        // 600 frames: class 5 for frames 0..299, class 7 after. Windows start at 0, 100 … 400; a window's truth is the
        // majority of its 200 labelled frames, never of the context before it.
        var labels = new int[600];
        for (var f = 0; f < 600; f++)
        {
            labels[f] = f < 300 ? 5 : 7;
        }

        var report = ModelEvaluator.Evaluate(model, [new LabeledRecording(Ramp(600), labels)]);

        // Windows [0,200) [100,300): 5; [200,400): a 100/100 tie, to the smaller, 5; [300,500) [400,600): 7.
        var perTruth = new int[12];
        for (var t = 0; t < 12; t++)
        {
            for (var p = 0; p < 12; p++)
            {
                perTruth[t] += report.GetConfusion(t, p);
            }
        }

        Assert.Equal(5, report.Windows);
        Assert.Equal(3, perTruth[5]);
        Assert.Equal(2, perTruth[7]);
    }
}
