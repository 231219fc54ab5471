namespace Har.Cli.Demo;

/// <summary>One generated recording: interleaved <c>ax ay az gx gy gz</c> frames at 50 Hz and a label name per frame (<see langword="null"/> = transition, unlabeled).</summary>
/// <param name="Id">The stream's name.</param>
/// <param name="Subject">The simulated person (drift profiles group by it).</param>
/// <param name="Samples">Interleaved frames, <c>6 × Length</c> values.</param>
/// <param name="Labels">The activity performed at each frame, or <see langword="null"/> while changing posture.</param>
internal sealed record SyntheticSession(string Id, int Subject, float[] Samples, string?[] Labels)
{
    public int Length => Labels.Length;
}

/// <summary>
/// A seeded generator of plausible waist-worn smartphone IMU streams at 50 Hz in the shared data's units
/// (acceleration in g including gravity, x pointing up when upright; angular rate in rad/s) for the six basic
/// activities. Static postures put about 1 g along the posture's axes (the per-label means of the UCI HAPT data)
/// with sensor noise and slow sway; walking adds a periodic gait at 1.7–2.0 steps/s (vertical bounce at the step
/// frequency and its harmonic, lateral sway and yaw at the stride frequency); stairs turn (a mean yaw rate of
/// ±0.26 rad/s) and bounce harder. Each simulated person has their own cadence, small device tilt and gyroscope
/// bias. This is <b>not</b> real data: it lets the demo run on a fresh clone, and is labelled as synthetic wherever
/// it is shown.
/// </summary>
internal static class SyntheticImu
{
    public const int SampleRateHz = 50;

    /// <summary>The activities generated, by the shared data's names.</summary>
    public static readonly string[] Activities = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"];

    // Mean gravity direction per activity (ax, ay, az), from the per-label means of the UCI HAPT data (in g).
    private static readonly double[][] Gravity =
    [
        [0.998, -0.180, -0.060],
        [0.953, -0.269, -0.148],
        [0.996, -0.153, -0.055],
        [0.957, 0.129, 0.146],
        [1.001, -0.166, -0.021],
        [0.069, 0.638, 0.541],
    ];

    // Mean yaw rate (gx, rad/s): the stairs turn.
    private static readonly double[] MeanYaw = [0.0, 0.26, -0.26, 0.0, 0.0, 0.0];

    /// <summary>Generates <paramref name="count"/> sessions of about <paramref name="seconds"/> seconds each, one simulated person per session.</summary>
    /// <param name="seed">The seed: the same seed gives the same samples.</param>
    /// <param name="count">How many sessions.</param>
    /// <param name="seconds">The approximate length of each session.</param>
    /// <param name="prefix">The sessions' name prefix.</param>
    /// <param name="firstSubject">The first simulated person's id.</param>
    public static List<SyntheticSession> Generate(int seed, int count, int seconds, string prefix, int firstSubject = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(seconds, 10);
        var sessions = new List<SyntheticSession>(count);
        for (var i = 0; i < count; i++)
        {
            // One generator per session, so a session does not depend on how many others were generated before it.
            var rng = new Random(HashCode.Combine(seed, prefix.Length, i, 0x5eed));
            var subject = firstSubject + i;
            sessions.Add(Session(rng, $"{prefix}-{subject:D2}", subject, seconds * SampleRateHz));
        }

        return sessions;
    }

    private static SyntheticSession Session(Random rng, string id, int subject, int frames)
    {
        var person = new Person(rng);
        var samples = new float[frames * 6];
        var labels = new string?[frames];
        var t = 0;
        var previous = -1;
        double[] lastGravity = [.. Gravity[4]];
        var cycle = new Queue<int>();
        while (t < frames)
        {
            // Every activity once per cycle, in a random order, never the same twice in a row.
            if (cycle.Count == 0)
            {
                var order = Enumerable.Range(0, Activities.Length).ToArray();
                rng.Shuffle(order);
                if (order[0] == previous)
                {
                    (order[0], order[1]) = (order[1], order[0]);
                }

                foreach (var a in order)
                {
                    cycle.Enqueue(a);
                }
            }

            var activity = cycle.Dequeue();

            var gravity = person.Tilt(Gravity[activity]);

            // A 1.5–3 s posture change (unlabeled) between activities: gravity turns smoothly, the body moves.
            var transition = Math.Min(frames - t, (int)((1.5 + (1.5 * rng.NextDouble())) * SampleRateHz));
            for (var k = 0; k < transition; k++, t++)
            {
                var u = (1 - Math.Cos(Math.PI * (k + 1) / transition)) / 2;
                Write(samples, t, Lerp(lastGravity, gravity, u), rng, 0.06, 0.25, person);
                labels[t] = null;
            }

            var length = Math.Min(frames - t, (int)((12 + (18 * rng.NextDouble())) * SampleRateHz));
            var phase = rng.NextDouble() * 2 * Math.PI;
            for (var k = 0; k < length; k++, t++)
            {
                Activity(samples, t, k, activity, gravity, phase, rng, person);
                labels[t] = Activities[activity];
            }

            lastGravity = gravity;
            previous = activity;
        }

        return new SyntheticSession(id, subject, samples, labels);
    }

    private static void Activity(float[] samples, int t, int k, int activity, double[] g, double phase, Random rng, Person p)
    {
        var time = (double)k / SampleRateHz;
        if (activity >= 3)
        {
            // Static posture: gravity, slow sway (0.1–0.3 Hz), sensor noise.
            var sway = 0.004 * Math.Sin((2 * Math.PI * 0.2 * time) + phase);
            var o = t * 6;
            samples[o] = (float)(g[0] + sway + Gauss(rng, 0.008));
            samples[o + 1] = (float)(g[1] - sway + Gauss(rng, 0.008));
            samples[o + 2] = (float)(g[2] + Gauss(rng, 0.008));
            samples[o + 3] = (float)(p.GyroBias[0] + Gauss(rng, 0.012));
            samples[o + 4] = (float)(p.GyroBias[1] + Gauss(rng, 0.010));
            samples[o + 5] = (float)(p.GyroBias[2] + Gauss(rng, 0.008));
            return;
        }

        // Gait: the step frequency f bounces the body vertically (x), the stride frequency f/2 sways it sideways
        // (y) and turns it (yaw, x axis); forward (z) surges at f. Stairs: slower up, faster and harder down.
        var (cadence, bounce) = activity switch
        {
            1 => (p.Cadence * 0.88, 0.30),
            2 => (p.Cadence * 1.06, 0.45),
            _ => (p.Cadence, 0.26),
        };
        var w = 2 * Math.PI * cadence * time;
        var s = 2 * Math.PI * cadence / 2 * time;
        var i = t * 6;
        samples[i] = (float)(g[0] + (bounce * Math.Sin(w + phase)) + (0.35 * bounce * Math.Sin((2 * w) + phase + 0.8)) + Gauss(rng, 0.05));
        samples[i + 1] = (float)(g[1] + (0.12 * Math.Sin(s + phase)) + Gauss(rng, 0.04));
        samples[i + 2] = (float)(g[2] + (0.5 * bounce * Math.Sin(w + phase + (Math.PI / 2))) + Gauss(rng, 0.04));
        samples[i + 3] = (float)(MeanYaw[activity] + p.GyroBias[0] + (0.35 * Math.Sin(s + phase + 0.3)) + Gauss(rng, 0.06));
        samples[i + 4] = (float)(p.GyroBias[1] + (0.45 * Math.Sin(w + phase + 1.1)) + (0.15 * Math.Sin(s + phase)) + Gauss(rng, 0.06));
        samples[i + 5] = (float)(p.GyroBias[2] + (0.55 * Math.Sin(s + phase + 2.0)) + Gauss(rng, 0.05));
    }

    private static void Write(float[] samples, int t, double[] g, Random rng, double accNoise, double gyroNoise, Person p)
    {
        var o = t * 6;
        for (var c = 0; c < 3; c++)
        {
            samples[o + c] = (float)(g[c] + Gauss(rng, accNoise));
            samples[o + 3 + c] = (float)(p.GyroBias[c] + Gauss(rng, gyroNoise));
        }
    }

    private static double[] Lerp(double[] a, double[] b, double u) => [a[0] + ((b[0] - a[0]) * u), a[1] + ((b[1] - a[1]) * u), a[2] + ((b[2] - a[2]) * u)];

    private static double Gauss(Random rng, double std)
    {
        // Box–Muller.
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>What differs between people and devices: cadence, how the phone sits on the waist, the gyroscope's bias.</summary>
    private sealed class Person(Random rng)
    {
        public double Cadence { get; } = 1.75 + (0.25 * rng.NextDouble());

        public double[] GyroBias { get; } = [Gauss(rng, 0.01), Gauss(rng, 0.01), Gauss(rng, 0.01)];

        private readonly double[] _tilt = [Gauss(rng, 0.03), Gauss(rng, 0.04), Gauss(rng, 0.04)];

        private readonly double _scale = 1.005 + (0.025 * rng.NextDouble());

        /// <summary>The posture's gravity direction, tilted by how this person wears the phone, at about 1 g (with the phone's calibration offset).</summary>
        public double[] Tilt(double[] g)
        {
            var v = new[] { g[0] + _tilt[0], g[1] + _tilt[1], g[2] + _tilt[2] };
            var norm = Math.Sqrt((v[0] * v[0]) + (v[1] * v[1]) + (v[2] * v[2]));
            return [v[0] / norm * _scale, v[1] / norm * _scale, v[2] / norm * _scale];
        }
    }
}
