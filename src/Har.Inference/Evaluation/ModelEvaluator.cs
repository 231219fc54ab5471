namespace Har.Inference;

/// <summary>
/// Scores a model on labelled recordings with the training protocol: each recording is windowed from its
/// first frame with the card's length and stride (through <see cref="StreamWindower"/>, normalized and
/// predicted through <see cref="HarModel"/>, exactly as in production); a window's true class is the most
/// frequent label among its frames, ties going to the smallest value (-1 = unlabeled first, then class
/// order); windows whose majority is unlabeled are excluded.
/// </summary>
internal static class ModelEvaluator
{
    /// <summary>Scores <paramref name="model"/> on <paramref name="recordings"/>.</summary>
    /// <param name="model">The loaded model.</param>
    /// <param name="recordings">The recordings; each must have one label per frame.</param>
    /// <param name="cancellationToken">Cancels between recordings.</param>
    /// <returns>Accuracy, macro-F1, per-class scores and the confusion matrix.</returns>
    /// <exception cref="ArgumentException">A recording is not whole frames, its label count differs from its frame count, or a label is outside -1 … K-1.</exception>
    public static EvaluationReport Evaluate(HarModel model, IEnumerable<LabeledRecording> recordings, CancellationToken cancellationToken = default) =>
        Evaluate(model, recordings, unknownLabels: 0, cancellationToken);

    /// <summary>
    /// Scores <paramref name="model"/> on recordings whose labels may also be K … K + <paramref name="unknownLabels"/> − 1:
    /// activities the model does not know. A window whose majority is one of them is excluded and counted in
    /// <see cref="EvaluationReport.ExcludedUnknown"/> (index = label − K).
    /// </summary>
    /// <param name="model">The loaded model.</param>
    /// <param name="recordings">The recordings; each must have one label per frame.</param>
    /// <param name="unknownLabels">How many label values above the model's classes the recordings may use.</param>
    /// <param name="cancellationToken">Cancels between recordings.</param>
    /// <returns>Accuracy, macro-F1, per-class scores, the confusion matrix and the excluded windows.</returns>
    public static EvaluationReport Evaluate(HarModel model, IEnumerable<LabeledRecording> recordings, int unknownLabels, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(recordings);
        var card = model.Card;
        var k = card.ClassCount;
        var l = card.WindowLength;
        var confusion = new int[k * k];
        ArgumentOutOfRangeException.ThrowIfNegative(unknownLabels);
        var counts = new int[k + 1 + unknownLabels];
        var excludedUnknown = new int[unknownLabels];
        int windows = 0, excluded = 0, index = 0;
        var probabilities = Array.Empty<float>();
        var predictions = Array.Empty<Prediction>();

        foreach (var recording in recordings)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var frames = recording.Frames.Span;
            var labels = recording.Labels.Span;
            if (frames.Length % card.ChannelCount != 0 || frames.Length / card.ChannelCount != labels.Length)
            {
                throw new ArgumentException(
                    $"Recording {index} has {frames.Length} values and {labels.Length} labels; expected {card.ChannelCount} values per frame and one label per frame.",
                    nameof(recordings));
            }

            using var windower = new StreamWindower(card, new StreamWindowerOptions { MaxStreams = 1, MaxWindowsPerAppend = int.MaxValue });
            var result = windower.Append("recording", frames);
            if (probabilities.Length < result.Count * k)
            {
                probabilities = new float[result.Count * k];
                predictions = new Prediction[result.Count];
            }

            model.Predict(result, probabilities, predictions);
            for (var w = 0; w < result.Count; w++)
            {
                var start = (int)result.GetStartFrame(w);
                var truth = Majority(labels.Slice(start, l), counts, k + unknownLabels, index);
                if (truth < 0)
                {
                    excluded++;
                    continue;
                }

                if (truth >= k)
                {
                    excludedUnknown[truth - k]++;
                    continue;
                }

                confusion[(truth * k) + predictions[w].ClassIndex]++;
                windows++;
            }

            index++;
        }

        return new EvaluationReport(card, confusion, windows, excluded, excludedUnknown);
    }

    /// <summary>The most frequent label (-1 … K-1) of a window; ties go to the smallest.</summary>
    internal static int Majority(ReadOnlySpan<int> labels, Span<int> counts, int classes, int recording)
    {
        counts.Clear();
        foreach (var label in labels)
        {
            if (label < -1 || label >= classes)
            {
                throw new ArgumentException($"Recording {recording} has label {label}; expected -1 (unlabeled) or a class index 0 … {classes - 1}.");
            }

            counts[label + 1]++;
        }

        var best = 0;
        for (var i = 1; i < counts.Length; i++)
        {
            if (counts[i] > counts[best])
            {
                best = i;
            }
        }

        return best - 1;
    }
}
