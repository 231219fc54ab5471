namespace Har.Drift;

/// <summary>Confidence-based performance estimation: the expected accuracy of unlabelled predictions from their confidence.</summary>
internal static class AccuracyEstimate
{
    /// <summary>Equal-width bins of the top-class probability over [0, 1].</summary>
    public const int Bins = 10;

    public static int Bin(float confidence) => Math.Clamp((int)(confidence * Bins), 0, Bins - 1);

    /// <summary>
    /// The expected accuracy of the windows with these confidences: each window counts with the reference's accuracy in
    /// its confidence bin (with one pseudo-window at the bin's own confidence, so a sparse bin leans to the raw
    /// confidence), or with its raw confidence when the reference has no labels. The margin is 1.96 binomial standard
    /// errors at the effective number of windows.
    /// </summary>
    public static (double Accuracy, double Margin) Estimate(OutputReference reference, ReadOnlySpan<float> confidence, double effectiveN)
    {
        if (confidence.IsEmpty)
        {
            return (double.NaN, double.NaN);
        }

        Span<double> perBin = stackalloc double[Bins];
        for (var b = 0; b < Bins; b++)
        {
            var centre = (b + 0.5) / Bins;
            perBin[b] = reference.ReliabilityCounts is { } n && reference.ReliabilityCorrect is { } k
                ? (k[b] + centre) / (n[b] + 1.0)
                : double.NaN;
        }

        double sum = 0, variance = 0;
        foreach (var c in confidence)
        {
            var p = double.IsNaN(perBin[Bin(c)]) ? c : perBin[Bin(c)];
            sum += p;
            variance += p * (1 - p);
        }

        var count = confidence.Length;
        var nEff = effectiveN > 0 ? Math.Min(effectiveN, count) : count;
        var margin = 1.96 * Math.Sqrt(variance / count / nEff);
        return (sum / count, margin);
    }
}
