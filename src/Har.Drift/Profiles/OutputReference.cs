using System.Globalization;
using System.Text.Json.Serialization;

namespace Har.Drift;

/// <summary>
/// The model-output part of a reference profile: the predicted-class mix and the distributions of confidence and entropy
/// of the model's own predictions on the reference data. Output drift (<see cref="OutputVerdict"/>) compares current
/// predictions with it. Build it with <see cref="FromPredictions"/> and attach it with <see cref="ReferenceProfile.WithOutputs"/>.
/// </summary>
public sealed class OutputReference
{
    /// <summary>
    /// The predicted class to pass for an activity the reference's labels lack: a model version that predicts a class the
    /// profile's model did not have (a retrain that added <c>RUNNING</c>). Output drift counts such predictions as one more
    /// class, which the reference never predicted (so enough of them drift the class mix), and names how many there were
    /// (<see cref="OutputVerdict.OtherActivityPredictions"/>); their windows still count for input drift.
    /// </summary>
    public const int OtherActivity = -1;

    [JsonConstructor]
    internal OutputReference(string[] labels, long[] classCounts, double[] sortedConfidence, double[] sortedEntropy, long[]? reliabilityCounts = null, long[]? reliabilityCorrect = null, FaultAccuracy[]? faultAccuracies = null)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classCounts);
        ArgumentNullException.ThrowIfNull(sortedConfidence);
        ArgumentNullException.ThrowIfNull(sortedEntropy);
        if (classCounts.Length != labels.Length || sortedConfidence.Length == 0 || sortedEntropy.Length == 0)
        {
            throw new ArgumentException($"The output reference has {labels.Length} labels, {classCounts.Length} class counts, {sortedConfidence.Length} confidences and {sortedEntropy.Length} entropies; expected one count per label and non-empty samples.", nameof(classCounts));
        }

        Labels = labels;
        ClassCounts = classCounts;
        SortedConfidence = sortedConfidence;
        SortedEntropy = sortedEntropy;
        ReliabilityCounts = reliabilityCounts;
        ReliabilityCorrect = reliabilityCorrect;
        FaultAccuracies = faultAccuracies;
    }

    /// <summary>Gets the model's accuracy on the labelled reference windows under each standard input fault (<see cref="WithFaultAccuracy(InputFault, ReadOnlySpan{int}, ReadOnlySpan{int})"/>); null when not measured (profiles built before it existed).</summary>
    [JsonInclude]
    internal FaultAccuracy[]? FaultAccuracies { get; }

    /// <summary>Gets, per confidence bin (<see cref="AccuracyEstimate.Bins"/> equal bins of the top-class probability), the labelled reference windows; null without labels.</summary>
    [JsonInclude]
    internal long[]? ReliabilityCounts { get; }

    /// <summary>Gets, per confidence bin, the labelled reference windows the model got right; null without labels.</summary>
    [JsonInclude]
    internal long[]? ReliabilityCorrect { get; }

    /// <summary>Gets the model's measured accuracy on the labelled reference windows (<see cref="WithAccuracy"/>), or null without labels.</summary>
    [JsonIgnore]
    internal double? ReferenceAccuracy => ReliabilityCounts is { } n && ReliabilityCorrect is { } k && n.Sum() > 0 ? (double)k.Sum() / n.Sum() : null;

    /// <summary>
    /// Returns a copy that also knows how often the model is right at each confidence on labelled reference windows, so
    /// that the accuracy on unlabelled current windows can be estimated from the model's confidence alone
    /// (confidence-based performance estimation, as NannyML's CBPE: each window counts with the reference accuracy at its
    /// confidence, so a model that is over- or under-confident on the reference is corrected).
    /// </summary>
    /// <param name="predictedClass">Predicted class per labelled reference window (data the model was not trained on).</param>
    /// <param name="confidence">Top-class probability per window.</param>
    /// <param name="trueClass">True class per window, in the model's label order.</param>
    /// <returns>A new output reference.</returns>
    public OutputReference WithAccuracy(ReadOnlySpan<int> predictedClass, ReadOnlySpan<float> confidence, ReadOnlySpan<int> trueClass)
    {
        if (predictedClass.Length != confidence.Length || predictedClass.Length != trueClass.Length || predictedClass.IsEmpty)
        {
            throw new ArgumentException($"Got {predictedClass.Length} predicted classes, {confidence.Length} confidences and {trueClass.Length} true classes; expected the same non-zero number of each (one per labelled window).", nameof(trueClass));
        }

        var counts = new long[AccuracyEstimate.Bins];
        var correct = new long[AccuracyEstimate.Bins];
        for (var i = 0; i < predictedClass.Length; i++)
        {
            RequireClass(predictedClass[i], i, Labels, nameof(predictedClass));
            RequireClass(trueClass[i], i, Labels, nameof(trueClass));
            RequireConfidence(confidence[i], i);
            var b = AccuracyEstimate.Bin(confidence[i]);
            counts[b]++;
            correct[b] += predictedClass[i] == trueClass[i] ? 1 : 0;
        }

        return new OutputReference(Labels, ClassCounts, SortedConfidence, SortedEntropy, counts, correct, FaultAccuracies);
    }

    /// <summary>
    /// Returns a copy that also knows the model's accuracy on labelled reference windows with an input fault applied, so
    /// that when the input checks name that fault for a device (<see cref="DriftAlarm.Cause"/> and
    /// <see cref="DriftAlarm.Channels"/>), the device's estimated accuracy is the one measured under the fault rather than
    /// the one its confidence suggests (a model is often confidently wrong on inputs outside its support). A later entry
    /// for the same cause and channels replaces the earlier one.
    /// </summary>
    /// <param name="fault">The fault that was applied (<see cref="InputFault.Standard"/>).</param>
    /// <param name="predictedClass">Predicted class per labelled reference window with the fault applied.</param>
    /// <param name="trueClass">True class per window, in the model's label order.</param>
    /// <returns>A new output reference.</returns>
    public OutputReference WithFaultAccuracy(InputFault fault, ReadOnlySpan<int> predictedClass, ReadOnlySpan<int> trueClass)
    {
        ArgumentNullException.ThrowIfNull(fault);
        return WithFaultAccuracy(fault.Cause, fault.Channels, fault.Description, predictedClass, trueClass);
    }

    /// <summary>
    /// Returns a copy that also knows the model's accuracy on labelled reference windows under the fault named by
    /// <paramref name="cause"/> and <paramref name="channels"/> (the engine of
    /// <see cref="WithFaultAccuracy(InputFault, ReadOnlySpan{int}, ReadOnlySpan{int})"/>; not public: callers pass a fault
    /// of <see cref="InputFault.Standard"/>, whose cause, channels and description are the ones the diagnosis names).
    /// </summary>
    /// <param name="cause">The cause the diagnosis names for the fault.</param>
    /// <param name="channels">The channels it names (empty for the whole stream).</param>
    /// <param name="description">A description for operators, e.g. <c>gyroscope in deg/s</c>.</param>
    /// <param name="predictedClass">Predicted class per labelled reference window with the fault applied.</param>
    /// <param name="trueClass">True class per window, in the model's label order.</param>
    /// <returns>A new output reference.</returns>
    internal OutputReference WithFaultAccuracy(DriftCause cause, IReadOnlyList<string> channels, string description, ReadOnlySpan<int> predictedClass, ReadOnlySpan<int> trueClass)
    {
        ArgumentNullException.ThrowIfNull(channels);
        ArgumentException.ThrowIfNullOrWhiteSpace(description);
        if (cause == DriftCause.None)
        {
            throw new ArgumentOutOfRangeException(nameof(cause), cause, "A fault needs a cause the diagnosis can name; None means nothing is wrong.");
        }

        if (predictedClass.Length != trueClass.Length || predictedClass.IsEmpty)
        {
            throw new ArgumentException($"Got {predictedClass.Length} predicted classes and {trueClass.Length} true classes; expected the same non-zero number of each (one per labelled window with the fault applied).", nameof(trueClass));
        }

        long correct = 0;
        for (var i = 0; i < predictedClass.Length; i++)
        {
            correct += predictedClass[i] == trueClass[i] ? 1 : 0;
        }

        var entry = new FaultAccuracy(cause, [.. channels], description, predictedClass.Length, correct);
        var entries = new List<FaultAccuracy>(FaultAccuracies ?? []);
        entries.RemoveAll(e => e.Cause == cause && e.Channels.AsSpan().SequenceEqual(entry.Channels));
        entries.Add(entry);
        return new OutputReference(Labels, ClassCounts, SortedConfidence, SortedEntropy, ReliabilityCounts, ReliabilityCorrect, [.. entries]);
    }

    /// <summary>
    /// The reference accuracy under the fault the input checks name: the entry with the same cause on the same channels,
    /// or, for a unit error or a stuck channel (named on the first channel found), the entry of that cause whose channels
    /// include the named ones; null when the reference has no such entry.
    /// </summary>
    internal FaultAccuracy? FindFault(DriftCause cause, IReadOnlyList<string> channels)
    {
        if (FaultAccuracies is not { } entries)
        {
            return null;
        }

        foreach (var e in entries)
        {
            if (e.Cause == cause && e.Channels.Length == channels.Count && channels.All(e.Channels.Contains))
            {
                return e;
            }
        }

        if (cause is DriftCause.Units && channels.Count > 0)
        {
            foreach (var e in entries)
            {
                if (e.Cause == cause && channels.All(e.Channels.Contains))
                {
                    return e;
                }
            }
        }

        return null;
    }

    /// <summary>Gets the class labels in model order.</summary>
    [JsonInclude]
    internal string[] Labels { get; }

    /// <summary>Gets the predicted windows per class in the reference.</summary>
    [JsonInclude]
    internal long[] ClassCounts { get; }

    /// <summary>Gets a bounded sorted sample of the top-class probability.</summary>
    [JsonInclude]
    internal double[] SortedConfidence { get; }

    /// <summary>Gets a bounded sorted sample of the predictive entropy (nats).</summary>
    [JsonInclude]
    internal double[] SortedEntropy { get; }

    /// <summary>Builds the output reference from the model's predictions on reference windows (Har.Drift does not run models: the caller passes them).</summary>
    /// <param name="labels">Class labels in model order.</param>
    /// <param name="predictedClass">Predicted class index per window.</param>
    /// <param name="confidence">Top-class probability per window.</param>
    /// <param name="entropy">Predictive entropy per window.</param>
    /// <param name="maxSample">Bound on the stored sorted samples.</param>
    /// <returns>The output reference.</returns>
    public static OutputReference FromPredictions(IReadOnlyList<string> labels, ReadOnlySpan<int> predictedClass, ReadOnlySpan<float> confidence, ReadOnlySpan<float> entropy, int maxSample = 20_000)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSample, 2);
        if (predictedClass.Length != confidence.Length || predictedClass.Length != entropy.Length || predictedClass.IsEmpty)
        {
            throw new ArgumentException($"Got {predictedClass.Length} predicted classes, {confidence.Length} confidences and {entropy.Length} entropies; expected the same non-zero number of each (one per window).", nameof(predictedClass));
        }

        var first = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var k = 0; k < labels.Count; k++)
        {
            if (string.IsNullOrWhiteSpace(labels[k]))
            {
                throw new ArgumentException($"Label {k} is empty; expected the model's class names, each once, in the order of its outputs.", nameof(labels));
            }

            if (!first.TryAdd(labels[k], k))
            {
                throw new ArgumentException($"Label '{labels[k]}' is given twice (classes {first[labels[k]]} and {k}); expected the model's class names, each once, in the order of its outputs.", nameof(labels));
            }
        }

        var counts = new long[labels.Count];
        foreach (var c in predictedClass)
        {
            if ((uint)c >= (uint)labels.Count)
            {
                throw new ArgumentOutOfRangeException(nameof(predictedClass), $"Predicted class {c} is outside the {labels.Count} labels.");
            }

            counts[c]++;
        }

        for (var i = 0; i < confidence.Length; i++)
        {
            RequireConfidence(confidence[i], i);
            if (!float.IsFinite(entropy[i]) || entropy[i] < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(entropy), entropy[i], $"Window {i}'s entropy is {entropy[i].ToString(CultureInfo.InvariantCulture)}; expected a finite, non-negative number (nats), as DeviceDriftMonitor.Observe does.");
            }
        }

        return new OutputReference([.. labels], counts, Sketch.BoundedSorted(confidence, maxSample), Sketch.BoundedSorted(entropy, maxSample));
    }

    private static void RequireConfidence(float confidence, int window)
    {
        if (!float.IsFinite(confidence) || confidence < 0 || confidence > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(confidence), confidence, $"Window {window}'s confidence is {confidence.ToString(CultureInfo.InvariantCulture)}; expected the top-class probability, in [0, 1], as DeviceDriftMonitor.Observe does.");
        }
    }

    private static void RequireClass(int label, int window, string[] labels, string parameter)
    {
        if ((uint)label >= (uint)labels.Length)
        {
            throw new ArgumentOutOfRangeException(parameter, label, $"Window {window}'s class {label} is outside the reference's {labels.Length} labels ({string.Join(", ", labels)}); expected an index in the model's label order, 0 to {labels.Length - 1}.");
        }
    }

    /// <summary>Returns e.g. <c>outputs of 5000 windows over 6 classes (WALKING 20.0 %, …)</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString()
    {
        long total = 0;
        foreach (var c in ClassCounts)
        {
            total += c;
        }

        var mix = new string[Labels.Length];
        for (var i = 0; i < Labels.Length; i++)
        {
            mix[i] = string.Create(CultureInfo.InvariantCulture, $"{Labels[i]} {(total == 0 ? 0 : 100.0 * ClassCounts[i] / total):F1} %");
        }

        return string.Create(CultureInfo.InvariantCulture, $"outputs of {total} windows over {Labels.Length} classes ({string.Join(", ", mix)})");
    }
}
