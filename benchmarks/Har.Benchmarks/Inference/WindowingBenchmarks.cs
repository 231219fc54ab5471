using BenchmarkDotNet.Attributes;
using Har.Inference;
using Har.Inference.Windowing;

namespace Har.Benchmarks.Inference;

/// <summary>
/// Windowing + normalization of a 6-channel stream into a batch tensor (window 200, stride 100), against a
/// plain <see cref="Span{T}.CopyTo"/> of the same output bytes (baseline) and a naive scalar normalization.
/// Each invocation appends 20 000 frames in chunks of <see cref="ChunkFrames"/> and emits 200 windows.
/// The Har rows append through a <see cref="WindowStreamHandle"/> handle (no lookup by id), except
/// <see cref="WindowAndNormalizeById"/>, which appends by stream id.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(RobustRatioConfig))]
public class WindowingBenchmarks : IDisposable
{
    private const int L = 200;
    private const int S = 100;
    private const int C = 6;
    private const int StreamFrames = 20_000;
    private const int BatchWindows = 32;

    private float[] _stream = [];
    private float[] _tensor = [];
    private StreamWindower _windower = null!;
    private WindowStreamHandle _handle = null!;
    private WindowNormalizer _normalizer = null!;

    /// <summary>Gets or sets the frames per append (odd sizes included).</summary>
    [Params(50, 137, 1000)]
    public int ChunkFrames { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // The same two arrays for every benchmark case, baseline included: their placement in memory (relative
        // 4 KiB offsets, cache sets) moved the copy's time by a fifth between allocations on the test machine.
        _stream = SharedStream;
        _tensor = SharedTensor;
        _windower = new StreamWindower(L, S, C);
        _handle = _windower.OpenStream("device");
        _normalizer = NewNormalizer();

        // Prime the stream so every invocation is steady state (exactly 200 windows).
        WindowAndNormalize();
    }

    /// <summary>The same output bytes with a plain copy: 200 windows of 200 × 6 floats cut from the stream.</summary>
    [Benchmark(Baseline = true)]
    public int SpanCopyTo()
        => CopyWindows(_stream, _tensor);

    /// <summary>StreamWindower (buffering with the NaN/infinity check, chunked appends through a stream handle) + normalization fused into the copy to the tensor, as <see cref="HarModel.Predict(StreamWindows, Memory{float}, Span{Prediction})"/> does.</summary>
    [Benchmark]
    public int WindowAndNormalize()
    {
        var emitted = 0;
        for (var offset = 0; offset < StreamFrames; offset += ChunkFrames)
        {
            var frames = Math.Min(ChunkFrames, StreamFrames - offset);
            var windows = _handle.Append(_stream.AsSpan(offset * C, frames * C));
            for (var w = 0; w < windows.Count; w++, emitted++)
            {
                _normalizer.NormalizeUnchecked(windows[w], _tensor.AsSpan((emitted % BatchWindows) * L * C, L * C));
            }
        }

        return emitted;
    }

    /// <summary>The same, appending by stream id (<see cref="StreamWindower.Append(string, ReadOnlySpan{float})"/>).</summary>
    [Benchmark]
    public int WindowAndNormalizeById()
    {
        var emitted = 0;
        for (var offset = 0; offset < StreamFrames; offset += ChunkFrames)
        {
            var frames = Math.Min(ChunkFrames, StreamFrames - offset);
            var windows = _windower.Append("device", _stream.AsSpan(offset * C, frames * C));
            for (var w = 0; w < windows.Count; w++, emitted++)
            {
                _normalizer.NormalizeUnchecked(windows[w], _tensor.AsSpan((emitted % BatchWindows) * L * C, L * C));
            }
        }

        return emitted;
    }

    /// <summary>The same (through the handle) with the naive scalar normalization loop.</summary>
    [Benchmark]
    public int WindowAndNormalizeScalar()
    {
        var emitted = 0;
        for (var offset = 0; offset < StreamFrames; offset += ChunkFrames)
        {
            var frames = Math.Min(ChunkFrames, StreamFrames - offset);
            var windows = _handle.Append(_stream.AsSpan(offset * C, frames * C));
            for (var w = 0; w < windows.Count; w++, emitted++)
            {
                _normalizer.NormalizeScalar(windows[w], _tensor.AsSpan((emitted % BatchWindows) * L * C, L * C));
            }
        }

        return emitted;
    }

    /// <summary>Gets the benchmark stream shared by every case of this process (pinned, so it never moves): see <see cref="NewStream"/>.</summary>
    internal static float[] SharedStream { get; } = NewStream();

    /// <summary>Gets the batch tensor (32 windows) shared by every case of this process (pinned).</summary>
    internal static float[] SharedTensor { get; } = GC.AllocateUninitializedArray<float>(BatchWindows * L * C, pinned: true);

    /// <summary>The benchmark stream: <c>StreamFrames</c> frames of six channels, uniform in [−2, 2), seed 42, in a pinned array.</summary>
    internal static float[] NewStream()
    {
        var rng = new Random(42);
        var stream = GC.AllocateArray<float>(StreamFrames * C, pinned: true);
        for (var i = 0; i < stream.Length; i++)
        {
            stream[i] = (float)((rng.NextDouble() * 4) - 2);
        }

        return stream;
    }

    /// <summary>The benchmark normalization (plausible per-channel means and standard deviations).</summary>
    internal static WindowNormalizer NewNormalizer() =>
        new([0.8f, 0.05f, -0.1f, 0f, 0.01f, -0.02f], [0.4f, 0.3f, 0.35f, 0.5f, 0.45f, 0.3f]);

    /// <summary>The baseline: the same output bytes with a plain copy, 200 windows of 200 × 6 floats cut from the stream.</summary>
    internal static int CopyWindows(float[] stream, float[] tensor)
    {
        var windows = StreamFrames / S;
        for (var w = 0; w < windows; w++)
        {
            var start = Math.Min(w * S, StreamFrames - L);
            stream.AsSpan(start * C, L * C).CopyTo(tensor.AsSpan((w % BatchWindows) * L * C, L * C));
        }

        return windows;
    }

    /// <summary>Stops the windower's sweep timer.</summary>
    [GlobalCleanup]
    public void Dispose()
    {
        _windower.Dispose();
        GC.SuppressFinalize(this);
    }
}
