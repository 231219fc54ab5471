using System.Runtime.CompilerServices;
using Har.Inference.Models;

namespace Har.Inference.Tests;

/// <summary>Paths of the tiny fixture models (made by Fixtures/make_fixtures.py) and shared helpers.</summary>
internal static class Fixture
{
    public static string Model(string file) => Path.Combine(AppContext.BaseDirectory, "Fixtures", file);

    public static string Probs => Model("tiny-probs-1.0.0.onnx");

    public static string Logits => Model("tiny-logits-1.1.0.onnx");

    public static string HugeLogits => Model("tiny-huge-logits-1.2.0.onnx");

    public static string Short => Model("tiny-short-1.0.0.onnx");

    /// <summary>Options that keep tests deterministic and quiet: no metrics in the global registry, no batching wait.</summary>
    public static HarModelOptions Options(Action<HarModelOptions>? configure = null)
    {
        var o = new HarModelOptions { EnableMetrics = false, MaxBatchWait = TimeSpan.Zero };
        configure?.Invoke(o);
        return o;
    }

    /// <summary>Deterministic pseudo-sensor frames (values in a realistic range).</summary>
    public static float[] Frames(int frames, int channels = 6, int seed = 1)
    {
        var rng = new Random(seed);
        var data = new float[frames * channels];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (float)((rng.NextDouble() * 4) - 2);
        }

        return data;
    }

    /// <summary>Creates the ONNX Runtime environment with global thread pools before any test touches ONNX Runtime.</summary>
    [ModuleInitializer]
    internal static void InitializeRuntime() => OrtRuntime.EnsureEnvironment();
}
