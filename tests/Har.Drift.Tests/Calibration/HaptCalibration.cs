using System.Globalization;
using System.Text;
using Har.Cli.Data;
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

    private static readonly Lazy<List<HaptSession>> Sessions = new(() => HaptDataset.Load(TestPaths.RequireSharedData()));
    private static readonly Lazy<ReferenceProfile> TrainProfile = new(BuildProfile);
    private static readonly Lazy<Result> Study = new(Run);

    public static List<HaptSession> AllSessions => Sessions.Value;

    public static ReferenceProfile Profile => TrainProfile.Value;

    public static Result Get() => Study.Value;

    public sealed record Row(string Name, int Windows, int[] DriftedPerChannel, int AnyDrifted, int Gravity, int Rotation, int AnyFlag);

    public sealed record Result(string ProfileHash, int TrainWindows, double[] KsFloor, double[] PsiFloor, SensorConsistencyReference Consistency, IReadOnlyList<Row> Rows)
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
            sb.AppendLine(inv, $"| rotation misfit | median misfit angle / turn | ≤ {c.RotationResidualLimit:F3} | {c.RotationWindows} |");
            return sb.ToString();
        }

        public string ToMarkdown()
        {
            var inv = CultureInfo.InvariantCulture;
            var sb = new StringBuilder();
            sb.Append("| condition | windows |");
            foreach (var c in ChannelNames)
            {
                sb.Append(inv, $" {c} |");
            }

            sb.AppendLine(" any channel drifted | gravity magnitude | rotation mismatch | flagged (drifted or any finding) |");
            sb.Append("|---|---:|");
            foreach (var _ in ChannelNames)
            {
                sb.Append("---:|");
            }

            sb.AppendLine("---:|---:|---:|---:|");
            foreach (var r in Rows)
            {
                sb.Append(inv, $"| {r.Name} | {r.Windows} |");
                foreach (var d in r.DriftedPerChannel)
                {
                    sb.Append(inv, $" {Pct(d, r.Windows)} |");
                }

                sb.AppendLine(inv, $" {Pct(r.AnyDrifted, r.Windows)} | {Pct(r.Gravity, r.Windows)} | {Pct(r.Rotation, r.Windows)} | {Pct(r.AnyFlag, r.Windows)} |");
            }

            return sb.ToString();
        }

        private static string Pct(int k, int n) => (100.0 * k / n).ToString("F1", CultureInfo.InvariantCulture) + " %";
    }

    public static IEnumerable<(HaptSession Session, float[] Frames)> TestWindows()
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

        return builder.Build("UCI HAPT, training subjects (official split), raw 50 Hz, 1-minute windows");
    }

    private static Result Run()
    {
        var profile = Profile;
        var scorer = new DriftScorer(profile);
        var windows = TestWindows().ToList();
        var rows = new List<Row> { Evaluate("clean (false alarms)", scorer, windows, null) };
        foreach (var (name, inject) in Shifts)
        {
            rows.Add(Evaluate(name, scorer, windows, inject));
        }

        return new Result(profile.Hash, profile.Floors.Windows, profile.Floors.KsFloor, profile.Floors.PsiFloor, profile.SensorConsistency!, rows);
    }

    private static Row Evaluate(string name, DriftScorer scorer, List<(HaptSession Session, float[] Frames)> windows, Action<float[]>? inject)
    {
        var perChannel = new int[ChannelNames.Length];
        int any = 0, anyFlag = 0, gravity = 0, rotation = 0;
        foreach (var (_, frames) in windows)
        {
            var w = (float[])frames.Clone();
            inject?.Invoke(w);
            var report = scorer.Score(w);
            var drifted = false;
            for (var c = 0; c < perChannel.Length; c++)
            {
                if (report.Channels[c].Verdict == DriftVerdict.Drifted)
                {
                    perChannel[c]++;
                    drifted = true;
                }
            }

            any += drifted ? 1 : 0;
            gravity += report.Findings.Any(f => f.Kind == SensorFindingKind.GravityMagnitude) ? 1 : 0;
            rotation += report.Findings.Any(f => f.Kind == SensorFindingKind.RotationMismatch) ? 1 : 0;
            anyFlag += report.Flagged ? 1 : 0;
        }

        return new Row(name, windows.Count, perChannel, any, gravity, rotation, anyFlag);
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
