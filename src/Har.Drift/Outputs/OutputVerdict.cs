using System.Text.Json.Serialization;
using System.Globalization;
using System.Text;

namespace Har.Drift;

/// <summary>
/// What the model's own outputs say about drift: the predicted-class mix and the confidence and entropy distributions of
/// the current predictions against the reference's (<see cref="ReferenceProfile.Outputs"/>), with the evidence of each test.
/// </summary>
/// <remarks>
/// The class mix is tested by chi-square homogeneity at the effective sample size (consecutive predictions are
/// autocorrelated) and must also clear a Jensen–Shannon distance floor; confidence and entropy by the two-sample
/// Kolmogorov–Smirnov test at the effective sample size with a KS D floor. The three p-values are corrected together
/// (<see cref="DriftScoringOptions.Correction"/>), as a family of their own, separate from the input channels.
/// </remarks>
public sealed class OutputVerdict
{
    internal OutputVerdict(DriftVerdict verdict, IReadOnlyList<string> labels, int predictions, double effectiveN, TestEvidence? classMix, TestEvidence? confidence, TestEvidence? entropy)
    {
        Verdict = verdict;
        Labels = labels;
        Predictions = predictions;
        EffectiveN = effectiveN;
        ClassMix = classMix;
        Confidence = confidence;
        Entropy = entropy;
    }

    /// <summary>Gets the verdict: <see cref="DriftVerdict.Drifted"/> when any output test is significant and above its floor.</summary>
    public DriftVerdict Verdict { get; }

    /// <summary>Gets the class labels, in the order of the class counts of <see cref="ClassMix"/>.</summary>
    [JsonInclude]
    internal IReadOnlyList<string> Labels { get; }

    /// <summary>Gets the number of current predictions scored.</summary>
    public int Predictions { get; }

    /// <summary>Gets the effective sample size (autocorrelation-aware) the p-values were computed at.</summary>
    [JsonInclude]
    internal double EffectiveN { get; }

    /// <summary>Gets the predicted-class-mix evidence (<c>class_mix</c>: statistic = Jensen–Shannon distance, p-value = chi-square homogeneity at the effective n, counts per class), or null when insufficient.</summary>
    public TestEvidence? ClassMix { get; }

    /// <summary>
    /// Gets the number of predictions of activities the reference's labels lack (<see cref="OutputReference.OtherActivity"/>:
    /// a model version with a class the profile's model did not have). They are in the class mix as one more class, which
    /// the reference never predicted; rebuild the profile's output reference with that model to judge its class mix.
    /// </summary>
    public int OtherActivityPredictions { get; internal init; }

    /// <summary>Gets the confidence evidence (<c>confidence</c>: KS D against the reference's confidence), or null when insufficient.</summary>
    public TestEvidence? Confidence { get; }

    /// <summary>Gets the entropy evidence (<c>entropy</c>: KS D against the reference's entropy), or null when insufficient.</summary>
    public TestEvidence? Entropy { get; }

    /// <summary>
    /// Gets the model's estimated accuracy on the current predictions from their confidence (confidence-based performance
    /// estimation against the reference's reliability, <see cref="OutputReference.WithAccuracy"/>; the raw mean confidence
    /// when the reference has no labels), or null when there were too few predictions.
    /// </summary>
    public double? EstimatedAccuracy { get; internal init; }

    /// <summary>Gets the 95 % margin of <see cref="EstimatedAccuracy"/> (binomial, at the effective n), or null.</summary>
    public double? EstimatedAccuracyMargin { get; internal init; }

    /// <summary>Gets the model's measured accuracy on the labelled reference windows, or null when the reference has no labels.</summary>
    public double? ReferenceAccuracy { get; internal init; }

    /// <summary>
    /// Gets the input faults the drift checks named (a raised <see cref="DriftAlarm"/> of the predictions' device) for
    /// which the reference holds the model's accuracy under that fault (<see cref="OutputReference.WithFaultAccuracy(InputFault, ReadOnlySpan{int}, ReadOnlySpan{int})"/>):
    /// the predictions made under them are estimated with that accuracy, not with their confidence. Empty when none.
    /// </summary>
    public IReadOnlyList<NamedFaultEstimate> NamedFaults { get; internal init; } = [];

    /// <summary>Gets the causes the drift checks named for which the reference holds no accuracy (e.g. <c>Saturation (gx)</c>), the predictions made under them estimated from their confidence alone.</summary>
    public IReadOnlyList<string> UnmatchedCauses { get; internal init; } = [];

    /// <summary>Gets the number of predictions made under a named cause the reference holds no accuracy for (<see cref="UnmatchedCauses"/>).</summary>
    public int UnmatchedPredictions { get; internal init; }

    /// <summary>
    /// Gets a value indicating whether <see cref="EstimatedAccuracy"/> can be trusted: false when some predictions were made
    /// while the input checks named a cause the reference holds no accuracy for (<see cref="UnmatchedCauses"/>), since a
    /// model's confidence does not track its accuracy on inputs outside its support.
    /// </summary>
    public bool EstimateReliable => UnmatchedPredictions == 0;

    /// <summary>Returns a one-line summary, e.g. <c>outputs Drifted: class mix JS 0.31 (floor 0.10, p 1e-6), confidence D 0.08 …, n 500 (n_eff 120)</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"outputs {Verdict}");
        if (ClassMix is { } m)
        {
            sb.Append(inv, $": class mix JS {m.Statistic:F3} (floor {m.Floor:F3}, adj. p {m.AdjustedPValue:G3})");
        }

        if (Confidence is { } c)
        {
            sb.Append(inv, $", confidence KS D {c.Statistic:F3} (floor {c.Floor:F3}, adj. p {c.AdjustedPValue:G3})");
        }

        if (Entropy is { } e)
        {
            sb.Append(inv, $", entropy KS D {e.Statistic:F3} (floor {e.Floor:F3}, adj. p {e.AdjustedPValue:G3})");
        }

        sb.Append(inv, $", n {Predictions} (n_eff {EffectiveN:F0})");
        if (OtherActivityPredictions > 0)
        {
            sb.Append(inv, $", {OtherActivityPredictions} ({100.0 * OtherActivityPredictions / Predictions:F1} %) of activities the profile lacks");
        }

        if (EstimatedAccuracy is { } a)
        {
            sb.Append("; ").Append(AccuracyText(a));
        }

        return sb.ToString();
    }

    /// <summary>
    /// E.g. <c>estimated accuracy 0.21 ± 0.03 under the named fault gyroscope in deg/s (reference 0.93)</c>, or, with some
    /// predictions under named faults, <c>estimated accuracy 0.62 ± 0.02 (40 % of predictions under the named fault …)</c>.
    /// </summary>
    private string AccuracyText(double a)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"estimated accuracy {a:F2} ± {EstimatedAccuracyMargin ?? 0:F2}");
        var reference = ReferenceAccuracy is { } r ? string.Create(inv, $"{r:F2}") : null;
        var conditioned = NamedFaults.Sum(f => f.Predictions);
        if (NamedFaults.Count == 1 && conditioned == Predictions)
        {
            var f = NamedFaults[0];
            sb.Append(inv, $" under the named fault {f.Description}{(reference is null ? string.Empty : $" (reference {reference})")}");
        }
        else
        {
            if (conditioned > 0)
            {
                var faults = string.Join(", ", NamedFaults.Select(f => string.Create(inv, $"{f.Description} {f.ReferenceAccuracy:F2}")));
                sb.Append(inv, $" ({100.0 * conditioned / Predictions:F0} % of predictions under named faults: {faults})");
            }

            if (reference is not null)
            {
                sb.Append(inv, $" vs {reference} at reference");
            }
            else
            {
                // Found from outside: 0.93 was printed for a model measured at 0.884, with nothing saying it was the raw
                // mean confidence (a profile built with a model but without labelled accuracy subjects).
                sb.Append(" (the mean confidence: the reference holds no labelled accuracy to calibrate it against: OutputReference.WithAccuracy, or har drift profile --accuracy-subjects)");
            }
        }

        if (!EstimateReliable)
        {
            sb.Append(inv, $"; unreliable: {100.0 * UnmatchedPredictions / Predictions:F0} % of predictions were made while the input checks named {string.Join(", ", UnmatchedCauses)}, for which the reference holds no accuracy (confidence does not track accuracy under an input fault)");
        }

        return sb.ToString();
    }
}

/// <summary>The accuracy of the predictions made under one named input fault, as measured on the reference (see <see cref="OutputVerdict.NamedFaults"/>).</summary>
public sealed class NamedFaultEstimate
{
    internal NamedFaultEstimate(DriftCause cause, IReadOnlyList<string> channels, string description, double referenceAccuracy, double margin, int predictions) =>
        (Cause, Channels, Description, ReferenceAccuracy, Margin, Predictions) = (cause, channels, description, referenceAccuracy, margin, predictions);

    /// <summary>Gets the cause the drift checks named.</summary>
    public DriftCause Cause { get; }

    /// <summary>Gets the channels it was named on (empty for the whole stream).</summary>
    public IReadOnlyList<string> Channels { get; }

    /// <summary>Gets the fault, e.g. <c>gyroscope in deg/s</c>.</summary>
    public string Description { get; }

    /// <summary>Gets the model's accuracy on the labelled reference windows with the fault applied.</summary>
    public double ReferenceAccuracy { get; }

    /// <summary>Gets the 95 % binomial margin of <see cref="ReferenceAccuracy"/>.</summary>
    public double Margin { get; }

    /// <summary>Gets the current predictions estimated with it.</summary>
    public int Predictions { get; }

    /// <inheritdoc/>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Description}: accuracy {ReferenceAccuracy:F2} ± {Margin:F2} on {Predictions} predictions");
}
