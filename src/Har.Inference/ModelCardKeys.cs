namespace Har.Inference;

/// <summary>The <c>metadata_props</c> keys of a Har model card. All in <see cref="All"/> are required; <see cref="ContextFrames"/> is optional.</summary>
internal static class ModelCardKeys
{
    /// <summary>The model's name.</summary>
    public const string ModelName = "har.model_name";

    /// <summary>The model's semantic version.</summary>
    public const string ModelVersion = "har.model_version";

    /// <summary>JSON array of activity names in output order.</summary>
    public const string Labels = "har.labels";

    /// <summary>Samples per window.</summary>
    public const string WindowLength = "har.window_length";

    /// <summary>Optional: samples before each window that the graph also reads (default 0); its input is <c>window_length + context_frames</c> samples long.</summary>
    public const string ContextFrames = "har.context_frames";

    /// <summary>Samples between consecutive window starts.</summary>
    public const string Stride = "har.stride";

    /// <summary>Sample rate in hertz.</summary>
    public const string SampleRateHz = "har.sample_rate_hz";

    /// <summary>JSON array of channel names in input order.</summary>
    public const string Channels = "har.channels";

    /// <summary>JSON array of per-channel means.</summary>
    public const string NormalizationMean = "har.normalization.mean";

    /// <summary>JSON array of per-channel standard deviations.</summary>
    public const string NormalizationStd = "har.normalization.std";

    /// <summary><c>probabilities</c> or <c>logits</c>.</summary>
    public const string Output = "har.output";

    /// <summary>Trainable parameter count.</summary>
    public const string Parameters = "har.parameters";

    /// <summary>JSON object identifying the training data.</summary>
    public const string TrainingData = "har.training_data";

    /// <summary>JSON object with <c>accuracy</c>, <c>macro_f1</c> and <c>n_windows</c> on the test subjects.</summary>
    public const string Metrics = "har.metrics";

    /// <summary>ISO-8601 training timestamp.</summary>
    public const string TrainedAt = "har.trained_at";

    /// <summary>The command line that trained the model.</summary>
    public const string TrainingCommand = "har.training_command";

    /// <summary>Gets every required key, in card order.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        ModelName, ModelVersion, Labels, WindowLength, Stride, SampleRateHz, Channels,
        NormalizationMean, NormalizationStd, Output, Parameters, TrainingData, Metrics, TrainedAt, TrainingCommand,
    ];
}
