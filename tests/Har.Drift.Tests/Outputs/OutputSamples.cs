namespace Har.Drift.Tests.Outputs;

/// <summary>Deterministic synthetic model outputs: a class mix drawn in short runs (as consecutive windows are) and confidences.</summary>
internal static class OutputSamples
{
    public static readonly string[] Labels = ["WALKING", "UPSTAIRS", "DOWNSTAIRS", "SITTING", "STANDING", "LAYING"];

    public static readonly double[] ReferenceMix = [0.2, 0.15, 0.15, 0.17, 0.18, 0.15];

    public static (int[] Classes, float[] Confidence, float[] Entropy) Draw(int seed, int n, double[] mix, double confidenceShift = 0, int maxRun = 4)
    {
        var rng = new Random(seed);
        var classes = new int[n];
        var confidence = new float[n];
        var entropy = new float[n];
        var i = 0;
        while (i < n)
        {
            var u = rng.NextDouble();
            var c = 0;
            for (var acc = mix[0]; c < mix.Length - 1 && u > acc; acc += mix[++c])
            {
            }

            for (var run = 1 + rng.Next(maxRun); run > 0 && i < n; run--, i++)
            {
                classes[i] = c;
                var conf = Math.Clamp(0.55 + (0.45 * Math.Sqrt(rng.NextDouble())) - confidenceShift, 1.0 / 6, 1.0);
                confidence[i] = (float)conf;
                entropy[i] = (float)(-(conf * Math.Log(conf)) - (conf < 1 ? (1 - conf) * Math.Log((1 - conf) / 5) : 0));
            }
        }

        return (classes, confidence, entropy);
    }

    /// <summary>An output reference of 5000 reference windows with <see cref="ReferenceMix"/>.</summary>
    public static OutputReference Reference()
    {
        var (c, conf, ent) = Draw(seed: 1, n: 5000, ReferenceMix);
        return OutputReference.FromPredictions(Labels, c, conf, ent);
    }

    public static ReferenceProfile Profile(ReferenceProfile inputs) => inputs.WithOutputs(Reference());
}
