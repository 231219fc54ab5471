using Microsoft.Extensions.Logging;

namespace Har.Inference;

/// <summary>Source-generated log messages of Har.Inference.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Loaded model {Model} from {Path}: {Workers} worker(s), batches up to {MaxBatch}, warm-up {WarmUpMs:F1} ms")]
    public static partial void ModelLoaded(ILogger logger, string model, string path, int workers, int maxBatch, double warmUpMs);

    [LoggerMessage(2, LogLevel.Error, "Model {Model} failed to score {Windows} window(s)")]
    public static partial void RunFailed(ILogger logger, string model, int windows, Exception error);

    [LoggerMessage(3, LogLevel.Information, "Model {Model} disposed")]
    public static partial void ModelDisposed(ILogger logger, string model);

    [LoggerMessage(4, LogLevel.Warning, "Prediction observer {Observer} threw for model {Model}")]
    public static partial void ObserverFailed(ILogger logger, string observer, string model, Exception error);
}
