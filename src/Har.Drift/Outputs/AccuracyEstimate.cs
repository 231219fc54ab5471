namespace Har.Drift;

/// <summary>Confidence-based performance estimation: the expected accuracy of unlabelled predictions from their confidence, conditioned on the input faults the drift checks name.</summary>
internal static class AccuracyEstimate
{
    /// <summary>Equal-width bins of the top-class probability over [0, 1].</summary>
    public const int Bins = 10;

    public static int Bin(float confidence) => Math.Clamp((int)(confidence * Bins), 0, Bins - 1);

    /// <summary>The estimate with what it was conditioned on.</summary>
    /// <param name="Accuracy">Expected accuracy of the windows.</param>
    /// <param name="Margin">95 % margin.</param>
    /// <param name="Faults">Per named fault with a reference entry, its entry and the windows estimated with it.</param>
    /// <param name="Unmatched">Named causes (with their channels) the reference holds no accuracy for, with their windows.</param>
    public readonly record struct Result(double Accuracy, double Margin, IReadOnlyList<(FaultAccuracy Fault, int Windows)> Faults, IReadOnlyList<(string Cause, int Windows)> Unmatched);

    /// <summary>
    /// The expected accuracy of the windows with these confidences: each window counts with the reference's accuracy in
    /// its confidence bin (with one pseudo-window at the bin's own confidence, so a sparse bin leans to the raw
    /// confidence), or with its raw confidence when the reference has no labels. The margin is 1.96 binomial standard
    /// errors at the effective number of windows.
    /// </summary>
    public static (double Accuracy, double Margin) Estimate(OutputReference reference, ReadOnlySpan<float> confidence, double effectiveN)
    {
        var r = Estimate(reference, confidence, effectiveN, null);
        return (r.Accuracy, r.Margin);
    }

    /// <summary>
    /// As <see cref="Estimate(OutputReference, ReadOnlySpan{float}, double)"/>, except that a window made while its
    /// device's alarm was raised with a named cause counts with the reference's accuracy under that fault
    /// (<see cref="OutputReference.FindFault"/>): confidence cannot see a model that is confidently wrong on inputs outside
    /// its support, the accuracy measured under the fault can. The margin then also holds the binomial error of the
    /// reference's fault accuracy (the same for every window under that fault, so it adds linearly within a fault and in
    /// quadrature across faults and with the sampling error). A named cause without an entry keeps the confidence-based
    /// estimate for its windows and is reported in <see cref="Result.Unmatched"/>.
    /// </summary>
    public static Result Estimate(OutputReference reference, ReadOnlySpan<float> confidence, double effectiveN, IReadOnlyList<DriftAlarm?>? alarms)
    {
        if (confidence.IsEmpty)
        {
            return new Result(double.NaN, double.NaN, [], []);
        }

        if (alarms is not null && alarms.Count != confidence.Length)
        {
            throw new ArgumentException($"Got {alarms.Count} input alarms for {confidence.Length} predictions; expected one per prediction (null where the device had none).", nameof(alarms));
        }

        Span<double> perBin = stackalloc double[Bins];
        for (var b = 0; b < Bins; b++)
        {
            var centre = (b + 0.5) / Bins;
            perBin[b] = reference.ReliabilityCounts is { } n && reference.ReliabilityCorrect is { } k
                ? (k[b] + centre) / (n[b] + 1.0)
                : double.NaN;
        }

        var faults = new Dictionary<FaultAccuracy, int>(ReferenceEqualityComparer.Instance);
        var unmatched = new Dictionary<string, int>(StringComparer.Ordinal);
        double sum = 0, variance = 0;
        for (var i = 0; i < confidence.Length; i++)
        {
            var c = confidence[i];
            var p = double.IsNaN(perBin[Bin(c)]) ? c : perBin[Bin(c)];
            if (alarms?[i] is { Raised: true, Cause: not DriftCause.None } alarm)
            {
                if (reference.FindFault(alarm.Cause, alarm.Channels) is { } fault)
                {
                    p = fault.Accuracy;
                    faults[fault] = faults.GetValueOrDefault(fault) + 1;
                }
                else
                {
                    var key = alarm.Channels.Count > 0 ? $"{alarm.Cause} ({string.Join(", ", alarm.Channels)})" : alarm.Cause.ToString();
                    unmatched[key] = unmatched.GetValueOrDefault(key) + 1;
                }
            }

            sum += p;
            variance += p * (1 - p);
        }

        var count = confidence.Length;
        var nEff = effectiveN > 0 ? Math.Min(effectiveN, count) : count;
        var sampling = variance / count / nEff;
        var fromReference = 0.0;
        foreach (var (fault, windows) in faults)
        {
            var share = windows / (double)count;
            fromReference += share * share * fault.StandardError * fault.StandardError;
        }

        var margin = 1.96 * Math.Sqrt(sampling + fromReference);
        return new Result(
            sum / count,
            margin,
            [.. faults.OrderByDescending(f => f.Value).Select(f => (f.Key, f.Value))],
            [.. unmatched.OrderByDescending(u => u.Value).Select(u => (u.Key, u.Value))]);
    }
}
