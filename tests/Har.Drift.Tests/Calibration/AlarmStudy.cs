using System.Globalization;
using Har.Inference.Data;

namespace Har.Drift.Tests.Calibration;

/// <summary>
/// The alarm study of docs/drift-calibration.md: HAPT test-subject sessions streamed as devices against the
/// training-subject profile (scored every 30 s on the last minute, as <see cref="DeviceDriftMonitor"/> does), clean
/// (false alarms per device-hour) and with faults that start mid-session from random parameters (time to detect,
/// named cause).
/// </summary>
internal static class AlarmStudy
{
    public const double Rate = 50;
    public const int Channels = 6;

    /// <summary>A fault kind: its name, the cause the alarm should name, and how to inject it from an onset frame.</summary>
    public sealed record FaultKind(string Name, DriftCause Expected, Func<Random, float[], int, Injected> Inject);

    /// <summary>An injected stream: the samples, the onset frame, the channels the cause should be named on (empty: any), real seconds per frame after the onset, and the drawn parameters.</summary>
    public sealed record Injected(float[] Samples, int Onset, string[] Channels, double SecondsPerFrameAfter, string Parameters);

    /// <summary>One session run: every scoring (end frame, report).</summary>
    public sealed record Run(string Session, Injected? Fault, List<(int End, DriftReport Report)> Scorings);

    public static readonly string[] ChannelNames = HaptCalibration.ChannelNames;

    public static readonly FaultKind[] Faults =
    [
        new("acc gain ×1.05", DriftCause.Gain, (rng, s, onset) => Transform(s, onset, [], 1 / Rate, "all three accelerometer axes", f => { f[0] *= 1.05f; f[1] *= 1.05f; f[2] *= 1.05f; })),
        new("acc offset +0.1 g (random axis)", DriftCause.Offset, (rng, s, onset) =>
        {
            var k = rng.Next(3);
            return Transform(s, onset, [ChannelNames[k]], 1 / Rate, ChannelNames[k], f => f[k] += 0.1f);
        }),
        new("rotation 20° (random axis)", DriftCause.Rotation, (rng, s, onset) => Rotate(rng, s, onset, 20)),
        new("rotation 10° (random axis)", DriftCause.Rotation, (rng, s, onset) => Rotate(rng, s, onset, 10)),
        new("acc noise σ = 0.05 g", DriftCause.Noise, (rng, s, onset) =>
        {
            var noise = new Random(rng.Next());
            return Transform(s, onset, [], 1 / Rate, "white Gaussian on ax ay az", f =>
            {
                for (var k = 0; k < 3; k++)
                {
                    f[k] += (float)(0.05 * Synthetic.Gaussian(noise));
                }
            });
        }),
        new("40 Hz fed as 50 Hz", DriftCause.SampleRate, (rng, s, onset) => Resample(s, onset, 40)),
        new("gyroscope in deg/s", DriftCause.Units, (rng, s, onset) => Transform(s, onset, [], 1 / Rate, "×57.3 on gx gy gz", f =>
        {
            for (var k = 3; k < 6; k++)
            {
                f[k] *= (float)(180 / Math.PI);
            }
        })),
        new("sign flip (random channel)", DriftCause.SignFlip, (rng, s, onset) =>
        {
            var k = rng.Next(6);
            return Transform(s, onset, [ChannelNames[k]], 1 / Rate, ChannelNames[k], f => f[k] = -f[k]);
        }),
    ];

    /// <summary>Streams one session: scores the last window every <paramref name="step"/> frames.</summary>
    public static List<(int End, DriftReport Report)> Stream(DriftScorer scorer, float[] samples, int window, int step)
    {
        var history = new DeviceHistory();
        var frames = samples.Length / Channels;
        var result = new List<(int, DriftReport)>();
        for (var end = window; end <= frames; end += step)
        {
            var start = end - window;
            result.Add((end, scorer.Score(samples.AsSpan(start * Channels, window * Channels), history, start, default)));
        }

        return result;
    }

    /// <summary>Draws an onset between 60 s after the start and 150 s before the end (stream frames).</summary>
    public static int DrawOnset(Random rng, int frames) => (int)(60 * Rate) + rng.Next(Math.Max(1, frames - (int)(210 * Rate)));

    public static List<Run> RunClean(DriftScorer scorer, IEnumerable<SensorSession> sessions, int window, int step) =>
        [.. sessions.AsParallel().AsOrdered().Select(s => new Run(Name(s), null, Stream(scorer, s.Samples, window, step)))];

    public static List<Run> RunFault(DriftScorer scorer, FaultKind kind, IEnumerable<SensorSession> sessions, int draws, int seed, int window, int step)
    {
        var jobs = new List<(SensorSession Session, int Seed)>();
        var seeds = new Random(seed);
        foreach (var s in sessions)
        {
            for (var d = 0; d < draws; d++)
            {
                jobs.Add((s, seeds.Next()));
            }
        }

        return [.. jobs.AsParallel().AsOrdered().Select(j =>
        {
            var rng = new Random(j.Seed);
            var injected = kind.Inject(rng, j.Session.Samples, DrawOnset(rng, j.Session.Length));
            return new Run(Name(j.Session), injected, Stream(scorer, injected.Samples, window, step));
        })];
    }

    /// <summary>Alarm episodes (a scoring raising the alarm after one that did not) of a run, at or before <paramref name="beforeFrame"/>.</summary>
    public static int Episodes(Run run, int beforeFrame = int.MaxValue)
    {
        var count = 0;
        var raised = false;
        foreach (var (end, report) in run.Scorings)
        {
            if (end > beforeFrame)
            {
                break;
            }

            var now = report.Alarm?.Raised == true;
            count += now && !raised ? 1 : 0;
            raised = now;
        }

        return count;
    }

    /// <summary>Seconds from the onset to the first raised scoring whose window holds frames after the onset, and that scoring's alarm; null when never.</summary>
    public static (double Seconds, DriftAlarm Alarm)? Detection(Run run)
    {
        var fault = run.Fault!;
        foreach (var (end, report) in run.Scorings)
        {
            if (end > fault.Onset && report.Alarm is { Raised: true } alarm)
            {
                return ((end - fault.Onset) * fault.SecondsPerFrameAfter, alarm);
            }
        }

        return null;
    }

    /// <summary>
    /// The raised alarms of the first episode after the onset, in order (empty when never raised), and whether the
    /// episode lasted to the run's last scoring.
    /// </summary>
    public static (List<DriftAlarm> Alarms, bool ToTheEnd) FirstEpisode(Run run)
    {
        var alarms = new List<DriftAlarm>();
        foreach (var (end, report) in run.Scorings)
        {
            if (end <= run.Fault!.Onset)
            {
                continue;
            }

            if (report.Alarm is { Raised: true } alarm)
            {
                alarms.Add(alarm);
            }
            else if (alarms.Count > 0)
            {
                return (alarms, false);
            }
        }

        return (alarms, alarms.Count > 0);
    }

    /// <summary>The alarm of the last raised scoring of the first episode after the onset (the cause the episode ends with), or null when never raised.</summary>
    public static DriftAlarm? EpisodeEnd(Run run) => FirstEpisode(run).Alarms.LastOrDefault();

    public static double Hours(Run run, int frames) => frames / Rate / 3600;

    public static string Name(SensorSession s) => string.Create(CultureInfo.InvariantCulture, $"s{s.Subject}/{s.Session}");

    /// <summary>Exact (Garwood) two-sided 95 % interval of a Poisson count.</summary>
    public static (double Lo, double Hi) PoissonInterval(int k)
    {
        var lo = k == 0 ? 0 : 0.5 * ChiSquareQuantile(0.025, 2 * k);
        var hi = 0.5 * ChiSquareQuantile(0.975, 2 * (k + 1));
        return (lo, hi);
    }

    /// <summary>Wilson 95 % interval of a proportion.</summary>
    public static (double Lo, double Hi) Wilson(int k, int n)
    {
        if (n == 0)
        {
            return (0, 1);
        }

        const double z = 1.959964;
        var p = (double)k / n;
        var denom = 1 + (z * z / n);
        var centre = (p + (z * z / (2 * n))) / denom;
        var half = z * Math.Sqrt((p * (1 - p) / n) + (z * z / (4.0 * n * n))) / denom;
        return (Math.Max(0, centre - half), Math.Min(1, centre + half));
    }

    private static double ChiSquareQuantile(double p, int df)
    {
        double lo = 0, hi = 10 * (df + 10);
        for (var i = 0; i < 200; i++)
        {
            var mid = 0.5 * (lo + hi);
            if (1 - CategoricalTests.ChiSquareSf(mid, df) < p)
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }

        return 0.5 * (lo + hi);
    }

    private static Injected Transform(float[] samples, int onset, string[] channels, double secondsPerFrame, string parameters, Action<Span<float>> frame)
    {
        var copy = (float[])samples.Clone();
        for (var f = onset; f < copy.Length / Channels; f++)
        {
            frame(copy.AsSpan(f * Channels, Channels));
        }

        return new Injected(copy, onset, channels, secondsPerFrame, string.Create(CultureInfo.InvariantCulture, $"{parameters}, onset {onset / Rate:F0} s"));
    }

    private static Injected Rotate(Random rng, float[] samples, int onset, double degrees)
    {
        // Uniform random axis on the sphere; the same rotation of both sensors (the device turned in its mount).
        double x, y, z, n;
        do
        {
            x = Synthetic.Gaussian(rng);
            y = Synthetic.Gaussian(rng);
            z = Synthetic.Gaussian(rng);
            n = Math.Sqrt((x * x) + (y * y) + (z * z));
        }
        while (n < 1e-6);

        return RotateFrom(samples, onset, x / n, y / n, z / n, degrees);
    }

    /// <summary>Both sensors from <paramref name="onset"/> on turned by <paramref name="degrees"/> about the unit axis (x, y, z) (the device turned in its mount).</summary>
    public static Injected RotateFrom(float[] samples, int onset, double x, double y, double z, double degrees)
    {
        var t = degrees * Math.PI / 180;
        double c = Math.Cos(t), s = Math.Sin(t), v = 1 - c;
        double[] r =
        [
            (x * x * v) + c, (x * y * v) - (z * s), (x * z * v) + (y * s),
            (y * x * v) + (z * s), (y * y * v) + c, (y * z * v) - (x * s),
            (z * x * v) - (y * s), (z * y * v) + (x * s), (z * z * v) + c,
        ];
        return Transform(samples, onset, [], 1 / Rate, string.Create(CultureInfo.InvariantCulture, $"{degrees:F0}° about ({x:F2}, {y:F2}, {z:F2})"), f =>
        {
            for (var b = 0; b < 6; b += 3)
            {
                double a0 = f[b], a1 = f[b + 1], a2 = f[b + 2];
                f[b] = (float)((r[0] * a0) + (r[1] * a1) + (r[2] * a2));
                f[b + 1] = (float)((r[3] * a0) + (r[4] * a1) + (r[5] * a2));
                f[b + 2] = (float)((r[6] * a0) + (r[7] * a1) + (r[8] * a2));
            }
        });
    }

    /// <summary>From the onset on, the device samples at <paramref name="trueRate"/> Hz (linear interpolation of the 50 Hz recording) but the stream still claims 50 Hz.</summary>
    private static Injected Resample(float[] samples, int onset, double trueRate)
    {
        var frames = samples.Length / Channels;
        var after = (int)Math.Floor((frames - 1 - onset) * trueRate / Rate);
        var result = new float[(onset + after) * Channels];
        samples.AsSpan(0, onset * Channels).CopyTo(result);
        for (var j = 0; j < after; j++)
        {
            var t = onset + (j * Rate / trueRate);
            var i = (int)t;
            var w = (float)(t - i);
            for (var c = 0; c < Channels; c++)
            {
                result[((onset + j) * Channels) + c] = ((1 - w) * samples[(i * Channels) + c]) + (w * samples[((i + 1) * Channels) + c]);
            }
        }

        return new Injected(result, onset, [], 1 / trueRate, string.Create(CultureInfo.InvariantCulture, $"{trueRate:F0} Hz from onset {onset / Rate:F0} s"));
    }

}
