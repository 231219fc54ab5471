using BenchmarkDotNet.Attributes;
using Har.Inference;
using Har.Inference.Windowing;

namespace Har.Benchmarks.Inference;

/// <summary>
/// Where the time of <see cref="WindowingBenchmarks.WindowAndNormalize"/> goes with 50-frame appends:
/// its parts measured alone on the same data (20 000 frames of 6 channels, 400 appends, 200 windows of
/// 200 frames), against the same plain copy baseline.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(RobustRatioConfig))]
public class WindowingPartsBenchmarks : IDisposable
{
    private const int L = 200;
    private const int S = 100;
    private const int C = 6;
    private const int StreamFrames = 20_000;
    private const int BatchWindows = 32;
    private const int ChunkFrames = 50;

    private float[] _stream = [];
    private float[] _tensor = [];
    private float[] _ring = [];
    private StreamWindower _windower = null!;
    private WindowStreamHandle _handle = null!;
    private WindowNormalizer _normalizer = null!;

    [GlobalSetup]
    public void Setup()
    {
        _stream = WindowingBenchmarks.SharedStream;
        _tensor = WindowingBenchmarks.SharedTensor;
        _ring = new float[4 * L * C];
        _windower = new StreamWindower(L, S, C);
        _handle = _windower.OpenStream("device");
        _normalizer = WindowingBenchmarks.NewNormalizer();
        HeartbeatClock.EnsureStarted();
        AppendOnly();
    }

    /// <summary>The plain copy of the output bytes (as in <see cref="WindowingBenchmarks"/>).</summary>
    [Benchmark(Baseline = true)]
    public int SpanCopyTo()
        => WindowingBenchmarks.CopyWindows(_stream, _tensor);

    /// <summary>The same windows normalized instead of copied (the normalization kernel alone, no windower).</summary>
    [Benchmark]
    public int NormalizeOnly()
    {
        var windows = StreamFrames / S;
        for (var w = 0; w < windows; w++)
        {
            var start = Math.Min(w * S, StreamFrames - L);
            _normalizer.NormalizeUnchecked(_stream.AsSpan(start * C, L * C), _tensor.AsSpan((w % BatchWindows) * L * C, L * C));
        }

        return windows;
    }

    /// <summary>
    /// The floor of any design that buffers raw frames: each 50-frame chunk copied (with the NaN/infinity check)
    /// into a plain ring that keeps the last L − S frames when full, and each completed window normalized out of
    /// it into the tensor; no streams, no plan, no clock.
    /// </summary>
    [Benchmark]
    public int RingCopyAndNormalize()
    {
        var ring = _ring.AsSpan();
        var position = 0;
        var emitted = 0;
        for (var offset = 0; offset < StreamFrames; offset += ChunkFrames)
        {
            if (position + (ChunkFrames * C) > ring.Length)
            {
                ring.Slice(position - ((L - S) * C), (L - S) * C).CopyTo(ring);
                position = (L - S) * C;
            }

            Har.Inference.Windowing.FiniteCopy.CopyFinite(_stream.AsSpan(offset * C, ChunkFrames * C), ring.Slice(position, ChunkFrames * C));
            position += ChunkFrames * C;
            var frames = offset + ChunkFrames;
            if (frames >= L && (frames - L) % S == 0)
            {
                _normalizer.NormalizeUnchecked(ring.Slice(position - (L * C), L * C), _tensor.AsSpan((emitted % BatchWindows) * L * C, L * C));
                emitted++;
            }
        }

        return emitted;
    }

    /// <summary>The 400 appends through the handle, windows counted but not normalized.</summary>
    [Benchmark]
    public int AppendOnly()
    {
        var emitted = 0;
        for (var offset = 0; offset < StreamFrames; offset += ChunkFrames)
        {
            emitted += _handle.Append(_stream.AsSpan(offset * C, ChunkFrames * C)).Count;
        }

        return emitted;
    }

    /// <summary>The fused copy + NaN/infinity check of every chunk into a ring-sized buffer (the append's data movement alone).</summary>
    [Benchmark]
    public bool CopyFiniteOnly()
    {
        var ok = true;
        var slots = _ring.Length / (ChunkFrames * C);
        for (int offset = 0, k = 0; offset < StreamFrames; offset += ChunkFrames, k++)
        {
            ok &= Har.Inference.Windowing.FiniteCopy.CopyFinite(_stream.AsSpan(offset * C, ChunkFrames * C), _ring.AsSpan((k % slots) * ChunkFrames * C, ChunkFrames * C));
        }

        return ok;
    }

    /// <summary>400 reads of the high-resolution system clock (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    [Benchmark]
    public long ClockOnly()
    {
        long sum = 0;
        for (var i = 0; i < StreamFrames / ChunkFrames; i++)
        {
            sum += TimeProvider.System.GetTimestamp();
        }

        return sum;
    }

    /// <summary>400 reads of the heartbeat's cached tick count (what a <see cref="StreamWindower"/> on the system clock with an idle timeout of 10 s or more reads per append).</summary>
    [Benchmark]
    public long HeartbeatOnly()
    {
        long sum = 0;
        for (var i = 0; i < StreamFrames / ChunkFrames; i++)
        {
            sum += HeartbeatClock.Ticks;
        }

        return sum;
    }

    /// <summary>400 reads of the millisecond tick count (what a <see cref="StreamWindower"/> on the system clock reads per append when the idle timeout is under 10 s).</summary>
    [Benchmark]
    public long TickCountOnly()
    {
        long sum = 0;
        for (var i = 0; i < StreamFrames / ChunkFrames; i++)
        {
            sum += Environment.TickCount64;
        }

        return sum;
    }

    /// <summary>Stops the windower's sweep timer.</summary>
    [GlobalCleanup]
    public void Dispose()
    {
        _windower.Dispose();
        GC.SuppressFinalize(this);
    }
}
