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

    /// <summary>One condition: measured accuracy, the confidence-based estimate, and the estimate conditioned on the faults the input checks named.</summary>
    public sealed record Row(
        string Condition, int Windows, double Measured, double Estimated, double Margin, double RawConfidence, double SessionMae,
        double Conditioned, double ConditionedMargin, double NamedShare, double UnmatchedShare, int Sessions, int SessionsNamed, int SessionsUnmatched,
        double ConditionedSessionMae, string Named);

    public sealed record Result(double ReferenceAccuracy, double ReferenceConfidence, int ReferenceWindows, List<(string Fault, long Windows, double Accuracy)> FaultTable, List<Row> Rows)
    {
        public double Mae => Rows.Average(r => Math.Abs(r.Estimated - r.Measured));

        public double ConditionedMae => Rows.Average(r => Math.Abs(r.Conditioned - r.Measured));

        public double RawMae => Rows.Average(r => Math.Abs(r.RawConfidence - r.Measured));
    }

    public static Result Run(IReadOnlyList<SensorSession> all, IReadOnlyList<SensorSession> test, IReadOnlyList<AlarmStudy.FaultKind> faults, int seed)
    {
        using var model = HarModel.Load(Path.Combine(TestPaths.Models, Model), new HarModelOptions { EnableMetrics = false });
        var labelNames = SensorDataset.LoadLabelNames(TestPaths.RequireSharedData());
        var map = ClassMap(model.Card.Labels, labelNames);
        var validation = all.Where(s => ValidationSubjects.Contains(s.Subject)).ToList();

        var refPred = new List<int>();
        var refConf = new List<float>();
        var refEnt = new List<float>();
        var refTrue = new List<int>();
        foreach (var s in validation)
        {
            foreach (var (_, p, t) in Predict(model, s.Samples, s.Labels, map, f => f))
            {
                refPred.Add(p.ClassIndex);
                refConf.Add(p.Confidence);
                refEnt.Add(p.Entropy);
                refTrue.Add(t);
            }
        }

        var reference = OutputReference.FromPredictions(model.Card.Labels, [.. refPred], [.. refConf], [.. refEnt]).WithAccuracy([.. refPred], [.. refConf], [.. refTrue]);

        // The fault table: the same labelled validation windows with each standard input fault applied.
        var table = new List<(string, long, double)>();
        foreach (var fault in InputFault.Standard(AlarmStudy.ChannelNames, AlarmStudy.Rate))
        {
            var fp = new List<int>();
            var ft = new List<int>();
            foreach (var s in validation)
            {
                var faulty = fault.Apply(s.Samples, AlarmStudy.ChannelNames.Length);
                var ratio = fault.SourceFramesPerFrame;
                foreach (var (_, p, t) in Predict(model, faulty, s.Labels, map, f => (int)Math.Round(f * ratio)))
                {
                    fp.Add(p.ClassIndex);
                    ft.Add(t);
                }
            }

            reference = reference.WithFaultAccuracy(fault, [.. fp], [.. ft]);
            table.Add((fault.ToString(), fp.Count, Accuracy(fp, ft)));
        }

        var profile = HaptCalibration.Profile.WithOutputs(reference);
        var scorer = new DriftScorer(profile);
        var window = profile.SegmentLength;
        var step = window / 2;
        var rows = new List<Row>();
        var conditions = new List<(string Name, AlarmStudy.FaultKind? Kind)> { ("clean", null) };
        conditions.AddRange(faults.Select(f => (f.Name, (AlarmStudy.FaultKind?)f)));
        var rng = new Random(seed);
        foreach (var (name, kind) in conditions)
        {
            var injectedAll = test.Select(s => kind?.Inject(new Random(rng.Next()), s.Samples, 0)).ToList();

            // The input side, per session as the monitor scores a device: its last window every half window, one history
            // and alarm per device.
            var streams = test.Select((s, i) => injectedAll[i]?.Samples ?? s.Samples).AsParallel().AsOrdered()
                .Select(samples => AlarmStudy.Stream(scorer, samples, window, step)).ToList();

            var pred = new List<int>();
            var conf = new List<float>();
            var ent = new List<float>();
            var truth = new List<int>();
            var alarms = new List<DriftAlarm?>();
            var sessionErrors = new List<double>();
            var conditionedErrors = new List<double>();
            int sessionsNamed = 0, sessionsUnmatched = 0;
            for (var i = 0; i < test.Count; i++)
            {
                var s = test[i];
                var injected = injectedAll[i];
                var samples = injected?.Samples ?? s.Samples;
                Func<int, int> source = injected is { SecondsPerFrameAfter: var spf } && Math.Abs(spf - (1 / AlarmStudy.Rate)) > 1e-9
                    ? f => (int)Math.Round(f * spf * AlarmStudy.Rate)
                    : f => f;
                var sp = new List<int>();
                var sc = new List<float>();
                var se = new List<float>();
                var st = new List<int>();
                var sa = new List<DriftAlarm?>();
                var scorings = streams[i];
                foreach (var (end, p, t) in Predict(model, samples, s.Labels, map, source))
                {
                    sp.Add(p.ClassIndex);
                    sc.Add(p.Confidence);
                    se.Add(p.Entropy);
                    st.Add(t);

                    // The device's alarm as it stood when this window was predicted: its latest scoring up to the window's end.
                    DriftAlarm? alarm = null;
                    foreach (var (scoredEnd, report) in scorings)
                    {
                        if (scoredEnd > end)
                        {
                            break;
                        }

                        alarm = report.Alarm;
                    }

                    sa.Add(alarm);
                }

                if (sp.Count >= 30)
                {
                    var measured = Accuracy(sp, st);
                    var v = scorer.ScoreOutputs([.. sp], [.. sc], [.. se]);
                    sessionErrors.Add(Math.Abs(v.EstimatedAccuracy!.Value - measured));
                    var vc = scorer.ScoreOutputs([.. sp], [.. sc], [.. se], sa);
                    conditionedErrors.Add(Math.Abs(vc.EstimatedAccuracy!.Value - measured));
                }

                sessionsNamed += sa.Any(a => a is { Raised: true } && profile.Outputs!.FindFault(a.Cause, a.Channels) is not null) ? 1 : 0;
                sessionsUnmatched += sa.Any(a => a is { Raised: true, Cause: not DriftCause.None } && profile.Outputs!.FindFault(a.Cause, a.Channels) is null) ? 1 : 0;
                pred.AddRange(sp);
                conf.AddRange(sc);
                ent.AddRange(se);
                truth.AddRange(st);
                alarms.AddRange(sa);
            }

            var verdict = scorer.ScoreOutputs([.. pred], [.. conf], [.. ent]);
            var conditioned = scorer.ScoreOutputs([.. pred], [.. conf], [.. ent], alarms);
            var named = string.Join("; ", conditioned.NamedFaults.Select(f => string.Create(CultureInfo.InvariantCulture, $"{f.Description} {f.Predictions}")));
            if (conditioned.UnmatchedCauses.Count > 0)
            {
                named += (named.Length > 0 ? "; " : string.Empty) + "no entry: " + string.Join(", ", conditioned.UnmatchedCauses);
            }

            rows.Add(new Row(
                name, pred.Count, Accuracy(pred, truth), verdict.EstimatedAccuracy!.Value, verdict.EstimatedAccuracyMargin!.Value, conf.Average(c => (double)c),
                sessionErrors.Count > 0 ? sessionErrors.Average() : double.NaN,
                conditioned.EstimatedAccuracy!.Value, conditioned.EstimatedAccuracyMargin!.Value,
                conditioned.NamedFaults.Sum(f => f.Predictions) / (double)pred.Count, conditioned.UnmatchedPredictions / (double)pred.Count,
                test.Count, sessionsNamed, sessionsUnmatched,
                conditionedErrors.Count > 0 ? conditionedErrors.Average() : double.NaN, named));
        }

        return new Result(reference.ReferenceAccuracy!.Value, refConf.Average(c => (double)c), refPred.Count, table, rows);
    }

    public static string Markdown(Result r)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"Reference (validation subjects 28–30, {r.ReferenceWindows} labelled windows): accuracy {r.ReferenceAccuracy:F3}, mean confidence {r.ReferenceConfidence:F3} (calibration gap {r.ReferenceConfidence - r.ReferenceAccuracy:+0.000;-0.000}).");
        sb.AppendLine();
        sb.AppendLine("Fault table stored in the reference (the same labelled windows with each standard fault applied, `InputFault.Standard`):");
        sb.AppendLine();
        sb.AppendLine("| fault (cause, channels: description) | windows | accuracy |");
        sb.AppendLine("|---|---:|---:|");
        foreach (var (fault, windows, accuracy) in r.FaultTable)
        {
            sb.AppendLine(inv, $"| {fault} | {windows} | {accuracy:F3} |");
        }

        sb.AppendLine();
        sb.AppendLine("| test streams | labelled windows | measured accuracy | CBPE ± 95 % | conditioned ± 95 % | windows under a named fault with an entry / without | sessions named (with / without entry) | \\|CBPE − measured\\| | \\|conditioned − measured\\| | per-device MAE CBPE / conditioned |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in r.Rows)
        {
            sb.AppendLine(inv, $"| {row.Condition} | {row.Windows} | {row.Measured:F3} | {row.Estimated:F3} ± {row.Margin:F3} | {row.Conditioned:F3} ± {row.ConditionedMargin:F3} | {100 * row.NamedShare:F0} % / {100 * row.UnmatchedShare:F0} % | {row.SessionsNamed} / {row.SessionsUnmatched} of {row.Sessions} | {100 * Math.Abs(row.Estimated - row.Measured):F1} pts | {100 * Math.Abs(row.Conditioned - row.Measured):F1} pts | {100 * row.SessionMae:F1} / {100 * row.ConditionedSessionMae:F1} pts |");
        }

        sb.AppendLine();
        sb.AppendLine("Named faults per condition (predictions estimated with each; \"no entry\": named causes the reference holds no accuracy for, whose predictions keep the confidence-based estimate and make it unreliable):");
        sb.AppendLine();
        foreach (var row in r.Rows)
        {
            sb.AppendLine(inv, $"- {row.Condition}: {(row.Named.Length == 0 ? "none" : row.Named)}");
        }

        sb.AppendLine();
        sb.AppendLine(inv, $"Mean absolute error over the conditions: conditioned on the named fault {100 * r.ConditionedMae:F1} points; CBPE alone {100 * r.Mae:F1} points (raw mean confidence {100 * r.RawMae:F1} points).");
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
    private static IEnumerable<(int End, Prediction Prediction, int True)> Predict(HarModel model, float[] samples, byte[] labels, int[] map, Func<int, int> source)
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

            yield return (start + len, model.Predict(samples.AsSpan(start * 6, len * 6)), map[majority]);
        }
    }
}
