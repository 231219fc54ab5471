namespace Har.Inference.Data;

/// <summary>The result of <see cref="DatasetEvaluator.Evaluate"/>.</summary>
/// <param name="Report">Accuracy, macro-F1, per-class scores and the confusion matrix over the windows scored.</param>
/// <param name="SamplesFile">The samples file read.</param>
/// <param name="Split">The split scored (<c>train</c>, <c>test</c> or <c>all</c>).</param>
/// <param name="Sessions">The number of sessions scored.</param>
/// <param name="Excluded">Per dataset activity the model does not know: its name and the windows left out because it was their majority.</param>
internal sealed record DatasetEvaluation(EvaluationReport Report, string SamplesFile, string Split, int Sessions, IReadOnlyList<(string Label, int Windows)> Excluded);

/// <summary>
/// Scores a model on a dataset in the common sample format (<see cref="SensorDataset"/>) with the training protocol
/// (<see cref="ModelEvaluator"/>): dataset labels are matched to the model's by name (case-insensitive); id 0 is
/// unlabeled; activities the model does not know are excluded from the scores and counted per activity.
/// </summary>
internal static class DatasetEvaluator
{
    public static DatasetEvaluation Evaluate(HarModel model, string folder, string? split, string? samplesFile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        var card = model.Card;
        var names = SensorDataset.LoadLabelNames(folder);
        var unknown = new List<string>();
        var map = new int[names.Length];
        for (var id = 0; id < names.Length; id++)
        {
            var name = names[id];
            if (id == 0 || name is null || string.Equals(name, "UNLABELED", StringComparison.OrdinalIgnoreCase))
            {
                map[id] = -1;
                continue;
            }

            var index = IndexOf(card.Labels, name);
            if (index < 0)
            {
                index = card.ClassCount + unknown.Count;
                unknown.Add(name);
            }

            map[id] = index;
        }

        var path = SensorDataset.FindSamplesFile(folder, samplesFile);
        var sessions = SensorDataset.Load(folder, split, Path.GetFileName(path), null, cancellationToken);
        var recordings = sessions.Select(s => ToRecording(s, map));
        var report = ModelEvaluator.Evaluate(model, recordings, unknown.Count, cancellationToken);
        var excluded = new (string, int)[unknown.Count];
        for (var i = 0; i < excluded.Length; i++)
        {
            excluded[i] = (unknown[i], report.ExcludedUnknown[i]);
        }

        return new DatasetEvaluation(report, path, split ?? "all", sessions.Count, excluded);
    }

    private static int IndexOf(IReadOnlyList<string> labels, string name)
    {
        for (var i = 0; i < labels.Count; i++)
        {
            if (string.Equals(labels[i], name.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }

    private static LabeledRecording ToRecording(SensorSession session, int[] map)
    {
        var labels = new int[session.Length];
        for (var i = 0; i < labels.Length; i++)
        {
            var id = session.Labels[i];
            if (id >= map.Length)
            {
                throw new InvalidDataException($"Session {session.Session} (subject {session.Subject}) has label {id}, which labels.csv does not name; expected ids 0 … {map.Length - 1}.");
            }

            labels[i] = map[id];
        }

        return new LabeledRecording(session.Samples, labels);
    }
}
