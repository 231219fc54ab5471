using Microsoft.Extensions.Logging;

namespace Har.Inference;

/// <summary>Source-generated log messages of Har.Inference.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Loaded model {Model} from {Path}: {Workers} worker(s), batches up to {MaxBatch}, warm-up {WarmUpMs:F1} ms")]
    public static partial void ModelLoaded(ILogger logger, string model, string path, int workers, int maxBatch, double warmUpMs);

    [LoggerMessage(2, LogLevel.Error, "Model {Model} failed to score {Windows} window(s)")]
    public static partial void RunFailed(ILogger logger, string model, int windows, Exception error);

    [LoggerMessage(8, LogLevel.Information, "Model {Model} stopped a run of {Windows} window(s) because it is being disposed (a host shutting down, a version unloaded); its callers get a TimeoutException")]
    public static partial void RunStoppedByDispose(ILogger logger, string model, int windows);

    [LoggerMessage(3, LogLevel.Information, "Model {Model} disposed")]
    public static partial void ModelDisposed(ILogger logger, string model);

    [LoggerMessage(4, LogLevel.Warning, "Prediction observer {Observer} threw for model {Model}")]
    public static partial void ObserverFailed(ILogger logger, string observer, string model, Exception error);

    [LoggerMessage(5, LogLevel.Information, "Model {Model} has several outputs ({Outputs}); it is served from the first, '{Output}', which its card's har.output describes")]
    public static partial void FirstOfSeveralOutputs(ILogger logger, string model, string output, string outputs);

    [LoggerMessage(6, LogLevel.Warning, "Model {Model}'s input '{Input}' has a fixed batch axis of {Batch}: every run holds exactly that many windows, padded when fewer are waiting. Export it with a dynamic batch axis (dynamic_axes in torch.onnx.export) to let the batch follow the traffic")]
    public static partial void FixedBatchAxis(ILogger logger, string model, string input, int batch);

    [LoggerMessage(7, LogLevel.Error, "Model {Model}: a run was stopped because {Reason}; its windows fail with a TimeoutException")]
    public static partial void RunStopped(ILogger logger, string model, string reason);
}
