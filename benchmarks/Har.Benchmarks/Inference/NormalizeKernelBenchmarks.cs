using BenchmarkDotNet.Attributes;
using Har.Inference.Windowing;

namespace Har.Benchmarks.Inference;

/// <summary>
/// The normalization kernel alone on one window: the hand-written six-channel Vector512/256 loop (what
/// <see cref="WindowNormalizer.Normalize"/> runs) against <c>TensorPrimitives.AddMultiply</c> over tiled
/// constants, a naive scalar loop, and a plain copy of the same bytes (baseline).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(RobustRatioConfig))]
public class NormalizeKernelBenchmarks
{
    private float[] _source = [];
    private float[] _destination = [];
    private WindowNormalizer _normalizer = null!;

    /// <summary>Gets or sets the frames normalized (200 = one window; 37 = odd).</summary>
    [Params(37, 200)]
    public int Frames { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(5);
        _source = new float[Frames * 6];
        for (var i = 0; i < _source.Length; i++)
        {
            _source[i] = (float)((rng.NextDouble() * 4) - 2);
        }

        _destination = new float[_source.Length];
        _normalizer = new WindowNormalizer([0.8f, 0.05f, -0.1f, 0f, 0.01f, -0.02f], [0.4f, 0.3f, 0.35f, 0.5f, 0.45f, 0.3f]);
    }

    [Benchmark(Baseline = true)]
    public void CopyTo() => _source.AsSpan().CopyTo(_destination);

    [Benchmark]
    public bool HandWrittenSimd() => _normalizer.Normalize(_source, _destination);

    [Benchmark]
    public void HandWrittenSimdUnchecked() => _normalizer.NormalizeUnchecked(_source, _destination);

    [Benchmark]
    public void TensorPrimitivesTiled() => _normalizer.NormalizeTensorPrimitives(_source, _destination);

    [Benchmark]
    public void Scalar() => _normalizer.NormalizeScalar(_source, _destination);
}
