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
        if (EstimatedAccuracy is { } a)
        {
            sb.Append(inv, $"; estimated accuracy {a:F2} ± {EstimatedAccuracyMargin ?? 0:F2}");
            if (ReferenceAccuracy is { } r)
            {
                sb.Append(inv, $" vs {r:F2} at reference");
            }
        }
        return sb.ToString();
    }
}
