using BenchmarkDotNet.Attributes;
using Har.Inference;

namespace Har.Benchmarks.Inference;

/// <summary>
/// Windows per second of the micro-batcher with 32 and 64 concurrent callers (each awaiting
/// <see cref="HarModel.PredictAsync(ReadOnlyMemory{float}, CancellationToken)"/> in a loop; <see cref="HarModelOptions"/> defaults: two workers, one
/// intra-op thread each, max batch 16, no wait; and two variants: max batch 32 (the default before 2026-12-04), and
/// max batch 32 waiting 1 ms for more windows)
/// against the same windows scored by sequential batch-1
/// <see cref="HarModel.Predict(ReadOnlySpan{float}, Memory{float}, Span{Prediction})"/> calls, with one
/// intra-op thread (baseline) and with two (so the sequential caller may use both cores too; the fair
/// baseline is the faster of the two). Times are per window. The mean batch size the batcher reached is
/// printed at cleanup (<c>// mean batch</c> in the log).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(RobustRatioConfig))]
public class BatcherBenchmarks
{
    private const int Total = 256;

    private HarModel _batched = null!;
    private HarModel _batched32 = null!;
    private HarModel _batchedWait = null!;
    private HarModel _sequential = null!;
    private HarModel _sequentialTwoThreads = null!;
    private BatchCounter _counter = null!;
    private BatchCounter _counter32 = null!;
    private BatchCounter _counterWait = null!;
    private float[][] _windows = [];
    private float[] _probabilities = [];
    private Prediction[] _prediction = new Prediction[1];

    /// <summary>Gets or sets the model file.</summary>
    [ParamsSource(nameof(Models))]
    public string Model { get; set; } = BenchmarkModels.Fixture;

    public static IEnumerable<string> Models() => BenchmarkModels.Available();

    /// <summary>Gets or sets the number of concurrent callers (each scores <c>256 / Callers</c> windows per invocation).</summary>
    [Params(32, 64)]
    public int Callers { get; set; } = 32;

    private int WindowsPerCaller => Total / Callers;

    [GlobalSetup]
    public void Setup()
    {
        var path = BenchmarkModels.PathOf(Model);
        _counter = new BatchCounter();
        _counter32 = new BatchCounter();
        _counterWait = new BatchCounter();
        var batchedOptions = new HarModelOptions();
        batchedOptions.Observers.Add(_counter);
        _batched = HarModel.Load(path, batchedOptions);
        var options32 = new HarModelOptions { MaxBatchSize = 32 };
        options32.Observers.Add(_counter32);
        _batched32 = HarModel.Load(path, options32);
        var waitOptions = new HarModelOptions { MaxBatchSize = 32, MaxBatchWait = TimeSpan.FromMilliseconds(1) };
        waitOptions.Observers.Add(_counterWait);
        _batchedWait = HarModel.Load(path, waitOptions);
        _sequential = HarModel.Load(path, new HarModelOptions { Workers = 1, IntraOpThreads = 1, MaxBatchSize = 1 });
        _sequentialTwoThreads = HarModel.Load(path, new HarModelOptions { Workers = 1, IntraOpThreads = 2, MaxBatchSize = 1 });
        var rng = new Random(3);
        _windows = new float[Callers][];
        for (var c = 0; c < Callers; c++)
        {
            _windows[c] = new float[_batched.WindowValues];
            for (var i = 0; i < _windows[c].Length; i++)
            {
                _windows[c][i] = (float)((rng.NextDouble() * 4) - 2);
            }
        }

        _probabilities = new float[_batched.Card.ClassCount];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var (name, counter) in new[] { ("defaults (max 16, no wait)", _counter), ("max 32, no wait", _counter32), ("max 32, wait 1 ms", _counterWait) })
        {
            Console.WriteLine($"// mean batch {Model} {Callers} callers {name}: {counter.Windows} windows in {counter.Runs} runs = {(double)counter.Windows / Math.Max(1, counter.Runs):F1} windows per run");
        }

        _batched.Dispose();
        _batched32.Dispose();
        _batchedWait.Dispose();
        _sequential.Dispose();
        _sequentialTwoThreads.Dispose();
    }

    /// <summary>One caller, one window at a time, one intra-op thread.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Total)]
    public void SequentialBatchOne()
    {
        for (var i = 0; i < Total; i++)
        {
            _sequential.Predict(_windows[i % Callers], _probabilities, _prediction);
        }
    }

    /// <summary>One caller, one window at a time, two intra-op threads.</summary>
    [Benchmark(OperationsPerInvoke = Total)]
    public void SequentialBatchOneTwoThreads()
    {
        for (var i = 0; i < Total; i++)
        {
            _sequentialTwoThreads.Predict(_windows[i % Callers], _probabilities, _prediction);
        }
    }

    /// <summary>Concurrent callers through the micro-batcher with the default options (max batch 16, no wait: a free worker takes whatever is queued).</summary>
    [Benchmark(OperationsPerInvoke = Total)]
    public Task ConcurrentCallersBatched() => RunCallers(_batched);

    /// <summary>The same with max batch 32.</summary>
    [Benchmark(OperationsPerInvoke = Total)]
    public Task ConcurrentCallersBatchedMax32() => RunCallers(_batched32);

    /// <summary>Max batch 32, waiting up to 1 ms for more windows after the first (the default was 2 ms before the measurement in README.md).</summary>
    [Benchmark(OperationsPerInvoke = Total)]
    public Task ConcurrentCallersBatchedWait1ms() => RunCallers(_batchedWait);

    private Task RunCallers(HarModel model)
    {
        var tasks = new Task[Callers];
        for (var c = 0; c < Callers; c++)
        {
            var window = _windows[c];
            tasks[c] = Task.Run(async () =>
            {
                for (var i = 0; i < WindowsPerCaller; i++)
                {
                    await model.PredictAsync(window);
                }
            });
        }

        return Task.WhenAll(tasks);
    }

    /// <summary>Counts runs and windows of the batched model.</summary>
    private sealed class BatchCounter : IPredictionObserver
    {
        private long _runs;
        private long _windows;

        public long Runs => Interlocked.Read(ref _runs);

        public long Windows => Interlocked.Read(ref _windows);

        public void OnPredictions(ModelCard model, ReadOnlySpan<Prediction> predictions)
        {
            Interlocked.Increment(ref _runs);
            Interlocked.Add(ref _windows, predictions.Length);
        }

        public void OnError(ModelCard model, int windows, Exception error)
        {
        }
    }
}
