namespace Har.Inference.Tests.Evaluation;

public sealed class ModelEvaluatorTests
{
    [Theory]
    [InlineData(new[] { -1, -1, 0, 0 }, -1)]
    [InlineData(new[] { 0, 0, 1, 1 }, 0)]
    [InlineData(new[] { 2, 1, 2, -1 }, 2)]
    [InlineData(new[] { 5, 5, 5, -1, -1, -1, 4 }, -1)]
    public void Majority_TiesGoToTheSmallestValue(int[] labels, int expected) =>
        Assert.Equal(expected, ModelEvaluator.Majority(labels, new int[13], 12, 0));

    [Fact]
    public void Evaluate_SyntheticRecordings_MatchesAnIndependentCount()
    {
        using var model = HarModel.Load(Fixture.Short, Fixture.Options());
        var rng = new Random(11);
        var recordings = new List<LabeledRecording>();
        for (var r = 0; r < 3; r++)
        {
            var frames = 150 + (r * 37);
            var labels = new int[frames];
            for (var i = 0; i < frames; i++)
            {
                labels[i] = (i / 15) % 4 == 3 ? -1 : (i / 40 + r) % 12;
            }

            recordings.Add(new LabeledRecording(Fixture.Frames(frames, seed: r + 20), labels));
        }

        var report = ModelEvaluator.Evaluate(model, recordings);

        // Independent: windows at 0, 10, 20 … fully inside, majority by explicit counting, one Predict per window.
        var confusion = new int[12, 12];
        int windows = 0, excluded = 0;
        foreach (var rec in recordings)
        {
            var frames = rec.Frames.ToArray();
            var labels = rec.Labels.ToArray();
            for (var start = 0; start + 20 <= labels.Length; start += 10)
            {
                var groups = labels.Skip(start).Take(20).GroupBy(x => x).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).ToArray();
                var truth = groups[0].Key;
                if (truth < 0)
                {
                    excluded++;
                    continue;
                }

                var predicted = model.Predict(frames.AsSpan(start * 6, 120)).ClassIndex;
                confusion[truth, predicted]++;
                windows++;
            }
        }

        Assert.Equal(windows, report.Windows);
        Assert.Equal(excluded, report.ExcludedWindows);
        var correct = 0;
        for (var i = 0; i < 12; i++)
        {
            correct += confusion[i, i];
            for (var j = 0; j < 12; j++)
            {
                Assert.Equal(confusion[i, j], report.GetConfusion(i, j));
            }
        }

        Assert.Equal((double)correct / windows, report.Accuracy, 12);

        // Macro-F1 over classes present in truth or predictions (the training script's convention).
        var f1s = new List<double>();
        for (var c = 0; c < 12; c++)
        {
            var tp = confusion[c, c];
            var support = Enumerable.Range(0, 12).Sum(j => confusion[c, j]);
            var predictedCount = Enumerable.Range(0, 12).Sum(j => confusion[j, c]);
            if (support == 0 && predictedCount == 0)
            {
                continue;
            }

            var p = predictedCount == 0 ? 0 : (double)tp / predictedCount;
            var r = support == 0 ? 0 : (double)tp / support;
            f1s.Add(p + r == 0 ? 0 : 2 * p * r / (p + r));
        }

        Assert.Equal(f1s.Count, report.MacroF1Classes);
        Assert.Equal(f1s.Average(), report.MacroF1, 12);
    }

    [Fact]
    public void Evaluate_LabelCountMismatch_Throws()
    {
        using var model = HarModel.Load(Fixture.Short, Fixture.Options());
        var ex = Assert.Throws<ArgumentException>(() => ModelEvaluator.Evaluate(model, [new LabeledRecording(new float[60], new int[9])]));
        Assert.Contains("60 values and 9 labels", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_LabelOutOfRange_Throws()
    {
        using var model = HarModel.Load(Fixture.Short, Fixture.Options());
        var labels = new int[30];
        labels[3] = 12;
        var ex = Assert.Throws<ArgumentException>(() => ModelEvaluator.Evaluate(model, [new LabeledRecording(new float[180], labels)]));
        Assert.Contains("label 12; expected -1 (unlabeled) or a class index 0 … 11", ex.Message, StringComparison.Ordinal);
    }
}
