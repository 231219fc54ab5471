using System.Globalization;
using System.Text;
using Har.Inference;
using Har.Inference.Data;
using Har.Testing;

namespace Har.Drift.Tests.Calibration;

/// <summary>
/// Confidence-based performance estimation against measured accuracy: the champion model's reliability is taken on
/// the validation subjects it was not trained on (28, 29, 30; see models/README.md), then its accuracy on the HAPT
/// test sessions — clean and with each fault from the session's start, random parameters per session — is estimated
/// from its confidences alone and measured with the labels.
/// </summary>
internal static class AccuracyStudy
{
    public const string Model = "har-cnn-bilstm-1.0.0.onnx";
    private static readonly int[] ValidationSubjects = [28, 29, 30];

    public sealed record Row(string Condition, int Windows, double Measured, double Estimated, double Margin, double RawConfidence, double SessionMae);

    public sealed record Result(double ReferenceAccuracy, double ReferenceConfidence, int ReferenceWindows, List<Row> Rows)
    {
        public double Mae => Rows.Average(r => Math.Abs(r.Estimated - r.Measured));

        public double RawMae => Rows.Average(r => Math.Abs(r.RawConfidence - r.Measured));
    }

    public static Result Run(IReadOnlyList<SensorSession> all, IReadOnlyList<SensorSession> test, IReadOnlyList<AlarmStudy.FaultKind> faults, int seed)
    {
        using var model = HarModel.Load(Path.Combine(TestPaths.Models, Model), new HarModelOptions { EnableMetrics = false });
        var labelNames = SensorDataset.LoadLabelNames(TestPaths.RequireSharedData());
        var map = ClassMap(model.Card.Labels, labelNames);

        var refPred = new List<int>();
        var refConf = new List<float>();
        var refEnt = new List<float>();
        var refTrue = new List<int>();
        foreach (var s in all.Where(s => ValidationSubjects.Contains(s.Subject)))
        {
            foreach (var (p, t) in Predict(model, s.Samples, s.Labels, map, f => f))
            {
                refPred.Add(p.ClassIndex);
                refConf.Add(p.Confidence);
                refEnt.Add(p.Entropy);
                refTrue.Add(t);
            }
        }

        var reference = OutputReference.FromPredictions(model.Card.Labels, [.. refPred], [.. refConf], [.. refEnt]).WithAccuracy([.. refPred], [.. refConf], [.. refTrue]);
        var profile = HaptCalibration.Profile.WithOutputs(reference);
        var scorer = new DriftScorer(profile);
        var rows = new List<Row>();
        var conditions = new List<(string Name, AlarmStudy.FaultKind? Kind)> { ("clean", null) };
        conditions.AddRange(faults.Select(f => (f.Name, (AlarmStudy.FaultKind?)f)));
        var rng = new Random(seed);
        foreach (var (name, kind) in conditions)
        {
            var pred = new List<int>();
            var conf = new List<float>();
            var ent = new List<float>();
            var truth = new List<int>();
            var sessionErrors = new List<double>();
            foreach (var s in test)
            {
                var injected = kind?.Inject(new Random(rng.Next()), s.Samples, 0);
                var samples = injected?.Samples ?? s.Samples;
                Func<int, int> source = injected is { SecondsPerFrameAfter: var spf } && Math.Abs(spf - (1 / AlarmStudy.Rate)) > 1e-9
                    ? f => (int)Math.Round(f * spf * AlarmStudy.Rate)
                    : f => f;
                var sp = new List<int>();
                var sc = new List<float>();
                var se = new List<float>();
                var st = new List<int>();
                foreach (var (p, t) in Predict(model, samples, s.Labels, map, source))
                {
                    sp.Add(p.ClassIndex);
                    sc.Add(p.Confidence);
                    se.Add(p.Entropy);
                    st.Add(t);
                }

                if (sp.Count >= 30)
                {
                    var v = scorer.ScoreOutputs([.. sp], [.. sc], [.. se]);
                    sessionErrors.Add(Math.Abs(v.EstimatedAccuracy!.Value - Accuracy(sp, st)));
                }

                pred.AddRange(sp);
                conf.AddRange(sc);
                ent.AddRange(se);
                truth.AddRange(st);
            }

            var verdict = scorer.ScoreOutputs([.. pred], [.. conf], [.. ent]);
            rows.Add(new Row(name, pred.Count, Accuracy(pred, truth), verdict.EstimatedAccuracy!.Value, verdict.EstimatedAccuracyMargin!.Value, conf.Average(c => (double)c), sessionErrors.Count > 0 ? sessionErrors.Average() : double.NaN));
        }

        return new Result(reference.ReferenceAccuracy!.Value, refConf.Average(c => (double)c), refPred.Count, rows);
    }

    public static string Markdown(Result r)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"Reference (validation subjects 28–30, {r.ReferenceWindows} labelled windows): accuracy {r.ReferenceAccuracy:F3}, mean confidence {r.ReferenceConfidence:F3} (calibration gap {r.ReferenceConfidence - r.ReferenceAccuracy:+0.000;-0.000}).");
        sb.AppendLine();
        sb.AppendLine("| test streams | labelled windows | measured accuracy | estimated (CBPE) ± 95 % | raw mean confidence | \\|estimated − measured\\| | per-device MAE |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var row in r.Rows)
        {
            sb.AppendLine(inv, $"| {row.Condition} | {row.Windows} | {row.Measured:F3} | {row.Estimated:F3} ± {row.Margin:F3} | {row.RawConfidence:F3} | {100 * Math.Abs(row.Estimated - row.Measured):F1} pts | {100 * row.SessionMae:F1} pts |");
        }

        sb.AppendLine();
        sb.AppendLine(inv, $"Mean absolute error over the conditions: CBPE {100 * r.Mae:F1} points (raw mean confidence {100 * r.RawMae:F1} points).");
        return sb.ToString();
    }

    private static double Accuracy(List<int> pred, List<int> truth)
    {
        var right = 0;
        for (var i = 0; i < pred.Count; i++)
        {
            right += pred[i] == truth[i] ? 1 : 0;
        }

        return pred.Count == 0 ? double.NaN : (double)right / pred.Count;
    }

    /// <summary>Dataset label id → model class index (by name), or -1.</summary>
    private static int[] ClassMap(IReadOnlyList<string> modelLabels, string[] dataLabels)
    {
        var map = new int[dataLabels.Length];
        for (var i = 0; i < dataLabels.Length; i++)
        {
            map[i] = -1;
            for (var k = 0; k < modelLabels.Count; k++)
            {
                if (string.Equals(modelLabels[k], dataLabels[i], StringComparison.OrdinalIgnoreCase))
                {
                    map[i] = k;
                }
            }
        }

        return map;
    }

    /// <summary>The model's prediction and the true class of every labelled window (majority label of the source frames).</summary>
    private static IEnumerable<(Prediction Prediction, int True)> Predict(HarModel model, float[] samples, byte[] labels, int[] map, Func<int, int> source)
    {
        var len = model.Card.WindowLength;
        var stride = model.Card.Stride;
        var frames = samples.Length / 6;
        var votes = new int[map.Length];
        for (var start = 0; start + len <= frames; start += stride)
        {
            Array.Clear(votes);
            for (var f = start; f < start + len; f++)
            {
                var src = Math.Min(labels.Length - 1, source(f));
                votes[labels[src]]++;
            }

            var majority = 0;
            for (var k = 1; k < votes.Length; k++)
            {
                if (votes[k] > votes[majority])
                {
                    majority = k;
                }
            }

            if (majority == 0 || map[majority] < 0)
            {
                continue;
            }

            yield return (model.Predict(samples.AsSpan(start * 6, len * 6)), map[majority]);
        }
    }
}
