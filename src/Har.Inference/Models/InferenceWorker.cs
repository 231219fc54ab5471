using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Har.Inference.Models;

/// <summary>
/// One run slot: a pinned input tensor of <c>MaxBatch × L × C</c> floats, a pinned output of
/// <c>MaxBatch × K</c> floats, and for each batch size b an <see cref="OrtIoBinding"/> with
/// <c>[b, L, C]</c> / <c>[b, K]</c> tensors over that memory, bound once at load so a run only
/// fills the input and calls <see cref="InferenceSession.RunWithBinding"/>.
/// </summary>
internal sealed unsafe class InferenceWorker : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions;
    private readonly float[] _input;
    private readonly float[] _output;
    private readonly OrtValue[] _inputValues;
    private readonly OrtValue[] _outputValues;
    private readonly OrtIoBinding[] _bindings;

    public InferenceWorker(InferenceSession session, string inputName, string outputName, int maxBatch, int windowLength, int channels, int classes)
    {
        _session = session;
        _runOptions = new RunOptions();
        WindowValues = windowLength * channels;
        Classes = classes;
        _input = GC.AllocateUninitializedArray<float>(maxBatch * WindowValues, pinned: true);
        _output = GC.AllocateUninitializedArray<float>(maxBatch * classes, pinned: true);
        _input.AsSpan().Clear();
        _inputValues = new OrtValue[maxBatch];
        _outputValues = new OrtValue[maxBatch];
        _bindings = new OrtIoBinding[maxBatch];
        try
        {
            var inPtr = (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_input));
            var outPtr = (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_output));
            for (var b = 1; b <= maxBatch; b++)
            {
                _inputValues[b - 1] = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, [b, windowLength, channels], inPtr, (long)b * WindowValues * sizeof(float));
                _outputValues[b - 1] = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, [b, classes], outPtr, (long)b * classes * sizeof(float));
                var binding = session.CreateIoBinding();
                _bindings[b - 1] = binding;
                binding.BindInput(inputName, _inputValues[b - 1]);
                binding.BindOutput(outputName, _outputValues[b - 1]);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int WindowValues { get; }

    public int Classes { get; }

    public int MaxBatch => _bindings.Length;

    public long PinnedBytes => ((long)_input.Length + _output.Length) * sizeof(float);

    /// <summary>The input slot of window <paramref name="index"/> of the next run.</summary>
    public Span<float> InputSlot(int index) => _input.AsSpan(index * WindowValues, WindowValues);

    /// <summary>Runs the first <paramref name="batch"/> windows of the input; returns their raw outputs.</summary>
    public ReadOnlySpan<float> Run(int batch)
    {
        _session.RunWithBinding(_runOptions, _bindings[batch - 1]);
        return _output.AsSpan(0, batch * Classes);
    }

    public void Dispose()
    {
        foreach (var b in _bindings)
        {
            b?.Dispose();
        }

        foreach (var v in _inputValues)
        {
            v?.Dispose();
        }

        foreach (var v in _outputValues)
        {
            v?.Dispose();
        }

        _runOptions.Dispose();
    }
}
