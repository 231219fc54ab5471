using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Har.Inference.Models;

/// <summary>
/// One batch: a pinned input tensor of <c>MaxBatch × L × C</c> floats, a pinned output of
/// <c>MaxBatch × K</c> floats, and for each batch size b an <see cref="OrtIoBinding"/> with
/// <c>[b, L, C]</c> / <c>[b, K]</c> tensors over that memory, bound once when the buffer is made so a
/// run only fills the input and calls <see cref="InferenceSession.RunWithBinding"/>. The micro-batcher
/// normalizes callers' windows straight into <see cref="InputSlot"/> as they are enqueued and keeps,
/// per slot, who is waiting for it (<see cref="Owners"/>, <see cref="Indexes"/>, <see cref="Enqueued"/>).
/// </summary>
internal sealed unsafe class BatchBuffer : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions;
    private readonly float[] _input;
    private readonly float[] _output;
    private readonly OrtValue[] _inputValues;
    private readonly OrtValue[] _outputValues;
    private readonly OrtIoBinding[] _bindings;
    private readonly Lock _runGate = new();
    private long _runStarted; // Stopwatch timestamp of the run in progress; 0 when none (under _runGate)
    private bool _terminated; // the run in progress was told to stop (under _runGate)

    /// <summary>Makes the buffer and its bindings.</summary>
    /// <param name="session">The session the bindings run.</param>
    /// <param name="inputName">The graph's input.</param>
    /// <param name="outputName">The graph output read.</param>
    /// <param name="maxBatch">The most windows a run holds.</param>
    /// <param name="windowLength">Frames per window, context included.</param>
    /// <param name="channels">Values per frame.</param>
    /// <param name="classes">Outputs per window.</param>
    /// <param name="fixedBatch">The graph's fixed batch size, or 0 when its batch axis is dynamic: with a fixed one a
    /// single binding of exactly <paramref name="maxBatch"/> windows serves every run (the slots past a run's count
    /// hold earlier windows, whose outputs are not read).</param>
    public BatchBuffer(InferenceSession session, string inputName, string outputName, int maxBatch, int windowLength, int channels, int classes, int fixedBatch = 0)
    {
        _session = session;
        _runOptions = new RunOptions();
        WindowValues = windowLength * channels;
        Classes = classes;
        _input = GC.AllocateUninitializedArray<float>(maxBatch * WindowValues, pinned: true);
        _output = GC.AllocateUninitializedArray<float>(maxBatch * classes, pinned: true);
        _input.AsSpan().Clear();
        Owners = new PendingPrediction?[maxBatch];
        Indexes = new int[maxBatch];
        Enqueued = new long[maxBatch];
        Predictions = new Prediction[maxBatch];
        Probabilities = new float[maxBatch * classes];
        MaxBatch = maxBatch;
        var first = fixedBatch > 0 ? maxBatch : 1;
        var bindings = maxBatch - first + 1;
        _inputValues = new OrtValue[bindings];
        _outputValues = new OrtValue[bindings];
        _bindings = new OrtIoBinding[bindings];
        try
        {
            var inPtr = (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_input));
            var outPtr = (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_output));
            for (var b = first; b <= maxBatch; b++)
            {
                var i = b - first;
                _inputValues[i] = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, [b, windowLength, channels], inPtr, (long)b * WindowValues * sizeof(float));
                _outputValues[i] = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, [b, classes], outPtr, (long)b * classes * sizeof(float));
                var binding = session.CreateIoBinding();
                _bindings[i] = binding;
                binding.BindInput(inputName, _inputValues[i]);
                binding.BindOutput(outputName, _outputValues[i]);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int WindowValues { get; }

    /// <summary>Gets the caller waiting for each slot (micro-batcher only).</summary>
    public PendingPrediction?[] Owners { get; }

    /// <summary>Gets the index of each slot's window within its caller's windows.</summary>
    public int[] Indexes { get; }

    /// <summary>Gets when each slot's window was enqueued (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public long[] Enqueued { get; }

    /// <summary>Gets the predictions of the last run (scratch, for the observers).</summary>
    public Prediction[] Predictions { get; }

    /// <summary>Gets the probabilities of the last run (scratch, K per slot).</summary>
    public float[] Probabilities { get; }

    /// <summary>Gets or sets the number of slots filled.</summary>
    public int Count { get; set; }

    public int Classes { get; }

    public int MaxBatch { get; }

    public long PinnedBytes => ((long)_input.Length + _output.Length) * sizeof(float);

    /// <summary>The input slot of window <paramref name="index"/> of the next run.</summary>
    public Span<float> InputSlot(int index) => _input.AsSpan(index * WindowValues, WindowValues);

    /// <summary>Runs the first <paramref name="batch"/> windows of the input; returns their raw outputs.</summary>
    /// <exception cref="TimeoutException">The run was stopped by <see cref="Terminate"/> (it ran past the model's run timeout, or the model is being disposed).</exception>
    public ReadOnlySpan<float> Run(int batch)
    {
        lock (_runGate)
        {
            _runStarted = Stopwatch.GetTimestamp();
        }

        try
        {
            // With a fixed batch axis there is one binding, of MaxBatch windows; the outputs past `batch` are not read.
            _session.RunWithBinding(_runOptions, _bindings[_bindings.Length == 1 ? 0 : batch - 1]);
        }
        catch (OnnxRuntimeException ex) when (Volatile.Read(ref _terminated))
        {
            throw new TimeoutException(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"The run of {batch} window(s) was stopped after {Stopwatch.GetElapsedTime(_runStarted).TotalSeconds:0.#} s: {TerminationReason}."), ex);
        }
        finally
        {
            lock (_runGate)
            {
                _runStarted = 0;
                if (_terminated)
                {
                    // The flag stays set on the RunOptions until cleared; the next run must not inherit it.
                    _runOptions.Terminate = false;
                    _terminated = false;
                }
            }
        }

        return _output.AsSpan(0, batch * Classes);
    }

    /// <summary>Why the last run was stopped (set with the terminate flag).</summary>
    private string TerminationReason { get; set; } = string.Empty;

    /// <summary>
    /// Stops the run in progress if it started more than <paramref name="limit"/> Stopwatch ticks before
    /// <paramref name="now"/> (any run in progress when <paramref name="limit"/> is 0): ONNX Runtime checks the flag
    /// between the graph's nodes, and <see cref="Run"/> then throws <see cref="TimeoutException"/>.
    /// </summary>
    /// <returns>Whether a run was told to stop.</returns>
    public bool Terminate(long now, long limit, string reason)
    {
        lock (_runGate)
        {
            if (_runStarted == 0 || _terminated || now - _runStarted < limit)
            {
                return false;
            }

            TerminationReason = reason;
            Volatile.Write(ref _terminated, true);
            _runOptions.Terminate = true;
            return true;
        }
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
