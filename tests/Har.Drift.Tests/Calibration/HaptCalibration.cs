using System.Globalization;
using System.Text;
using Har.Inference.Data;
using Har.Testing;

namespace Har.Drift.Tests.Calibration;

/// <summary>
/// The calibration study of docs/drift-calibration.md: profile from the HAPT training subjects, 1-minute windows
/// of every test-subject session scored clean (false alarms) and with injected sensor faults (power).
/// </summary>
internal static class HaptCalibration
{
    public const int Window = 3000;
    public static readonly string[] ChannelNames = ["ax", "ay", "az", "gx", "gy", "gz"];

    private static readonly Lazy<List<SensorSession>> Sessions = new(() => SensorDataset.Load(TestPaths.RequireSharedData()));
    private static readonly Lazy<ReferenceProfile> TrainProfile = new(BuildProfile);
    private static readonly Lazy<Result> Study = new(Run);

    public static List<SensorSession> AllSessions => Sessions.Value;

    public static ReferenceProfile Profile => TrainProfile.Value;

    /// <summary>Gets the cross-fitted alarm evidence of the training recordings (from building <see cref="Profile"/>).</summary>
    public static IReadOnlyList<AlarmCalibration.EvidenceRun> TrainEvidence
    {
        get
        {
            _ = TrainProfile.Value;
            return trainEvidence!;
        }
    }

    private static IReadOnlyList<AlarmCalibration.EvidenceRun>? trainEvidence;

    public static Result Get() => Study.Value;

    public sealed record Row(string Name, int Windows, int[] DriftedPerChannel, int AnyDrifted, int Gravity, int Rotation, int TurnOffset, int AnyFlag);

    public sealed record Result(string ProfileHash, int TrainWindows, double[] KsFloor, double[] PsiFloor, SensorConsistencyReference Consistency, IReadOnlyList<Row> Rows, IReadOnlyList<Row> FirstMinuteRows, IReadOnlyList<Row> WindowOnlyRows)
    {
        public string ConsistencyMarkdown()
        {
            var inv = CultureInfo.InvariantCulture;
            var c = Consistency;
            var sb = new StringBuilder();
            sb.AppendLine("| check | statistic | healthy range | training windows |");
            sb.AppendLine("|---|---|---:|---:|");
            sb.AppendLine(inv, $"| reference accelerometer sphere | offset b₀ (g), radius r₀ (g) | ({c.AccelerometerOffset[0]:F4}, {c.AccelerometerOffset[1]:F4}, {c.AccelerometerOffset[2]:F4}), {c.GravityMagnitude:F4} | {c.Windows} |");
            sb.AppendLine(inv, $"| gravity magnitude, all blocks | median of \\|v − b₀\\| / r₀ − 1 | {c.MagnitudeBounds[0]:F4} … {c.MagnitudeBounds[1]:F4} | {c.Windows} |");
            for (var k = 0; k < 3; k++)
            {
                sb.AppendLine(inv, $"| gravity magnitude, blocks along {ChannelNames[k]} | median signed residual | {c.AxisLower[k]:F4} … {c.AxisUpper[k]:F4} | {c.AxisWindows[k]} |");
            }

            sb.AppendLine(inv, $"| rotation gain | median gyroscope turn / gravity turn | {c.RotationGainBounds[0]:F3} … {c.RotationGainBounds[1]:F3} | {c.RotationWindows} |");
            for (var k = 0; k < 3; k++)
            {
                var lo = c.TurnOffsetLower?[k] ?? double.NaN;
                var hi = c.TurnOffsetUpper?[k] ?? double.NaN;
                sb.AppendLine(inv, $"| turn offset along {ChannelNames[k]} | least-squares δ of (I − R) δ = a₂ − R a₁ over the pairs (g) | {lo:F4} … {hi:F4} | {c.TurnOffsetWindows?[k] ?? 0} |");
            }

            sb.AppendLine(inv, $"| rotation misfit | median misfit angle / turn | ≤ {c.RotationResidualLimit:F3} | {c.RotationWindows} |");
            return sb.ToString();
        }

        public string ToMarkdown() => Table(Rows);

        public string FirstMinuteMarkdown() => Table(FirstMinuteRows);

        public string WindowOnlyMarkdown() => Table(WindowOnlyRows);

        private static string Table(IReadOnlyList<Row> rows)
        {
            var inv = CultureInfo.InvariantCulture;
            var sb = new StringBuilder();
            sb.Append("| condition | windows |");
            foreach (var c in ChannelNames)
            {
                sb.Append(inv, $" {c} |");
            }

            sb.AppendLine(" any channel drifted | gravity magnitude | rotation mismatch | turn offset | flagged (drifted or any finding) |");
            sb.Append("|---|---:|");
            foreach (var _ in ChannelNames)
            {
                sb.Append("---:|");
            }

            sb.AppendLine("---:|---:|---:|---:|---:|");
            foreach (var r in rows)
            {
                sb.Append(inv, $"| {r.Name} | {r.Windows} |");
                foreach (var d in r.DriftedPerChannel)
                {
                    sb.Append(inv, $" {Pct(d, r.Windows)} |");
                }

                sb.AppendLine(inv, $" {Pct(r.AnyDrifted, r.Windows)} | {Pct(r.Gravity, r.Windows)} | {Pct(r.Rotation, r.Windows)} | {Pct(r.TurnOffset, r.Windows)} | {Pct(r.AnyFlag, r.Windows)} |");
            }

            return sb.ToString();
        }

        private static string Pct(int k, int n) => (100.0 * k / n).ToString("F1", CultureInfo.InvariantCulture) + " %";
    }

    public static IEnumerable<(SensorSession Session, float[] Frames)> TestWindows()
    {
        foreach (var s in AllSessions.Where(s => s.Split == "test"))
        {
            for (var start = 0; start + Window <= s.Length; start += Window)
            {
                yield return (s, s.Samples.AsSpan(start * 6, Window * 6).ToArray());
            }
        }
    }

    public static readonly (string Name, Action<float[]> Inject)[] Shifts =
    [
        ("acc offset +0.1 g on ax", w => Offset(w, 0, 0.1f)),
        ("acc offset +0.1 g on ay", w => Offset(w, 1, 0.1f)),
        ("acc offset +0.1 g on az", w => Offset(w, 2, 0.1f)),
        ("gyro gain x1.2 (gx, gy, gz)", w => { Gain(w, 3, 1.2f); Gain(w, 4, 1.2f); Gain(w, 5, 1.2f); }),
        ("swapped axes ax <-> ay", w => Swap(w, 0, 1)),
        ("swapped axes gx <-> gy", w => Swap(w, 3, 4)),
        ("accelerometer stuck (ax, ay, az constant)", w => { Stuck(w, 0); Stuck(w, 1); Stuck(w, 2); }),
        ("one channel stuck (gz constant)", w => Stuck(w, 5)),
    ];

    private static ReferenceProfile BuildProfile()
    {
        var builder = new ReferenceProfileBuilder(ChannelNames);
        foreach (var s in AllSessions.Where(s => s.Split == "train"))
        {
            builder.AddRecording($"subject-{s.Subject}", s.Samples);
        }

        var profile = builder.Build("UCI HAPT, training subjects (official split), raw 50 Hz, 1-minute windows");
        trainEvidence = builder.CalibrationEvidence;
        return profile;
    }

    private static Result Run()
    {
        var profile = Profile;
        var scorer = new DriftScorer(profile);
        var windows = TestWindows().ToList();
        var rows = new List<Row>();
        var first = new List<Row>();
        var alone = new List<Row>();
        foreach (var (name, inject) in Shifts.Prepend(("clean (false alarms)", null!)))
        {
            var (all, firstMinute) = Evaluate(name, scorer, windows, inject, withHistory: true);
            rows.Add(all);
            first.Add(firstMinute);
            alone.Add(Evaluate(name, scorer, windows, inject, withHistory: false).All);
        }

        return new Result(profile.Hash, profile.Floors.Windows, profile.Floors.KsFloor, profile.Floors.PsiFloor, profile.SensorConsistency!, rows, first, alone);
    }

    /// <summary>
    /// Scores every window of every session in time order with one <see cref="DeviceHistory"/> per session (the
    /// injected fault, like a real one, is present from the session's start), as the streaming monitor does; returns
    /// the counts over all windows and over the first window of each session (a fresh device). Without history,
    /// every window is scored on its own (for comparison).
    /// </summary>
    private static (Row All, Row FirstMinute) Evaluate(string name, DriftScorer scorer, List<(SensorSession Session, float[] Frames)> windows, Action<float[]>? inject, bool withHistory)
    {
        var all = new Counts(ChannelNames.Length);
        var first = new Counts(ChannelNames.Length);
        DeviceHistory? history = null;
        SensorSession? current = null;
        foreach (var (session, frames) in windows)
        {
            var isFirst = !ReferenceEquals(session, current);
            if (isFirst || !withHistory)
            {
                history = new DeviceHistory();
                current = session;
            }

            var w = (float[])frames.Clone();
            inject?.Invoke(w);
            var report = scorer.Score(w, history!);
            all.Add(report);
            if (isFirst)
            {
                first.Add(report);
            }
        }

        return (all.ToRow(name), first.ToRow(name));
    }

    private sealed class Counts(int channels)
    {
        private readonly int[] _perChannel = new int[channels];
        private int _windows, _any, _anyFlag, _gravity, _rotation, _turnOffset;

        public void Add(DriftReport report)
        {
            _windows++;
            var drifted = false;
            for (var c = 0; c < _perChannel.Length; c++)
            {
                if (report.Channels[c].Verdict == DriftVerdict.Drifted)
                {
                    _perChannel[c]++;
                    drifted = true;
                }
            }

            _any += drifted ? 1 : 0;
            _gravity += report.Findings.Any(f => f.Kind == SensorFindingKind.GravityMagnitude) ? 1 : 0;
            _rotation += report.Findings.Any(f => f.Kind == SensorFindingKind.RotationMismatch) ? 1 : 0;
            _turnOffset += report.Findings.Any(f => f.Kind == SensorFindingKind.AccelerometerOffset) ? 1 : 0;
            _anyFlag += report.Flagged ? 1 : 0;
        }

        public Row ToRow(string name) => new(name, _windows, (int[])_perChannel.Clone(), _any, _gravity, _rotation, _turnOffset, _anyFlag);
    }

    private static void Offset(float[] w, int ch, float delta)
    {
        for (var i = ch; i < w.Length; i += 6)
        {
            w[i] += delta;
        }
    }

    private static void Gain(float[] w, int ch, float gain)
    {
        for (var i = ch; i < w.Length; i += 6)
        {
            w[i] *= gain;
        }
    }

    private static void Swap(float[] w, int a, int b)
    {
        for (var f = 0; f < w.Length; f += 6)
        {
            (w[f + a], w[f + b]) = (w[f + b], w[f + a]);
        }
    }

    private static void Stuck(float[] w, int ch)
    {
        var v = w[ch];
        for (var i = ch; i < w.Length; i += 6)
        {
            w[i] = v;
        }
    }
}
