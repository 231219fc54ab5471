using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using Har.Benchmarks.Inference;
using Har.Deployment;
using Har.Drift;
using Har.Inference;

namespace Har.Benchmarks.Deployment;

/// <summary>
/// The whole serving path per window: N devices each append one stride of frames (completing one window
/// each) concurrently through <c>ServingPipeline.AppendAsync</c> — windowing, routing by the traffic plan,
/// the champion's micro-batcher, and the observer fan-out (metrics, rollout observations, and the per-device
/// drift monitor). One operation = one window, so the figures are windows/s and bytes per window. The
/// harness itself allocates nothing: every append's task is started, then each is awaited once, in a method
/// whose state machine is pooled.
/// </summary>
[MemoryDiagnoser]
#pragma warning disable CA1001 // the drift monitor is disposed in GlobalCleanup, as BenchmarkDotNet expects
public class ServingPipelineBenchmarks
#pragma warning restore CA1001
{
    private string _root = null!;
    private ServingPipeline _pipeline = null!;
    private DeviceDriftMonitor _drift = null!;
    private float[] _frames = null!;
    private string[] _ids = null!;
    private ValueTask<StreamPrediction[]>[] _pending = null!;
    private ValueTask<int>[] _pendingCounts = null!;
    private StreamPrediction[][] _predictions = null!;
    private float[][] _probabilities = null!;
    private int _stride;

    /// <summary>Gets or sets how many devices append concurrently.</summary>
    [Params(8, 64)]
    public int Streams { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _root = Directory.CreateTempSubdirectory("har-bench-serving-").FullName;
        var registry = new ModelRegistry(Path.Combine(_root, "registry"));
        var model = BenchmarkModels.PathOf(BenchmarkModels.Available().First());
        registry.Register(model);
        var options = new ServingOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
        options.Model.EnableMetrics = false;
        var card = ModelCard.Load(model);
        var random = new Random(1);
        var reference = new float[6000 * card.ChannelCount];
        for (var i = 0; i < reference.Length; i++)
        {
            reference[i] = card.NormalizationMean[i % card.ChannelCount] + (float)((random.NextDouble() - 0.5) * card.NormalizationStd[i % card.ChannelCount]);
        }

        var profile = new ReferenceProfileBuilder([.. card.Channels]).AddRecording("reference", reference).Build("benchmark");
        _drift = new DeviceDriftMonitor(profile, new DriftMonitorOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() });
        _pipeline = ServingPipeline.Open(registry, options, _drift);
        _stride = _pipeline.Geometry.Stride;
        _ids = [.. Enumerable.Range(0, Streams).Select(i => $"device-{i}")];
        _pending = new ValueTask<StreamPrediction[]>[Streams];
        _pendingCounts = new ValueTask<int>[Streams];
        _predictions = [.. Enumerable.Range(0, Streams).Select(_ => new StreamPrediction[1])];
        _probabilities = [.. Enumerable.Range(0, Streams).Select(_ => new float[card.ClassCount])];
        _frames = new float[_pipeline.WindowLength * _pipeline.Channels];
        for (var i = 0; i < _frames.Length; i++)
        {
            _frames[i] = reference[i];
        }

        // Fill every stream's buffer to one stride short of a window, so each append completes exactly one.
        foreach (var id in _ids)
        {
            _pipeline.AppendAsync(id, _frames.AsMemory(0, (_pipeline.WindowLength - _stride) * _pipeline.Channels)).AsTask().GetAwaiter().GetResult();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pipeline.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _drift.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    /// <summary>Every device appends one stride (one window each), concurrently; each append returns its predictions as a new array.</summary>
    /// <returns>A task that completes when every window is scored.</returns>
    [Benchmark(OperationsPerInvoke = 64)]
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask AppendOneWindowPerStream()
    {
        // OperationsPerInvoke is fixed at compile time: with 8 streams, 8 rounds make 64 windows.
        var rounds = 64 / Streams;
        var chunk = _frames.AsMemory(0, _stride * _pipeline.Channels);
        for (var r = 0; r < rounds; r++)
        {
            for (var i = 0; i < _ids.Length; i++)
            {
#pragma warning disable CA2012 // started together so they meet in the batcher; each is awaited exactly once below
                _pending[i] = _pipeline.AppendAsync(_ids[i], chunk);
#pragma warning restore CA2012
            }

            for (var i = 0; i < _ids.Length; i++)
            {
                await _pending[i].ConfigureAwait(false);
            }
        }
    }

    /// <summary>The same, with each device's predictions written to its own buffers (the overload that allocates nothing).</summary>
    /// <returns>A task that completes when every window is scored.</returns>
    [Benchmark(OperationsPerInvoke = 64)]
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask AppendOneWindowPerStreamIntoBuffers()
    {
        var rounds = 64 / Streams;
        var chunk = _frames.AsMemory(0, _stride * _pipeline.Channels);
        for (var r = 0; r < rounds; r++)
        {
            for (var i = 0; i < _ids.Length; i++)
            {
#pragma warning disable CA2012 // started together so they meet in the batcher; each is awaited exactly once below
                _pendingCounts[i] = _pipeline.AppendAsync(_ids[i], chunk, _predictions[i], _probabilities[i]);
#pragma warning restore CA2012
            }

            for (var i = 0; i < _ids.Length; i++)
            {
                await _pendingCounts[i].ConfigureAwait(false);
            }
        }
    }
}
