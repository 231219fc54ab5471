using Microsoft.ML.OnnxRuntime;

namespace Har.Inference.Models;

/// <summary>
/// Creates the process-wide ONNX Runtime environment once, with global thread pools available, so
/// sessions can opt into sharing them (<see cref="HarModelOptions.UseGlobalThreadPool"/>).
/// </summary>
internal static class OrtRuntime
{
    private static readonly object Gate = new();
    private static bool _ownsEnvironment;

    /// <summary>Gets whether the environment was created by Har (and so has global thread pools).</summary>
    public static bool HasGlobalThreadPool
    {
        get
        {
            lock (Gate)
            {
                return _ownsEnvironment;
            }
        }
    }

    public static void EnsureEnvironment()
    {
        lock (Gate)
        {
            if (_ownsEnvironment || OrtEnv.IsCreated)
            {
                return;
            }

            using var threading = new OrtThreadingOptions
            {
                GlobalIntraOpNumThreads = Math.Max(1, Environment.ProcessorCount),
                GlobalInterOpNumThreads = 1,
                GlobalSpinControl = false,
            };
            var options = new EnvironmentCreationOptions
            {
                logId = "har",
                logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
                threadOptions = threading,
            };
            OrtEnv.CreateInstanceWithOptions(ref options);
            _ownsEnvironment = true;
        }
    }

    public static SessionOptions CreateSessionOptions(HarModelOptions options)
    {
        EnsureEnvironment();
        var so = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            InterOpNumThreads = 1,
        };
        try
        {
            if (options.UseGlobalThreadPool)
            {
                if (!HasGlobalThreadPool)
                {
                    throw new InvalidOperationException(
                        "HarModelOptions.UseGlobalThreadPool needs the ONNX Runtime environment created by Har, but it was created elsewhere first (an InferenceSession made before any Har model); load Har models first or turn UseGlobalThreadPool off.");
                }

                so.DisablePerSessionThreads();
            }
            else
            {
                so.IntraOpNumThreads = options.IntraOpThreads;
                so.AddSessionConfigEntry("session.intra_op.allow_spinning", options.AllowSpinning ? "1" : "0");
            }

            so.AddSessionConfigEntry("session.inter_op.allow_spinning", options.AllowSpinning ? "1" : "0");
            return so;
        }
        catch
        {
            so.Dispose();
            throw;
        }
    }
}
