using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Har.Inference;
using Har.Inference.Models;
using Har.Inference.Windowing;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Har.Benchmarks.Inference;

/// <summary>
/// <see cref="HarModel.Predict(ReadOnlySpan{float}, Memory{float}, Span{Prediction})"/> (normalization,
/// run, softmax/confidence/entropy, metrics) against a raw ONNX Runtime <c>RunWithBinding</c> on
/// pre-bound pinned tensors of the same model, batch size and session options (one intra-op thread,
/// no spinning), pre-filled with the same normalized windows <c>Predict</c> writes.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(RobustRatioConfig))]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet disposes in [GlobalCleanup].")]
public unsafe class PredictBenchmarks
{
    private HarModel _model = null!;
    private InferenceSession _session = null!;
    private OrtIoBinding _binding = null!;
    private RunOptions _runOptions = null!;
    private OrtValue _input = null!;
    private OrtValue _output = null!;
    private float[] _windows = [];
    private float[] _inputBuffer = [];  // pinned; the OrtValues point into these two, so they must stay referenced
    private float[] _outputBuffer = [];
    private float[] _probabilities = [];
    private Prediction[] _predictions = [];

    /// <summary>Gets or sets the model file.</summary>
    [ParamsSource(nameof(Models))]
    public string Model { get; set; } = BenchmarkModels.Fixture;

    /// <summary>Gets or sets the windows per call.</summary>
    [Params(1, 32)]
    public int Batch { get; set; }

    public static IEnumerable<string> Models() => BenchmarkModels.Available();

    [GlobalSetup]
    public void Setup()
    {
        var path = BenchmarkModels.PathOf(Model);
        var options = new HarModelOptions { Workers = 1, MaxBatchSize = 32 };
        _model = HarModel.Load(path, options);
        var card = _model.Card;
        var rng = new Random(1);
        _windows = new float[Batch * _model.WindowValues];
        for (var i = 0; i < _windows.Length; i++)
        {
            _windows[i] = (float)((rng.NextDouble() * 4) - 2);
        }

        _probabilities = new float[Batch * card.ClassCount];
        _predictions = new Prediction[Batch];

        using var sessionOptions = OrtRuntime.CreateSessionOptions(options);
        _session = new InferenceSession(path, sessionOptions);
        // The raw run gets exactly the tensor Predict builds: the same windows, normalized with the card.
        var input = _inputBuffer = GC.AllocateUninitializedArray<float>(Batch * _model.WindowValues, pinned: true);
        WindowNormalizer.FromCard(card).Normalize(_windows, input);
        var output = _outputBuffer = GC.AllocateUninitializedArray<float>(Batch * card.ClassCount, pinned: true);
        _input = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, [Batch, card.ContextFrames + card.WindowLength, card.ChannelCount], (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(input)), input.Length * sizeof(float));
        _output = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, [Batch, card.ClassCount], (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(output)), output.Length * sizeof(float));
        _runOptions = new RunOptions();
        _binding = _session.CreateIoBinding();
        _binding.BindInput(_session.InputNames[0], _input);
        _binding.BindOutput(_session.OutputNames[0], _output);
        _session.RunWithBinding(_runOptions, _binding);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _binding.Dispose();
        _input.Dispose();
        _output.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
        _model.Dispose();
    }

    /// <summary>Raw ONNX Runtime: one RunWithBinding on already normalized, already bound tensors.</summary>
    [Benchmark(Baseline = true)]
    public void RawRunWithBinding() => _session.RunWithBinding(_runOptions, _binding);

    /// <summary>Har: raw sensor windows in, predictions out (span-based, no allocation).</summary>
    [Benchmark]
    public Prediction Predict()
    {
        _model.Predict(_windows, _probabilities, _predictions);
        return _predictions[0];
    }
}
