using System.Diagnostics;
using System.Globalization;
using System.Text;
using Har.Inference.Data;

namespace Har.Drift.Tests.Calibration;

/// <summary>Runs the alarm study and renders its Markdown section of docs/drift-calibration.md.</summary>
internal static class AlarmStudyReport
{
    public sealed record FaultRow(string Fault, DriftCause Expected, int Runs, int PreOnsetAlarms, int Within2Min, int Detected, double MedianSeconds, Dictionary<string, int> Causes, int Correct, int DetectedInTwo, int CorrectAtEnd);

    public sealed record Result(int Seed, int Draws, int Step, int Window, double CleanHours, int CleanAlarms, int CleanSessions, int CleanSessionsAlarmed, double TrainHours, string Thresholds, double Budget, List<FaultRow> Faults, Dictionary<string, int> Unchecked, int Scorings, double Seconds);

    public static Result Run(ReferenceProfile profile, IReadOnlyList<SensorSession> test, int draws, int seed, IReadOnlyList<AlarmStudy.FaultKind> faults)
    {
        var clock = Stopwatch.StartNew();
        var options = new DriftScoringOptions();
        var scorer = new DriftScorer(profile, options);
        var window = profile.SegmentLength;
        var step = window / 2;
        var clean = AlarmStudy.RunClean(scorer, test, window, step);
        var hours = test.Sum(s => s.Length) / AlarmStudy.Rate / 3600;
        var alarms = clean.Sum(r => AlarmStudy.Episodes(r));
        var missing = new Dictionary<string, int>(StringComparer.Ordinal);
        var scorings = 0;
        foreach (var run in clean)
        {
            foreach (var (_, report) in run.Scorings)
            {
                scorings++;
                foreach (var note in report.Unchecked)
                {
                    var key = note.Split(':')[0];
                    missing[key] = missing.GetValueOrDefault(key) + 1;
                }
            }
        }

        var rows = new List<FaultRow>();
        for (var i = 0; i < faults.Count; i++)
        {
            var kind = faults[i];
            var runs = AlarmStudy.RunFault(scorer, kind, test, draws, seed + (1000 * (i + 1)), window, step);
            var pre = 0;
            var within = 0;
            var detected = 0;
            var correct = 0;
            var correctInTwo = 0;
            var correctAtEnd = 0;
            var times = new List<double>();
            var causes = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var run in runs)
            {
                pre += AlarmStudy.Episodes(run, run.Fault!.Onset) > 0 ? 1 : 0;
                if (AlarmStudy.Detection(run) is not { } d)
                {
                    causes["(not detected)"] = causes.GetValueOrDefault("(not detected)") + 1;
                    continue;
                }

                detected++;
                times.Add(d.Seconds);
                var inTwo = d.Seconds <= 120;
                within += inTwo ? 1 : 0;
                var name = d.Alarm.Cause.ToString();
                causes[name] = causes.GetValueOrDefault(name) + 1;
                var right = d.Alarm.Cause == kind.Expected && (run.Fault.Channels.Length == 0 || run.Fault.Channels.All(c => d.Alarm.Channels.Contains(c)));
                correct += right ? 1 : 0;
                correctInTwo += right && inTwo ? 1 : 0;
                var last = AlarmStudy.EpisodeEnd(run)!;
                correctAtEnd += last.Cause == kind.Expected && (run.Fault.Channels.Length == 0 || run.Fault.Channels.All(c => last.Channels.Contains(c))) ? 1 : 0;
            }

            rows.Add(new FaultRow(kind.Name, kind.Expected, runs.Count, pre, within, detected, times.Count > 0 ? Median(times) : double.NaN, causes, correct, correctInTwo, correctAtEnd));
        }

        var alarmRef = profile.Alarms!;
        return new Result(seed, draws, step, window, hours, alarms, clean.Count, clean.Count(r => AlarmStudy.Episodes(r) > 0), alarmRef.DeviceHours, string.Join(", ", alarmRef.FalseAlarmRates.Keys.Order(StringComparer.Ordinal).Select(k => string.Create(CultureInfo.InvariantCulture, $"{k} {alarmRef.Threshold(k, options.FalseAlarmsPerTenHours):F2}"))), options.FalseAlarmsPerTenHours, rows, missing, scorings, clock.Elapsed.TotalSeconds);
    }

    public static string Markdown(Result r)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        var (lo, hi) = AlarmStudy.PoissonInterval(r.CleanAlarms);
        sb.AppendLine(inv, $"Seed {r.Seed}, {r.Draws} draw(s) per test session and fault, scored every {r.Step / AlarmStudy.Rate:F0} s on the last {r.Window / AlarmStudy.Rate:F0} s; alarm thresholds h per check ({r.Thresholds}) for a budget of {r.Budget:G3} false alarm(s) per 10 device-hours (calibrated on {r.TrainHours:F2} training device-hours); run time {r.Seconds:F0} s.");
        sb.AppendLine();
        sb.AppendLine("| clean test streams | value |");
        sb.AppendLine("|---|---:|");
        sb.AppendLine(inv, $"| sessions (devices) | {r.CleanSessions} |");
        sb.AppendLine(inv, $"| device-hours | {r.CleanHours:F2} |");
        sb.AppendLine(inv, $"| alarm episodes | {r.CleanAlarms} |");
        sb.AppendLine(inv, $"| sessions with an alarm | {r.CleanSessionsAlarmed} of {r.CleanSessions} |");
        sb.AppendLine(inv, $"| false alarms per 10 device-hours (95 % CI, exact Poisson) | {10 * r.CleanAlarms / r.CleanHours:F1} ({10 * lo / r.CleanHours:F1} – {10 * hi / r.CleanHours:F1}) |");
        sb.AppendLine();
        sb.AppendLine("| fault (starts mid-session) | runs | alarm before onset | detected | within 2 min (95 % CI) | median time to detect | cause named right | right and within 2 min | right at the episode's end |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var f in r.Faults)
        {
            var (wl, wh) = AlarmStudy.Wilson(f.Within2Min, f.Runs);
            sb.AppendLine(inv, $"| {f.Fault} | {f.Runs} | {f.PreOnsetAlarms} | {Pct(f.Detected, f.Runs)} | {Pct(f.Within2Min, f.Runs)} ({100 * wl:F0}–{100 * wh:F0} %) | {(double.IsNaN(f.MedianSeconds) ? "–" : f.MedianSeconds.ToString("F0", inv) + " s")} | {Pct(f.Correct, f.Detected)} of detected | {Pct(f.DetectedInTwo, f.Runs)} | {Pct(f.CorrectAtEnd, f.Detected)} of detected |");
        }

        sb.AppendLine();
        var causes = Enum.GetNames<DriftCause>().Where(c => r.Faults.Any(f => f.Causes.ContainsKey(c))).Append("(not detected)").ToList();
        sb.Append("| fault \\ named cause |");
        foreach (var c in causes)
        {
            sb.Append(inv, $" {c} |");
        }

        sb.AppendLine();
        sb.Append("|---|");
        sb.AppendLine(string.Concat(causes.Select(_ => "---:|")));
        foreach (var f in r.Faults)
        {
            sb.Append(inv, $"| {f.Fault} (expected {f.Expected}) |");
            foreach (var c in causes)
            {
                var n = f.Causes.GetValueOrDefault(c);
                sb.Append(n == 0 ? " · |" : $" {n} |");
            }

            sb.AppendLine();
        }

        sb.AppendLine();
        sb.AppendLine(inv, $"Checks without evidence over the {r.Scorings} clean scorings:");
        sb.AppendLine();
        sb.AppendLine("| check without evidence | scorings | share |");
        sb.AppendLine("|---|---:|---:|");
        foreach (var (k, v) in r.Unchecked.OrderByDescending(kv => kv.Value))
        {
            sb.AppendLine(inv, $"| {k} | {v} | {Pct(v, r.Scorings)} |");
        }

        return sb.ToString();
    }

    public static string Bounds(ReferenceProfile profile, IReadOnlyList<AlarmCalibration.EvidenceRun> evidence)
    {
        var inv = CultureInfo.InvariantCulture;
        var a = profile.Alarms!;
        var sb = new StringBuilder();
        sb.AppendLine("| check | bound (training recordings: 98 % quantile, widened by 10 % of its distance from the median) |");
        sb.AppendLine("|---|---|");
        sb.AppendLine(inv, $"| noise floor per channel (ax ay az gx gy gz) | ≤ {string.Join(", ", a.NoiseFloorUpper.Select(v => v.ToString("G3", inv)))} |");
        sb.AppendLine(inv, $"| noise floor / device's earlier median | ≤ {string.Join(", ", a.NoiseRatioUpper.Select(v => v.ToString("F2", inv)))} |");
        sb.AppendLine(inv, $"| still-block spread (ax ay az) | ≤ {string.Join(", ", a.StillSpreadUpper.Select(v => v.ToString("G3", inv)))} |");
        sb.AppendLine(inv, $"| gravity-direction shift against the device's earlier blocks | ≤ {a.DirectionShiftUpper:F1}° |");
        sb.AppendLine(inv, $"| cadence / device's earlier cadence | {a.CadenceRatioBounds[0]:F3} … {a.CadenceRatioBounds[1]:F3} |");
        sb.AppendLine(inv, $"| median \\|ω\\| in gait / device's earlier | {a.GyroscopeRatioBounds[0]:F3} … {a.GyroscopeRatioBounds[1]:F3} |");
        sb.AppendLine(inv, $"| reference median \\|a\\|, median \\|ω\\| in gait | {a.AccelerometerScale:G4}, {a.GyroscopeScale:G4} |");
        sb.AppendLine();
        var scorings = evidence.Sum(r => r.Scorings.Count);
        var hours = evidence.Sum(r => r.Frames) / AlarmStudy.Rate / 3600;
        sb.AppendLine(inv, $"Alarm thresholds from the cross-fitted training evidence ({evidence.Count} recordings, {hours:F2} device-hours, {scorings} scorings; each recording scored against a profile built without its subject's fold):");
        sb.AppendLine();
        sb.AppendLine("| check | training scorings failed (cross-fitted) | simulated false alarms per 10 device-hours at h = 1.5 / 3 / 6 | h for a budget of 1 | simulated rate at h | alarm episodes of the training recordings at h |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|");
        var total = 0;
        foreach (var (check, rates) in a.FalseAlarmRates.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var h = a.Threshold(check, 1);
            var i = Array.FindIndex(a.Grid, g => g >= h);
            var failed = evidence.Sum(r => r.Scorings.Count(s => s.Any(e => e.Check == check)));
            var episodes = new long[1];
            foreach (var run in evidence)
            {
                AlarmCalibration.CountEpisodes([.. run.Scorings.Select(s => s.Where(e => e.Check == check).Sum(e => e.Weight))], [h], episodes);
            }

            total += (int)episodes[0];
            sb.AppendLine(inv, $"| {check} | {Pct1(failed, scorings)} | {rates[0]:G3} / {rates[6]:G3} / {rates[18]:G3} | {h:F2} | {(i >= 0 ? rates[i].ToString("G3", inv) : "beyond the grid")} | {episodes[0]} |");
        }

        sb.AppendLine("| checks that never failed (rotation consistency, turn offset, orientation change, …) | 0 % | 0 | 1.50 | 0 | 0 |");
        sb.AppendLine();
        sb.AppendLine(inv, $"Replayed with these thresholds, the {evidence.Count} training recordings raise {total} alarm episode(s) in {hours:F2} device-hours (they set the thresholds, so this is a consistency check, not a test).");

        return sb.ToString();
    }

    private static string Pct(int k, int n) => n == 0 ? "–" : (100.0 * k / n).ToString("F0", CultureInfo.InvariantCulture) + " %";

    private static string Pct1(int k, int n) => n == 0 ? "–" : (100.0 * k / n).ToString("F1", CultureInfo.InvariantCulture) + " %";

    private static double Median(List<double> v)
    {
        var s = v.ToArray();
        Array.Sort(s);
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[(s.Length / 2) - 1] + s[s.Length / 2]);
    }
}
