using BenchmarkDotNet.Attributes;
using Har.Benchmarks.Inference;
using Har.Deployment;

namespace Har.Benchmarks.Deployment;

/// <summary>
/// The whole serving path per window: N devices each append one stride of frames (completing one window
/// each) concurrently through <see cref="ServingPipeline.AppendAsync"/> — windowing, routing by the traffic
/// plan, the champion's micro-batcher, and the observer fan-out (metrics, rollout observations). One
/// operation = one window, so the figures are windows/s and bytes per window.
/// </summary>
[MemoryDiagnoser]
public class ServingPipelineBenchmarks
{
    private string _root = null!;
    private ServingPipeline _pipeline = null!;
    private float[] _frames = null!;
    private string[] _ids = null!;
    private Task<StreamPrediction[]>[] _pending = null!;
    private int _stride;

    /// <summary>Gets or sets how many devices append concurrently.</summary>
    [Params(8, 64)]
    public int Streams { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _root = Directory.CreateTempSubdirectory("har-bench-serving-").FullName;
        var registry = new ModelRegistry(Path.Combine(_root, "registry"));
        registry.Register(BenchmarkModels.PathOf(BenchmarkModels.Available().First()));
        var options = new ServingOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
        options.Model.EnableMetrics = false;
        _pipeline = ServingPipeline.Open(registry, options);
        _stride = _pipeline.Geometry.Stride;
        _ids = [.. Enumerable.Range(0, Streams).Select(i => $"device-{i}")];
        _pending = new Task<StreamPrediction[]>[Streams];
        var random = new Random(1);
        _frames = new float[_pipeline.WindowLength * _pipeline.Channels];
        for (var i = 0; i < _frames.Length; i++)
        {
            _frames[i] = (float)(random.NextDouble() - 0.5);
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
        Directory.Delete(_root, recursive: true);
    }

    /// <summary>Every device appends one stride (one window each), concurrently.</summary>
    [Benchmark(OperationsPerInvoke = 64)]
    public async Task AppendOneWindowPerStream()
    {
        // OperationsPerInvoke is fixed at compile time: with 8 streams, 8 rounds make 64 windows.
        var rounds = 64 / Streams;
        var chunk = _frames.AsMemory(0, _stride * _pipeline.Channels);
        for (var r = 0; r < rounds; r++)
        {
            for (var i = 0; i < _ids.Length; i++)
            {
                _pending[i] = _pipeline.AppendAsync(_ids[i], chunk).AsTask();
            }

            await Task.WhenAll(_pending).ConfigureAwait(false);
        }
    }
}
