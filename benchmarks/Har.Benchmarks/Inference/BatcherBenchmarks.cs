using BenchmarkDotNet.Attributes;
using Har.Inference;

namespace Har.Benchmarks.Inference;

/// <summary>
/// Windows per second of the micro-batcher with 32 concurrent callers (each awaiting
/// <see cref="HarModel.PredictAsync"/> in a loop) against the same windows scored by sequential batch-1
/// <see cref="HarModel.Predict(ReadOnlySpan{float}, Memory{float}, Span{Prediction})"/> calls. Times are per window.
/// </summary>
[MemoryDiagnoser]
public class BatcherBenchmarks
{
    private const int Callers = 32;
    private const int WindowsPerCaller = 8;
    private const int Total = Callers * WindowsPerCaller;

    private HarModel _model = null!;
    private float[][] _windows = [];
    private float[] _probabilities = [];
    private Prediction[] _prediction = new Prediction[1];

    /// <summary>Gets or sets the model file.</summary>
    [ParamsSource(nameof(Models))]
    public string Model { get; set; } = BenchmarkModels.Fixture;

    public static IEnumerable<string> Models() => BenchmarkModels.Available();

    [GlobalSetup]
    public void Setup()
    {
        _model = HarModel.Load(BenchmarkModels.PathOf(Model), new HarModelOptions { Workers = 2, MaxBatchSize = 32, MaxBatchWait = TimeSpan.FromMilliseconds(1) });
        var rng = new Random(3);
        _windows = new float[Callers][];
        for (var c = 0; c < Callers; c++)
        {
            _windows[c] = new float[_model.WindowValues];
            for (var i = 0; i < _windows[c].Length; i++)
            {
                _windows[c][i] = (float)((rng.NextDouble() * 4) - 2);
            }
        }

        _probabilities = new float[_model.Card.ClassCount];
    }

    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    /// <summary>One caller, one window at a time.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Total)]
    public void SequentialBatchOne()
    {
        for (var i = 0; i < Total; i++)
        {
            _model.Predict(_windows[i % Callers], _probabilities, _prediction);
        }
    }

    /// <summary>32 concurrent callers through the micro-batcher.</summary>
    [Benchmark(OperationsPerInvoke = Total)]
    public Task ConcurrentCallersBatched()
    {
        var tasks = new Task[Callers];
        for (var c = 0; c < Callers; c++)
        {
            var window = _windows[c];
            tasks[c] = Task.Run(async () =>
            {
                for (var i = 0; i < WindowsPerCaller; i++)
                {
                    await _model.PredictAsync(window);
                }
            });
        }

        return Task.WhenAll(tasks);
    }
}
