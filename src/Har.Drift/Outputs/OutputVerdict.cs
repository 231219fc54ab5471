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
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Gets the number of current predictions scored.</summary>
    public int Predictions { get; }

    /// <summary>Gets the effective sample size (autocorrelation-aware) the p-values were computed at.</summary>
    public double EffectiveN { get; }

    /// <summary>Gets the predicted-class-mix evidence (<c>class_mix</c>: statistic = Jensen–Shannon distance, p-value = chi-square homogeneity at the effective n, counts per class), or null when insufficient.</summary>
    public TestEvidence? ClassMix { get; }

    /// <summary>Gets the confidence evidence (<c>confidence</c>: KS D against the reference's confidence), or null when insufficient.</summary>
    public TestEvidence? Confidence { get; }

    /// <summary>Gets the entropy evidence (<c>entropy</c>: KS D against the reference's entropy), or null when insufficient.</summary>
    public TestEvidence? Entropy { get; }

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
        return sb.ToString();
    }
}
