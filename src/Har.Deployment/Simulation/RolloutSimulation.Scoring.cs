using System.Diagnostics;
using Har.Inference;

namespace Har.Deployment;

/// <summary>Preparation: every window scored once per model, and both models' real single-window times.</summary>
internal sealed partial class RolloutSimulation
{
    private static Outputs Score(HarModel model, float[] windows, TimeSpan[] latencies, CancellationToken ct, IReadOnlyList<string>? order = null)
    {
        var map = order is null ? null : ClassOrder.Build(model.Card.Labels, order);
        var values = model.WindowValues;
        var n = windows.Length / values;
        var k = model.Card.ClassCount;
        var labels = new int[n];
        var confidence = new float[n];
        var uncertain = new bool[n];
        const int Batch = 256;
        var probabilities = new float[Batch * k];
        var predictions = new Prediction[Batch];
        for (var start = 0; start < n; start += Batch)
        {
            ct.ThrowIfCancellationRequested();
            var count = Math.Min(Batch, n - start);
            model.Predict(windows.AsSpan(start * values, count * values), probabilities, predictions.AsSpan(0, count));
            for (var i = 0; i < count; i++)
            {
                labels[start + i] = ClassOrder.Translate(map, predictions[i].ClassIndex);
                confidence[start + i] = predictions[i].Confidence;
                uncertain[start + i] = predictions[i].IsUncertain;
            }
        }

        var sorted = (TimeSpan[])latencies.Clone();
        Array.Sort(sorted);
        return new Outputs(labels, confidence, uncertain, latencies, sorted[(int)Math.Ceiling(0.95 * sorted.Length) - 1], sorted[sorted.Length / 2]);
    }

    /// <summary>
    /// The windows of the built-in smoke test and of the calibration reference, as an operator would pick them: for
    /// each activity, windows whose activity is known, spread evenly over the recording (at most
    /// <see cref="SmokeWindowsPerActivity"/> of each). A healthy candidate answers most of them as the champion does
    /// (91.5 % of the HAPT test windows, far above <see cref="RolloutControllerOptions.SmokeTestMinAgreement"/>); a
    /// broken one does not. A few of each activity, not a few of the recording: the confidence and uncertain-rate
    /// gates expect each version's figures per predicted class from these windows (<see cref="OutputReference.Expected"/>),
    /// which needs <see cref="OutputReference.MinClassWindows"/> of a class. And a sample of each activity as it comes,
    /// not only windows the champion is sure of: the gates compare the versions' figures on traffic with their figures
    /// on these windows, and windows picked for the champion's confidence of at least 0.8 were the easy ones, on which
    /// the CNN was uncertain on 4–6 points more than the CNN-BiLSTM where the traffic of a few devices showed 20–25
    /// points more. With fewer than <see cref="SmokeWindowMinimum"/> known windows (no labels), every 25th window is used.
    /// </summary>
    private static List<float[]> SmokeWindows(float[] all, int values, List<int> truth)
    {
        var n = all.Length / values;
        var known = new Dictionary<int, List<int>>();
        var total = 0;
        for (var w = 0; w < n; w++)
        {
            if (truth[w] >= 0)
            {
                if (!known.TryGetValue(truth[w], out var list))
                {
                    known[truth[w]] = list = [];
                }

                list.Add(w);
                total++;
            }
        }

        var picked = new List<int>();
        if (total >= SmokeWindowMinimum)
        {
            foreach (var activity in known.Keys.Order())
            {
                var windows = known[activity];
                var step = Math.Max(1, windows.Count / SmokeWindowsPerActivity);
                for (var i = 0; i < windows.Count && i / step < SmokeWindowsPerActivity; i += step)
                {
                    picked.Add(windows[i]);
                }
            }

            picked.Sort();
        }
        else
        {
            for (var w = 0; w < n; w += 25)
            {
                picked.Add(w);
            }
        }

        return picked.ConvertAll(w => all.AsSpan(w * values, values).ToArray());
    }

    private const int SmokeWindowsPerActivity = 24;
    private const int SmokeWindowMinimum = 10;

    /// <summary>
    /// Real single-window latencies of both models on the same real windows (wall time of this
    /// machine), sampled by the runs. The two models are timed in alternating order on each window, and
    /// each window is timed <see cref="LatencyRepeats"/> times per model keeping the fastest: a burst of
    /// load from other processes then inflates neither model's figures (one pass per model, one after
    /// the other, once measured a 0.8 ms model at 4.6 ms p95 because the machine was busy during its
    /// pass, and every healthy run then failed the latency gate).
    /// </summary>
    private static (TimeSpan[] Champion, TimeSpan[] Candidate) MeasureLatencies(HarModel champion, HarModel candidate, float[] windows, int values, CancellationToken ct)
    {
        var n = windows.Length / values;
        var samples = Math.Min(n, LatencySamples);
        var championLatencies = new TimeSpan[samples];
        var candidateLatencies = new TimeSpan[samples];
        var one = new Prediction[1];
        var championProbabilities = new float[champion.Card.ClassCount];
        var candidateProbabilities = new float[candidate.Card.ClassCount];

        // Warm-up of the single-window path of both sessions.
        for (var i = 0; i < 10; i++)
        {
            champion.Predict(windows.AsSpan(values - champion.WindowValues, champion.WindowValues), championProbabilities, one);
            candidate.Predict(windows.AsSpan(values - candidate.WindowValues, candidate.WindowValues), candidateProbabilities, one);
        }

        for (var i = 0; i < samples; i++)
        {
            ct.ThrowIfCancellationRequested();
            var window = windows.AsSpan((int)((i * 7919L) % n) * values, values);
            var championBest = TimeSpan.MaxValue;
            var candidateBest = TimeSpan.MaxValue;
            for (var r = 0; r < LatencyRepeats; r++)
            {
                var championFirst = ((i + r) & 1) == 0;
                if (championFirst)
                {
                    championBest = Min(championBest, Time(champion, window[^champion.WindowValues..], championProbabilities, one));
                }

                candidateBest = Min(candidateBest, Time(candidate, window[^candidate.WindowValues..], candidateProbabilities, one));
                if (!championFirst)
                {
                    championBest = Min(championBest, Time(champion, window[^champion.WindowValues..], championProbabilities, one));
                }
            }

            championLatencies[i] = championBest;
            candidateLatencies[i] = candidateBest;
        }

        return (championLatencies, candidateLatencies);

        static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

        static TimeSpan Time(HarModel model, ReadOnlySpan<float> window, float[] probabilities, Prediction[] one)
        {
            var t0 = Stopwatch.GetTimestamp();
            model.Predict(window, probabilities, one);
            return Stopwatch.GetElapsedTime(t0);
        }
    }

    /// <summary>
    /// Whether the less accurate candidate gets <paramref name="window"/> wrong: it answers as the champion does and is
    /// <paramref name="drop"/> less accurate, so a window the champion gets right is lost when its stable hash falls below
    /// <paramref name="drop"/> ÷ the champion's accuracy, the same windows in every run.
    /// </summary>
    private bool LosesWindow(int window, int label, double drop)
    {
        var truth = window < _windowTruth.Length ? _windowTruth[window] : -1;
        if (truth < 0 || truth != label)
        {
            return false;
        }

        // SplitMix64 of the window index: a fixed, well-mixed choice per window.
        var z = unchecked(((ulong)window + 1) * 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53)) < drop / Math.Max(ChampionAccuracy, 1e-9);
    }

    /// <summary>Gets the healthy candidate's accuracy on the labelled windows (NaN without labels).</summary>
    public double CandidateAccuracy => _candidateAccuracy ??= Accuracy(_candidate.Labels);

    /// <summary>Gets the champion's accuracy on the labelled windows (NaN without labels).</summary>
    public double ChampionAccuracy => _championAccuracy ??= Accuracy(_champion.Labels);

    /// <summary>Gets the less accurate candidate's accuracy on the labelled windows for a given drop (NaN without labels).</summary>
    public double LessAccurateAccuracy(double drop)
    {
        var labels = (int[])_champion.Labels.Clone();
        for (var w = 0; w < labels.Length; w++)
        {
            if (LosesWindow(w, labels[w], drop))
            {
                labels[w] = (labels[w] + 1) % _classes;
            }
        }

        return Accuracy(labels);
    }

    private double? _candidateAccuracy;
    private double? _championAccuracy;

    private double Accuracy(int[] labels)
    {
        long labelled = 0, right = 0;
        for (var w = 0; w < Math.Min(labels.Length, _windowTruth.Length); w++)
        {
            if (_windowTruth[w] >= 0)
            {
                labelled++;
                right += labels[w] == _windowTruth[w] ? 1 : 0;
            }
        }

        return labelled == 0 ? double.NaN : (double)right / labelled;
    }
}
