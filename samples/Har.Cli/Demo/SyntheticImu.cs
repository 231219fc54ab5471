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
/// activities, built from statistics of the UCI HAPT training subjects (windows lying wholly inside one activity;
/// <c>tools/training/synthetic_imu_stats.py</c> computes every table below):
/// <list type="bullet">
/// <item>Every activity has its per-label mean on all six channels (the posture's gravity direction; the stairs' mean
/// yaw rate, since the recorded stairs turn).</item>
/// <item>Static postures add sensor noise and a slow body sway (a first-order autoregressive process) with the
/// median within-window standard deviation of each posture: standing sways more than sitting, mostly in yaw.</item>
/// <item>Gait is the mean stride cycle: per activity and channel, the first eight harmonics of the stride frequency
/// (two steps), phase-aligned on the vertical step harmonic and averaged over the recorded windows, plus noise with
/// the remaining (non-periodic) variance. Sinusoids at a guessed cadence were misread by networks trained on HAPT
/// (walking as downstairs or as a transition); the recorded cycle shape is what they recognise.</item>
/// </list>
/// Each simulated person has their own cadence, gait style (the harmonics' amplitudes and phases perturbed), device
/// tilt on the waist and gyroscope bias. This is <b>not</b> real data: it lets the demo run on a fresh clone, and is
/// labelled as synthetic wherever it is shown.
/// </summary>
internal static class SyntheticImu
{
    public const int SampleRateHz = 50;

    /// <summary>The activities generated, by the shared data's names.</summary>
    public static readonly string[] Activities = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"];

    // Per-label mean of each channel (ax ay az in g, gx gy gz in rad/s) over the HAPT training subjects' windows.
    private static readonly double[][] Mean =
    [
        [0.997, -0.181, -0.072, 0.002, 0.000, -0.001],
        [0.950, -0.273, -0.157, 0.339, -0.096, -0.068],
        [0.993, -0.149, -0.058, -0.368, 0.078, 0.007],
        [0.950, 0.142, 0.154, 0.007, 0.002, -0.002],
        [1.001, -0.165, -0.034, 0.006, 0.001, 0.000],
        [0.071, 0.651, 0.561, 0.006, 0.002, -0.001],
    ];

    // Static postures (sitting, standing, laying): median within-window standard deviation per channel (4 s windows).
    private static readonly double[][] StaticStd =
    [
        [0.004, 0.005, 0.007, 0.008, 0.015, 0.009],
        [0.004, 0.008, 0.008, 0.023, 0.016, 0.013],
        [0.006, 0.005, 0.007, 0.013, 0.020, 0.007],
    ];

    // The white part of it (sensor noise: the standard deviation of successive differences / √2); the rest is sway.
    private static readonly double[] SensorNoise = [0.003, 0.003, 0.005, 0.005, 0.007, 0.005];

    // Sway: a first-order autoregressive process with this coefficient per frame (a time constant of about 0.2 s).
    private const double SwayCoefficient = 0.9;

    // Gait (walking, upstairs, downstairs): mean stride frequency (Hz; the step frequency is twice it).
    private static readonly double[] StrideHz = [0.873, 0.809, 0.860];

    // Gait: the standard deviation per channel of what the mean stride cycle does not explain.
    private static readonly double[][] GaitNoise =
    [
        [0.137, 0.129, 0.113, 0.375, 0.508, 0.260],
        [0.150, 0.130, 0.114, 0.509, 0.459, 0.330],
        [0.248, 0.172, 0.157, 0.636, 0.590, 0.354],
    ];

    // Gait: the mean stride cycle, [activity][channel][harmonic 1…8] as a_h cos(hθ) − b_h sin(hθ), θ the stride phase.
    private static readonly double[][][] CycleCos =
    [
        [
            [-0.020, 0.234, 0.068, 0.019, 0.023, 0.050, -0.004, 0.036],
            [-0.053, -0.058, 0.024, -0.004, -0.058, 0.029, -0.006, 0.018],
            [0.053, -0.023, -0.009, -0.001, 0.015, 0.023, 0.001, 0.014],
            [0.019, 0.010, 0.052, -0.006, 0.110, 0.000, -0.058, 0.012],
            [0.002, 0.024, 0.290, 0.001, 0.022, -0.039, -0.004, -0.028],
            [0.092, -0.082, 0.224, 0.021, 0.007, 0.041, 0.009, 0.039],
        ],
        [
            [-0.046, 0.287, 0.007, 0.040, 0.003, 0.051, 0.008, 0.021],
            [-0.072, -0.096, -0.004, -0.017, 0.015, -0.009, -0.019, -0.005],
            [0.106, -0.027, 0.012, -0.018, 0.007, -0.010, -0.004, -0.006],
            [0.047, -0.104, 0.032, 0.017, -0.008, 0.025, 0.016, 0.003],
            [-0.235, -0.088, 0.070, -0.027, 0.027, -0.035, 0.008, -0.015],
            [-0.084, 0.115, 0.041, 0.044, 0.012, 0.027, 0.016, 0.004],
        ],
        [
            [0.012, 0.382, -0.037, 0.121, -0.009, 0.037, -0.011, 0.006],
            [0.030, -0.098, 0.040, -0.033, 0.008, -0.004, -0.006, 0.007],
            [-0.047, -0.044, -0.011, -0.013, -0.011, 0.002, 0.002, 0.007],
            [0.230, 0.035, -0.002, 0.035, 0.033, 0.010, 0.023, 0.000],
            [-0.134, 0.072, 0.139, 0.074, 0.033, -0.002, 0.045, 0.011],
            [0.018, -0.088, 0.087, -0.085, 0.003, -0.005, -0.031, -0.016],
        ],
    ];

    private static readonly double[][][] CycleSin =
    [
        [
            [0.000, 0.000, 0.070, 0.053, -0.001, 0.056, -0.001, -0.024],
            [-0.019, 0.112, -0.005, 0.056, -0.002, 0.038, 0.041, 0.029],
            [0.047, 0.101, -0.007, 0.044, 0.002, 0.030, -0.009, 0.024],
            [-0.407, 0.029, 0.065, -0.001, -0.178, 0.005, -0.074, -0.005],
            [0.257, -0.109, -0.137, -0.018, -0.063, 0.024, -0.008, 0.022],
            [0.060, 0.109, -0.163, 0.002, -0.032, -0.003, 0.009, -0.020],
        ],
        [
            [-0.019, 0.000, 0.022, 0.046, 0.017, 0.019, 0.005, -0.007],
            [-0.036, 0.108, -0.016, 0.045, -0.006, 0.008, 0.004, -0.001],
            [0.070, 0.087, 0.010, 0.032, -0.010, 0.011, -0.006, 0.001],
            [-0.022, -0.026, -0.016, 0.018, 0.053, 0.007, -0.047, 0.005],
            [0.414, -0.063, 0.041, -0.018, 0.027, -0.003, -0.036, -0.004],
            [0.296, 0.044, -0.036, -0.027, -0.013, -0.009, 0.019, 0.010],
        ],
        [
            [-0.013, 0.000, 0.050, -0.038, 0.017, -0.009, 0.011, 0.014],
            [-0.053, -0.033, -0.002, -0.046, -0.005, -0.025, -0.008, -0.010],
            [0.048, -0.021, -0.005, -0.038, -0.012, -0.019, -0.014, -0.005],
            [-0.085, 0.038, 0.126, 0.002, 0.036, -0.003, 0.013, 0.003],
            [-0.124, 0.103, 0.110, -0.007, 0.005, -0.006, 0.021, 0.018],
            [-0.074, -0.113, 0.117, 0.028, 0.043, 0.015, 0.025, -0.008],
        ],
    ];

    private const int Harmonics = 8;

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
            var rng = new Random(SessionSeed(seed, prefix, i));
            var subject = firstSubject + i;
            sessions.Add(Session(rng, $"{prefix}-{subject:D2}", subject, seconds * SampleRateHz));
        }

        return sessions;
    }

    /// <summary>
    /// The seed of one session's generator: a fixed mix of the seed, the prefix and the index, the same in every process
    /// (<see cref="HashCode"/> is randomised per process, so it would give other samples on every run).
    /// </summary>
    internal static int SessionSeed(int seed, string prefix, int index)
    {
        unchecked
        {
            var h = 0xcbf29ce484222325UL;
            foreach (var c in prefix)
            {
                h = (h ^ c) * 0x100000001b3UL;
            }

            h ^= (ulong)(uint)seed * 0x9e3779b97f4a7c15UL;
            h ^= (ulong)(uint)index * 0xc2b2ae3d27d4eb4fUL;
            h ^= h >> 31;
            h *= 0xbf58476d1ce4e5b9UL;
            h ^= h >> 29;
            return (int)(h & 0x7fffffff);
        }
    }

    private static SyntheticSession Session(Random rng, string id, int subject, int frames)
    {
        var person = new Person(rng);
        var samples = new float[frames * 6];
        var labels = new string?[frames];
        var t = 0;
        var previous = -1;
        var lastGravity = person.Tilt(Mean[4]);
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

            var gravity = person.Tilt(Mean[activity]);

            // A 1.5–3 s posture change (unlabeled) between activities: gravity turns smoothly, the body moves.
            var transition = Math.Min(frames - t, (int)((1.5 + (1.5 * rng.NextDouble())) * SampleRateHz));
            for (var k = 0; k < transition; k++, t++)
            {
                var u = (1 - Math.Cos(Math.PI * (k + 1) / transition)) / 2;
                Write(samples, t, Lerp(lastGravity, gravity, u), rng, 0.06, 0.25, person);
                labels[t] = null;
            }

            var length = Math.Min(frames - t, (int)((12 + (18 * rng.NextDouble())) * SampleRateHz));
            if (activity >= 3)
            {
                Posture(samples, t, length, activity, gravity, rng, person);
            }
            else
            {
                Gait(samples, t, length, activity, gravity, rng, person);
            }

            for (var k = 0; k < length; k++, t++)
            {
                labels[t] = Activities[activity];
            }

            lastGravity = gravity;
            previous = activity;
        }

        return new SyntheticSession(id, subject, samples, labels);
    }

    /// <summary>A static posture: gravity (the gyroscope's mean and bias), slow sway and sensor noise.</summary>
    private static void Posture(float[] samples, int t0, int length, int activity, double[] g, Random rng, Person p)
    {
        var std = StaticStd[activity - 3];
        Span<double> swayStd = stackalloc double[6];
        Span<double> sway = stackalloc double[6];
        for (var c = 0; c < 6; c++)
        {
            swayStd[c] = Math.Sqrt(Math.Max(0, (std[c] * std[c]) - (SensorNoise[c] * SensorNoise[c])));
            sway[c] = Gauss(rng, swayStd[c]);
        }

        var innovation = Math.Sqrt(1 - (SwayCoefficient * SwayCoefficient));
        for (var k = 0; k < length; k++)
        {
            var o = (t0 + k) * 6;
            for (var c = 0; c < 6; c++)
            {
                sway[c] = (SwayCoefficient * sway[c]) + Gauss(rng, swayStd[c] * innovation);
                var level = c < 3 ? g[c] : Mean[activity][c] + p.GyroBias[c - 3];
                samples[o + c] = (float)(level + sway[c] + Gauss(rng, SensorNoise[c]));
            }
        }
    }

    /// <summary>Gait: the person's stride cycle at their cadence on top of the posture's mean, plus the non-periodic rest as noise.</summary>
    private static void Gait(float[] samples, int t0, int length, int activity, double[] g, Random rng, Person p)
    {
        var stride = StrideHz[activity] * p.Cadence * (1 + Gauss(rng, 0.02));
        var phase = rng.NextDouble() * 2 * Math.PI;
        var (cos, sin) = p.Cycle(activity);
        Span<double> ch = stackalloc double[Harmonics];
        Span<double> sh = stackalloc double[Harmonics];
        for (var k = 0; k < length; k++)
        {
            var theta = (2 * Math.PI * stride * k / SampleRateHz) + phase;
            for (var h = 0; h < Harmonics; h++)
            {
                ch[h] = Math.Cos((h + 1) * theta);
                sh[h] = Math.Sin((h + 1) * theta);
            }

            var o = (t0 + k) * 6;
            for (var c = 0; c < 6; c++)
            {
                var wave = 0.0;
                for (var h = 0; h < Harmonics; h++)
                {
                    wave += (cos[c][h] * ch[h]) - (sin[c][h] * sh[h]);
                }

                var level = c < 3 ? g[c] : Mean[activity][c] + p.GyroBias[c - 3];
                samples[o + c] = (float)(level + wave + Gauss(rng, GaitNoise[activity][c]));
            }
        }
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

    /// <summary>What differs between people and devices: cadence, gait style, how the phone sits on the waist, the gyroscope's bias.</summary>
    private sealed class Person
    {
        private readonly double[] _tilt;
        private readonly double _scale;
        private readonly (double[][] Cos, double[][] Sin)[] _cycles;

        public Person(Random rng)
        {
            Cadence = 1 + Gauss(rng, 0.06);
            GyroBias = [Gauss(rng, 0.01), Gauss(rng, 0.01), Gauss(rng, 0.01)];
            _tilt = [Gauss(rng, 0.02), Gauss(rng, 0.05), Gauss(rng, 0.08)];
            _scale = 1.005 + (0.025 * rng.NextDouble());

            // Gait style: each harmonic's amplitude scaled by about ±15 % and its phase turned by about ±0.15 rad.
            _cycles = new (double[][], double[][])[StrideHz.Length];
            for (var a = 0; a < _cycles.Length; a++)
            {
                var cos = new double[6][];
                var sin = new double[6][];
                for (var c = 0; c < 6; c++)
                {
                    cos[c] = new double[Harmonics];
                    sin[c] = new double[Harmonics];
                    for (var h = 0; h < Harmonics; h++)
                    {
                        var scale = 1 + Gauss(rng, 0.15);
                        var turn = Gauss(rng, 0.15);
                        var (re, im) = (CycleCos[a][c][h] * scale, CycleSin[a][c][h] * scale);
                        cos[c][h] = (re * Math.Cos(turn)) - (im * Math.Sin(turn));
                        sin[c][h] = (re * Math.Sin(turn)) + (im * Math.Cos(turn));
                    }
                }

                _cycles[a] = (cos, sin);
            }
        }

        /// <summary>The person's step-rate factor (about 1 ± 0.06, the spread of the recorded subjects' cadences).</summary>
        public double Cadence { get; }

        public double[] GyroBias { get; }

        /// <summary>The person's stride cycle of a gait activity.</summary>
        public (double[][] Cos, double[][] Sin) Cycle(int activity) => _cycles[activity];

        /// <summary>The posture's gravity direction, tilted by how this person wears the phone, at about 1 g (with the phone's calibration offset).</summary>
        public double[] Tilt(double[] g)
        {
            var v = new[] { g[0] + _tilt[0], g[1] + _tilt[1], g[2] + _tilt[2] };
            var norm = Math.Sqrt((v[0] * v[0]) + (v[1] * v[1]) + (v[2] * v[2]));
            return [v[0] / norm * _scale, v[1] / norm * _scale, v[2] / norm * _scale];
        }
    }
}
