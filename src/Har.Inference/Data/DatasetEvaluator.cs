using System.Globalization;

namespace Har.Inference.Data;

/// <summary>The result of <see cref="DatasetEvaluator.Evaluate"/>.</summary>
/// <param name="Report">Accuracy, macro-F1, per-class scores and the confusion matrix over the windows scored.</param>
/// <param name="SamplesFile">The samples file read.</param>
/// <param name="Split">The split scored (<c>train</c>, <c>test</c> or <c>all</c>).</param>
/// <param name="Sessions">The number of sessions scored.</param>
/// <param name="Excluded">Per dataset activity the model does not know: its name and the windows left out because it was their majority.</param>
/// <param name="Warnings">What makes the figures doubtful without stopping the evaluation: a sample rate other than the
/// card's, labels on both sides that match nothing on the other (a naming mismatch?).</param>
internal sealed record DatasetEvaluation(EvaluationReport Report, string SamplesFile, string Split, int Sessions, IReadOnlyList<(string Label, int Windows)> Excluded, IReadOnlyList<string> Warnings);

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

        var channels = ChannelMap(card);
        var path = SensorDataset.FindSamplesFile(folder, samplesFile);
        var sessions = SensorDataset.Load(folder, split, Path.GetFileName(path), null, cancellationToken);
        var recordings = sessions.Select(s => ToRecording(s, map, channels));
        var report = ModelEvaluator.Evaluate(model, recordings, unknown.Count, cancellationToken);
        var excluded = new (string, int)[unknown.Count];
        for (var i = 0; i < excluded.Length; i++)
        {
            excluded[i] = (unknown[i], report.ExcludedUnknown[i]);
        }

        var warnings = new List<string>();
        var rate = SensorDataset.LoadSampleRate(folder);
        if (rate is { } hz && Math.Abs(hz - card.SampleRateHz) > 0.02 * card.SampleRateHz)
        {
            warnings.Add(string.Create(CultureInfo.InvariantCulture, $"the data is sampled at {hz:0.##} Hz (sessions.csv: samples over duration) but {card}'s card says {card.SampleRateHz:0.##} Hz: each window spans {card.WindowLength / hz:0.##} s instead of {card.WindowLength / card.SampleRateHz:0.##} s, so these figures are not the model's; resample the data or fix the card's har.sample_rate_hz"));
        }

        var matched = new HashSet<string>(names.Where(n => n is not null).Select(n => n!.Trim()), StringComparer.OrdinalIgnoreCase);
        var unmatched = card.Labels.Where(l => !matched.Contains(l)).ToList();
        if (unknown.Count > 0 && unmatched.Count > 0)
        {
            warnings.Add($"the model's labels {string.Join(", ", unmatched)} match no activity of the data, and the data's {string.Join(", ", unknown)} match no label of the model (labels are matched by name, case-insensitively): if some of them name the same activities, the card's har.labels and the data's labels.csv disagree on their names");
        }

        return new DatasetEvaluation(report, path, split ?? "all", sessions.Count, excluded, warnings);
    }

    /// <summary>
    /// Where each of the card's channels is in a frame of the common sample format (<c>ax ay az gx gy gz</c>), or
    /// <see langword="null"/> when the card reads exactly those in that order. A model reads its channels by the
    /// card's names, as <c>har predict</c> and the serving path do, not by position.
    /// </summary>
    private static int[]? ChannelMap(ModelCard card)
    {
        var map = new int[card.ChannelCount];
        var identity = card.ChannelCount == SensorSession.Channels;
        for (var c = 0; c < map.Length; c++)
        {
            map[c] = Array.IndexOf(SensorDataset.ChannelNames, card.Channels[c]);
            if (map[c] < 0)
            {
                throw new InvalidDataException($"Model {card} reads the channel '{card.Channels[c]}', which a dataset in the common sample format does not have; expected a model whose har.channels are among {string.Join(' ', SensorDataset.ChannelNames)} (in any order).");
            }

            identity &= map[c] == c;
        }

        return identity ? null : map;
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

    private static LabeledRecording ToRecording(SensorSession session, int[] map, int[]? channels)
    {
        var samples = session.Samples;
        if (channels is not null)
        {
            samples = new float[session.Length * channels.Length];
            for (int f = 0, o = 0; f < session.Length; f++)
            {
                var frame = f * SensorSession.Channels;
                foreach (var c in channels)
                {
                    samples[o++] = session.Samples[frame + c];
                }
            }
        }

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

        return new LabeledRecording(samples, labels);
    }
}
