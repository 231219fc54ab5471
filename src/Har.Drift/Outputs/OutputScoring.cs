namespace Har.Drift;

/// <summary>Scores current model outputs against an <see cref="OutputReference"/> (see <see cref="OutputVerdict"/>).</summary>
internal static class OutputScoring
{
    public const string ClassMixTest = "class_mix";
    public const string ConfidenceTest = "confidence";
    public const string EntropyTest = "entropy";

    /// <summary>Validates one prediction against the reference (class index in range, finite confidence and entropy).</summary>
    public static void Validate(OutputReference? reference, int predictedClass, float confidence, float entropy)
    {
        if (reference is not null && (uint)predictedClass >= (uint)reference.Labels.Length && predictedClass != OutputReference.OtherActivity)
        {
            throw new ArgumentOutOfRangeException(nameof(predictedClass), predictedClass, $"Predicted class {predictedClass} is outside the profile's {reference.Labels.Length} output labels ({string.Join(", ", reference.Labels)}); pass the class index in the model's label order, or OutputReference.OtherActivity ({OutputReference.OtherActivity}) for an activity the profile's labels lack.");
        }

        if (!float.IsFinite(confidence) || confidence < 0 || confidence > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(confidence), confidence, "The confidence must be the top-class probability, in [0, 1].");
        }

        if (!float.IsFinite(entropy) || entropy < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(entropy), entropy, "The entropy must be a finite, non-negative number (nats).");
        }
    }

    public static OutputVerdict Score(OutputReference reference, DriftScoringOptions options, ReadOnlySpan<int> predictedClass, ReadOnlySpan<float> confidence, ReadOnlySpan<float> entropy, IReadOnlyList<DriftAlarm?>? alarms = null)
    {
        var n = predictedClass.Length;
        if (alarms is not null && alarms.Count != n)
        {
            throw new ArgumentException($"Got {n} predictions and {alarms.Count} input alarms; expected one alarm per prediction (the alarm of its device when it was made, null where none).", nameof(alarms));
        }

        if (confidence.Length != n || entropy.Length != n)
        {
            throw new ArgumentException($"Got {n} predicted classes, {confidence.Length} confidences and {entropy.Length} entropies; expected one of each per prediction.", nameof(predictedClass));
        }

        var k = reference.Labels.Length;
        var counts = new long[k + 1]; // the last: activities the reference's labels lack (OutputReference.OtherActivity)
        for (var i = 0; i < n; i++)
        {
            Validate(reference, predictedClass[i], confidence[i], entropy[i]);
            counts[Bin(predictedClass[i], k)]++;
        }

        var other = (int)counts[k];
        IReadOnlyList<string> labels = reference.Labels;
        var referenceCounts = reference.ClassCounts;
        if (other > 0)
        {
            // One more class, which the reference never predicted: the class mix sees its share, and the counts stay aligned with the labels.
            labels = [.. reference.Labels, OtherActivityLabel];
            referenceCounts = [.. reference.ClassCounts, 0];
        }
        else
        {
            Array.Resize(ref counts, k);
        }

        if (n < options.MinPredictions)
        {
            return new OutputVerdict(DriftVerdict.Insufficient, labels, n, 0, null, null, null) { OtherActivityPredictions = other };
        }

        var conf = ToDouble(confidence);
        var ent = ToDouble(entropy);
        var nEff = Math.Min(ClassEffectiveSize(predictedClass, counts), Effective(conf, options.MaxLag));
        nEff = Math.Min(nEff, Effective(ent, options.MaxLag));

        double refTotal = 0;
        foreach (var c in reference.ClassCounts)
        {
            refTotal += c;
        }

        // Class mix: Jensen–Shannon distance (effect size) and chi-square homogeneity with the current counts scaled to n_eff.
        var js = CategoricalTests.JensenShannonDistance(referenceCounts, counts);
        var mixP = ChiSquarePValue(referenceCounts, counts, nEff / n);

        // Confidence and entropy: KS D against the reference's sorted samples, p-value at the effective sizes.
        Array.Sort(conf);
        Array.Sort(ent);
        var en = nEff * refTotal / (nEff + refTotal);
        var rounded = Math.Max(1, (int)Math.Round(en, MidpointRounding.ToEven));
        var confD = KolmogorovSmirnov.Statistic(reference.SortedConfidence, conf);
        var entD = KolmogorovSmirnov.Statistic(reference.SortedEntropy, ent);
        var confP = KolmogorovDistribution.Sf(rounded, confD);
        var entP = KolmogorovDistribution.Sf(rounded, entD);

        var adjusted = MultipleTesting.Adjust([mixP, confP, entP], options.Correction);
        var mix = Evidence(ClassMixTest, js, mixP, adjusted[0], options.ClassMixFloor, options.Alpha, referenceCounts, counts);
        var confidenceEvidence = Evidence(ConfidenceTest, confD, confP, adjusted[1], options.OutputKsFloor, options.Alpha, null, null);
        var entropyEvidence = Evidence(EntropyTest, entD, entP, adjusted[2], options.OutputKsFloor, options.Alpha, null, null);
        var drifted = Decides(mix) || Decides(confidenceEvidence) || Decides(entropyEvidence);
        var estimate = AccuracyEstimate.Estimate(reference, confidence, nEff, alarms);
        return new OutputVerdict(drifted ? DriftVerdict.Drifted : DriftVerdict.Stable, labels, n, nEff, mix, confidenceEvidence, entropyEvidence)
        {
            OtherActivityPredictions = other,
            EstimatedAccuracy = estimate.Accuracy,
            EstimatedAccuracyMargin = estimate.Margin,
            ReferenceAccuracy = reference.ReferenceAccuracy,
            NamedFaults = [.. estimate.Faults.Select(f => new NamedFaultEstimate(f.Fault.Cause, f.Fault.Channels, f.Fault.Description, f.Fault.Accuracy, 1.96 * f.Fault.StandardError, f.Windows))],
            UnmatchedCauses = [.. estimate.Unmatched.Select(u => u.Cause)],
            UnmatchedPredictions = estimate.Unmatched.Sum(u => u.Windows),
        };
    }

    /// <summary>The class-mix label of the predictions of activities the reference's labels lack.</summary>
    internal const string OtherActivityLabel = "(activities the profile lacks)";

    /// <summary>The count bin of a predicted class: its index, or <paramref name="k"/> for <see cref="OutputReference.OtherActivity"/>.</summary>
    private static int Bin(int predictedClass, int k) => predictedClass == OutputReference.OtherActivity ? k : predictedClass;

    private static bool Decides(TestEvidence e) => e.Significant && e.AboveFloor;

    private static TestEvidence Evidence(string test, double statistic, double p, double adjusted, double floor, double alpha, long[]? referenceCounts, long[]? currentCounts) =>
        new(test, statistic, p, adjusted, floor, adjusted <= alpha, statistic >= floor, null, referenceCounts, currentCounts);

    private static double[] ToDouble(ReadOnlySpan<float> values)
    {
        var result = new double[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            result[i] = values[i];
        }

        return result;
    }

    /// <summary>n_eff of a series (n when it is constant: nothing to discount).</summary>
    private static double Effective(double[] series, int maxLag)
    {
        var first = series[0];
        foreach (var v in series)
        {
            if (v != first)
            {
                return Sketch.EffectiveSize(series, maxLag);
            }
        }

        return series.Length;
    }

    /// <summary>
    /// Effective size of the class sequence: the smallest n_eff of the indicator series of the classes seen (each class
    /// share is the mean of its indicator, whose variance the autocorrelation inflates); n when only one class is seen.
    /// </summary>
    private static double ClassEffectiveSize(ReadOnlySpan<int> predictedClass, long[] counts)
    {
        var n = predictedClass.Length;
        var result = (double)n;
        var indicator = new double[n];
        for (var c = 0; c < counts.Length; c++)
        {
            if (counts[c] == 0 || counts[c] == n)
            {
                continue;
            }

            for (var i = 0; i < n; i++)
            {
                indicator[i] = Bin(predictedClass[i], counts.Length - 1) == c ? 1 : 0;
            }

            result = Math.Min(result, Sketch.EffectiveSize(indicator, int.MaxValue));
        }

        return result;
    }

    /// <summary>Chi-square homogeneity p-value of the 2 × K table with the current counts scaled by <paramref name="scale"/> (no continuity correction).</summary>
    private static double ChiSquarePValue(ReadOnlySpan<long> reference, ReadOnlySpan<long> current, double scale)
    {
        double n = 0, m = 0;
        var used = 0;
        for (var k = 0; k < reference.Length; k++)
        {
            n += reference[k];
            m += current[k] * scale;
            used += reference[k] + current[k] > 0 ? 1 : 0;
        }

        if (n == 0 || m <= 0 || used < 2)
        {
            return 1;
        }

        var total = n + m;
        var stat = 0.0;
        for (var k = 0; k < reference.Length; k++)
        {
            var cur = current[k] * scale;
            var col = reference[k] + cur;
            if (col <= 0)
            {
                continue;
            }

            var er = n * col / total;
            var ec = m * col / total;
            stat += ((reference[k] - er) * (reference[k] - er) / er) + ((cur - ec) * (cur - ec) / ec);
        }

        return CategoricalTests.ChiSquareSf(stat, used - 1);
    }
}
