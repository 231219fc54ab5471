namespace Har.Inference;

/// <summary>Per-class scores of an <see cref="EvaluationReport"/>.</summary>
/// <param name="Label">The class name.</param>
/// <param name="Precision">True positives / predicted (0 when nothing was predicted).</param>
/// <param name="Recall">True positives / support (0 when there is no support).</param>
/// <param name="F1">Harmonic mean of precision and recall (0 when both are 0).</param>
/// <param name="Support">Windows whose true class this is.</param>
/// <param name="Predicted">Windows predicted as this class.</param>
/// <param name="IncludedInMacro">Whether the class occurs in the true labels or the predictions, and so counts in <see cref="EvaluationReport.MacroF1"/>.</param>
public readonly record struct ClassScore(string Label, double Precision, double Recall, double F1, int Support, int Predicted, bool IncludedInMacro)
{
    /// <summary>Returns the class's scores on one line.</summary>
    /// <returns>E.g. <c>WALKING precision 0.981 recall 0.975 F1 0.978 (support 400)</c>.</returns>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Label} precision {Precision:0.000} recall {Recall:0.000} F1 {F1:0.000} (support {Support})");
}

/// <summary>Accuracy, macro-F1, per-class scores and the confusion matrix of a model on labelled windows.</summary>
public sealed class EvaluationReport
{
    private readonly int[] _confusion;

    internal EvaluationReport(ModelCard card, int[] confusion, int windows, int excluded)
    {
        Model = card.ToString();
        Labels = card.Labels;
        _confusion = confusion;
        Windows = windows;
        ExcludedWindows = excluded;
        var k = card.ClassCount;
        var scores = new ClassScore[k];
        long correct = 0;
        double f1Sum = 0;
        var included = 0;
        for (var c = 0; c < k; c++)
        {
            var tp = confusion[(c * k) + c];
            correct += tp;
            int support = 0, predicted = 0;
            for (var j = 0; j < k; j++)
            {
                support += confusion[(c * k) + j];
                predicted += confusion[(j * k) + c];
            }

            var precision = predicted > 0 ? (double)tp / predicted : 0;
            var recall = support > 0 ? (double)tp / support : 0;
            var f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
            var present = support > 0 || predicted > 0;
            if (present)
            {
                f1Sum += f1;
                included++;
            }

            scores[c] = new ClassScore(card.Labels[c], precision, recall, f1, support, predicted, present);
        }

        PerClass = scores;
        Accuracy = windows > 0 ? (double)correct / windows : 0;
        MacroF1 = included > 0 ? f1Sum / included : 0;
        MacroF1Classes = included;
    }

    /// <summary>Gets the model's identity (<c>name@version</c>).</summary>
    public string Model { get; }

    /// <summary>Gets the class names, in the order of <see cref="PerClass"/> and the confusion matrix.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Gets the number of labelled windows scored.</summary>
    public int Windows { get; }

    /// <summary>Gets the number of windows left out because their majority label is unlabeled (-1).</summary>
    public int ExcludedWindows { get; }

    /// <summary>Gets the fraction of windows classified correctly.</summary>
    public double Accuracy { get; }

    /// <summary>
    /// Gets the mean F1 over the classes present in the true labels or the predictions (scikit-learn's
    /// <c>f1_score(average="macro")</c> without a labels argument, as the training script computes it).
    /// </summary>
    public double MacroF1 { get; }

    /// <summary>Gets the number of classes averaged in <see cref="MacroF1"/>.</summary>
    public int MacroF1Classes { get; }

    /// <summary>Gets the per-class scores.</summary>
    public IReadOnlyList<ClassScore> PerClass { get; }

    /// <summary>Returns the model, window counts, accuracy and macro-F1 on one line.</summary>
    /// <returns>E.g. <c>har-cnn-bilstm@1.0.0: accuracy 0.928151, macro-F1 0.880517 over 12 classes on 2380 windows (42 excluded)</c>.</returns>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Model}: accuracy {Accuracy:0.000000}, macro-F1 {MacroF1:0.000000} over {MacroF1Classes} classes on {Windows} windows ({ExcludedWindows} excluded)");

    /// <summary>Gets the number of windows of true class <paramref name="trueClass"/> predicted as <paramref name="predictedClass"/>.</summary>
    /// <param name="trueClass">Row: the true class index.</param>
    /// <param name="predictedClass">Column: the predicted class index.</param>
    /// <returns>The count.</returns>
    public int GetConfusion(int trueClass, int predictedClass)
    {
        var k = Labels.Count;
        ArgumentOutOfRangeException.ThrowIfNegative(trueClass);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(trueClass, k);
        ArgumentOutOfRangeException.ThrowIfNegative(predictedClass);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(predictedClass, k);
        return _confusion[(trueClass * k) + predictedClass];
    }
}
