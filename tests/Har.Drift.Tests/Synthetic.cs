namespace Har.Drift.Tests;

/// <summary>Deterministic synthetic 6-axis recordings (AR(1) noise around activity-dependent levels) for unit tests.</summary>
internal static class Synthetic
{
    public static readonly string[] Channels = ["ax", "ay", "az", "gx", "gy", "gz"];

    /// <summary>A standard normal draw (Box–Muller) from <paramref name="rng"/>.</summary>
    public static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    public static float[] Recording(int seed, int frames, double tilt = 0)
    {
        var rng = new Random(seed);
        var w = new float[frames * 6];
        var state = new double[6];
        for (var f = 0; f < frames; f++)
        {
            var walking = (f / 1500) % 2 == 0;
            for (var c = 0; c < 6; c++)
            {
                var noise = (rng.NextDouble() - 0.5) * (walking ? 0.6 : 0.05);
                state[c] = (0.8 * state[c]) + noise;
            }

            var swing = walking ? Math.Sin(f * 2 * Math.PI / 50.0) * 0.3 : 0;
            w[(f * 6) + 0] = (float)(Math.Cos(tilt) + swing + state[0]);
            w[(f * 6) + 1] = (float)(Math.Sin(tilt) + state[1]);
            w[(f * 6) + 2] = (float)(0.1 + state[2]);
            w[(f * 6) + 3] = (float)((walking ? swing : 0) + state[3]);
            w[(f * 6) + 4] = (float)state[4];
            w[(f * 6) + 5] = (float)state[5];
        }

        return w;
    }

    public static ReferenceProfile Profile(int windowLength = 1000)
    {
        var builder = new ReferenceProfileBuilder(Channels, new ReferenceProfileOptions { SegmentLength = windowLength, MaxSortedSample = 2000 });
        for (var s = 0; s < 6; s++)
        {
            builder.AddRecording($"subject-{s}", Recording(100 + s, 9000, tilt: s * 0.02));
        }

        return builder.Build("synthetic");
    }
}
