using BenchmarkDotNet.Attributes;
using Har.Inference;

namespace Har.Benchmarks.Inference;

/// <summary>
/// Allocations and time per window of the micro-batcher's paths, one caller awaiting each call: the single-window
/// <see cref="HarModel.PredictAsync(ReadOnlyMemory{float}, CancellationToken)"/> (baseline: allocates its result's
/// probabilities), the buffer-based <see cref="HarModel.PredictAsync(ReadOnlySpan{float}, Memory{float}, Memory{Prediction}, CancellationToken)"/>
/// over whole windows, and the serving hand-off: <see cref="StreamWindower.Append{TState, TResult}(string, ReadOnlySpan{float}, TState, StreamWindowsHandler{TState, TResult})"/>
/// passing the completed windows straight from the stream's buffer to
/// <see cref="HarModel.PredictAsync(StreamWindows, Memory{float}, Memory{Prediction}, CancellationToken)"/> (one copy into the
/// batch tensor). <see cref="Windows"/> windows per invocation, so <c>Allocated</c> is per window (the benchmark
/// method's own async state machine, once per invocation, is below 1 byte per window).
/// </summary>
[MemoryDiagnoser]
public class BatchedPathBenchmarks : IDisposable
{
    /// <summary>Windows scored per invocation.</summary>
    public const int Windows = 2048;

    private const int PerCall = 4;
    private HarModel _model = null!;
    private StreamWindower _windower = null!;
    private float[] _windows = [];
    private float[] _stream = [];
    private float[] _probabilities = [];
    private Prediction[] _predictions = [];
    private int _chunkValues;

    /// <summary>Gets or sets the model file.</summary>
    [Params(BenchmarkModels.Fixture)]
    public string Model { get; set; } = BenchmarkModels.Fixture;

    [GlobalSetup]
    public void Setup()
    {
        _model = HarModel.Load(BenchmarkModels.PathOf(Model), new HarModelOptions { EnableMetrics = false, Workers = 1 });
        _windower = new StreamWindower(_model.Card, new StreamWindowerOptions { MaxStreams = 1 });
        var rng = new Random(3);
        _windows = new float[PerCall * _model.WindowValues];
        for (var i = 0; i < _windows.Length; i++)
        {
            _windows[i] = (float)((rng.NextDouble() * 4) - 2);
        }

        // Appending PerCall strides of frames completes PerCall windows once the stream is past its first window.
        _chunkValues = PerCall * _model.Card.Stride * _model.Card.ChannelCount;
        _stream = new float[64 * _chunkValues];
        for (var i = 0; i < _stream.Length; i++)
        {
            _stream[i] = (float)((rng.NextDouble() * 4) - 2);
        }

        _probabilities = new float[16 * _model.Card.ClassCount];
        _predictions = new Prediction[16];
        _windower.Append("device", _stream.AsSpan(0, _model.WindowValues));
    }

    /// <summary>One window per call, result allocated (the convenience overload).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Windows)]
    public async Task SingleWindowAllocatingResult()
    {
        var window = _windows.AsMemory(0, _model.WindowValues);
        for (var i = 0; i < Windows; i++)
        {
            await _model.PredictAsync(window).ConfigureAwait(false);
        }
    }

    /// <summary>Four whole windows per call into the caller's buffers.</summary>
    [Benchmark(OperationsPerInvoke = Windows)]
    public async Task WholeWindowsIntoBuffers()
    {
        for (var i = 0; i < Windows / PerCall; i++)
        {
            await _model.PredictAsync(_windows, _probabilities, _predictions).ConfigureAwait(false);
        }
    }

    /// <summary>A stream append completing four windows, handed from the stream's buffer to the batcher in one copy.</summary>
    [Benchmark(OperationsPerInvoke = Windows)]
    public async Task StreamAppendHandOff()
    {
        for (var i = 0; i < Windows / PerCall; i++)
        {
            var chunk = _stream.AsMemory(i % 64 * _chunkValues, _chunkValues);
            await _windower.Append("device", chunk.Span, (_model, _probabilities, _predictions), static (windows, s) => s._model.PredictAsync(windows, s._probabilities, s._predictions)).ConfigureAwait(false);
        }
    }

    /// <summary>Releases the model and the windower.</summary>
    [GlobalCleanup]
    public void Dispose()
    {
        _model.Dispose();
        _windower.Dispose();
        GC.SuppressFinalize(this);
    }
}
