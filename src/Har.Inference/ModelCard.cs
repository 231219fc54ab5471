using System.Collections.ObjectModel;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Har.Inference;

/// <summary>
/// The model card a Har ONNX model carries in its <c>metadata_props</c>: what the model predicts, how
/// its input windows are cut and normalised, and where it came from.
/// </summary>
/// <remarks>
/// A card is read with <see cref="Load(string)"/> (from an ONNX file, validated against the graph's
/// input and output shapes) or <see cref="FromMetadata"/> (from the raw key/value pairs). Every key
/// listed in <see cref="ModelCardKeys"/> is required but <c>har.context_frames</c>; a missing key, an unparsable value or a mismatch
/// with the graph is refused with a <see cref="ModelCardException"/> that names the key and the
/// expected value.
/// </remarks>
public sealed class ModelCard
{
    private readonly float[] _mean;
    private readonly float[] _std;

    private ModelCard(
        IReadOnlyDictionary<string, string> metadata,
        string modelName,
        string modelVersion,
        string[] labels,
        int windowLength,
        int contextFrames,
        int stride,
        double sampleRateHz,
        string[] channels,
        float[] mean,
        float[] std,
        ModelOutputKind output,
        long parameters,
        ModelCardMetrics metrics,
        DateTimeOffset trainedAt)
    {
        Metadata = metadata;
        ModelName = modelName;
        ModelVersion = modelVersion;
        Labels = Array.AsReadOnly(labels);
        WindowLength = windowLength;
        ContextFrames = contextFrames;
        Stride = stride;
        SampleRateHz = sampleRateHz;
        Channels = Array.AsReadOnly(channels);
        _mean = mean;
        _std = std;
        Output = output;
        Parameters = parameters;
        Metrics = metrics;
        TrainedAt = trainedAt;
    }

    /// <summary>Gets the model's name (<c>har.model_name</c>).</summary>
    public string ModelName { get; }

    /// <summary>Gets the model's semantic version (<c>har.model_version</c>).</summary>
    public string ModelVersion { get; }

    /// <summary>Gets the activity names in the order of the model's output (<c>har.labels</c>).</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Gets the number of samples in one window, the span each prediction labels (<c>har.window_length</c>).</summary>
    public int WindowLength { get; }

    /// <summary>
    /// Gets the number of samples before each window that the model also reads (<c>har.context_frames</c>, optional, 0 when
    /// absent): the posture or movement that led into the window. Its input is <see cref="ContextFrames"/> + <see cref="WindowLength"/> samples long; for a
    /// stream's first windows the runtime repeats the stream's first frame where the stream has not begun (as training does).
    /// </summary>
    public int ContextFrames { get; }

    /// <summary>Gets the number of frames of one model input: <see cref="ContextFrames"/> + <see cref="WindowLength"/>.</summary>
    internal int InputFrames => ContextFrames + WindowLength;

    /// <summary>Gets the number of samples between the starts of consecutive windows (<c>har.stride</c>).</summary>
    public int Stride { get; }

    /// <summary>Gets the sample rate the model was trained at, in hertz (<c>har.sample_rate_hz</c>).</summary>
    public double SampleRateHz { get; }

    /// <summary>Gets the channel names in input order (<c>har.channels</c>), e.g. <c>ax ay az gx gy gz</c>.</summary>
    public IReadOnlyList<string> Channels { get; }

    /// <summary>Gets the per-channel means subtracted before inference (<c>har.normalization.mean</c>).</summary>
    public ReadOnlySpan<float> NormalizationMean => _mean;

    /// <summary>Gets the per-channel standard deviations divided by before inference (<c>har.normalization.std</c>).</summary>
    public ReadOnlySpan<float> NormalizationStd => _std;

    /// <summary>Gets whether the model emits probabilities or logits (<c>har.output</c>).</summary>
    internal ModelOutputKind Output { get; }

    /// <summary>Gets the number of trainable parameters (<c>har.parameters</c>).</summary>
    public long Parameters { get; }

    /// <summary>Gets the validation metrics recorded at training time (<c>har.metrics</c>).</summary>
    public ModelCardMetrics Metrics { get; }

    /// <summary>Gets when the model was trained (<c>har.trained_at</c>).</summary>
    internal DateTimeOffset TrainedAt { get; }

    /// <summary>Gets the identity of the training data as recorded (<c>har.training_data</c>, JSON).</summary>
    public string TrainingData => Metadata[ModelCardKeys.TrainingData];

    /// <summary>Gets the command that trained the model (<c>har.training_command</c>).</summary>
    internal string TrainingCommand => Metadata[ModelCardKeys.TrainingCommand];

    /// <summary>Gets every metadata entry of the model, including keys this version of Har does not interpret.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Gets the number of input channels.</summary>
    public int ChannelCount => Channels.Count;

    /// <summary>Gets the number of output classes.</summary>
    public int ClassCount => Labels.Count;

    /// <summary>
    /// Reads and validates the card of an ONNX model file, including its agreement with the graph's
    /// input <c>[N, context_frames + window_length, channels]</c> and output <c>[N, labels]</c> shapes.
    /// </summary>
    /// <param name="modelPath">The path of the <c>.onnx</c> file.</param>
    /// <returns>The validated card.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist, or the path is a folder.</exception>
    /// <exception cref="ModelCardException">The file is not a loadable ONNX model, or its card is missing, malformed or disagrees with the graph.</exception>
    public static ModelCard Load(string modelPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        ModelFile.EnsureExists(modelPath);

        InferenceSession session;
        try
        {
            Models.OrtRuntime.EnsureEnvironment();
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
            session = new InferenceSession(modelPath, options);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new ModelCardException(null, $"'{modelPath}' is not a loadable ONNX model: {ex.Message}", ex);
        }

        using (session)
        {
            return FromSession(session);
        }
    }

    /// <summary>Reads and validates the card of a loaded ONNX Runtime session against its graph.</summary>
    /// <param name="session">The session whose model metadata and shapes are read.</param>
    /// <returns>The validated card.</returns>
    /// <exception cref="ModelCardException">The card is missing, malformed or disagrees with the graph.</exception>
    internal static ModelCard FromSession(InferenceSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        var card = FromMetadata(session.ModelMetadata.CustomMetadataMap);
        card.ValidateAgainstGraph(session);
        return card;
    }

    /// <summary>Parses and validates a card from raw metadata key/value pairs (no graph check).</summary>
    /// <param name="metadata">The model's <c>metadata_props</c>.</param>
    /// <returns>The validated card.</returns>
    /// <exception cref="ModelCardException">A required key is missing or a value is malformed.</exception>
    internal static ModelCard FromMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var copy = new ReadOnlyDictionary<string, string>(new Dictionary<string, string>(metadata, StringComparer.Ordinal));

        foreach (var key in ModelCardKeys.All)
        {
            if (!copy.TryGetValue(key, out var value) || string.IsNullOrWhiteSpace(value))
            {
                throw new ModelCardException(key, $"Model card key '{key}' is missing or empty; every Har model carries {string.Join(", ", ModelCardKeys.All)}.");
            }
        }

        var name = copy[ModelCardKeys.ModelName];
        var version = copy[ModelCardKeys.ModelVersion];
        if (!SemanticVersion.TryParse(version, out var parsed) || parsed.ToString() != version)
        {
            throw new ModelCardException(ModelCardKeys.ModelVersion, $"Model card key '{ModelCardKeys.ModelVersion}' is '{version}'; expected a semantic version such as '1.2.0'.");
        }

        var labels = ParseStringArray(copy, ModelCardKeys.Labels);
        if (labels.Length < 2)
        {
            throw new ModelCardException(ModelCardKeys.Labels, $"Model card key '{ModelCardKeys.Labels}' lists {labels.Length} label(s); expected at least 2.");
        }

        var windowLength = ParsePositiveInt(copy, ModelCardKeys.WindowLength);
        var contextFrames = 0;
        if (copy.TryGetValue(ModelCardKeys.ContextFrames, out var context)
            && (!int.TryParse(context, NumberStyles.None, CultureInfo.InvariantCulture, out contextFrames) || contextFrames > MaxContextFrames))
        {
            throw new ModelCardException(ModelCardKeys.ContextFrames, $"Model card key '{ModelCardKeys.ContextFrames}' is '{context}'; expected a whole number of frames from 0 to {MaxContextFrames} (the samples before each window the model also reads).");
        }

        if (windowLength > int.MaxValue - contextFrames)
        {
            throw new ModelCardException(ModelCardKeys.WindowLength, $"Model card keys '{ModelCardKeys.WindowLength}' ({windowLength}) and '{ModelCardKeys.ContextFrames}' ({contextFrames}) add up to more frames than an input can hold; expected a window of at most {int.MaxValue - contextFrames} frames.");
        }

        var stride = ParsePositiveInt(copy, ModelCardKeys.Stride);
        var sampleRate = ParseDouble(copy, ModelCardKeys.SampleRateHz);
        if (!(sampleRate > 0) || !double.IsFinite(sampleRate))
        {
            throw new ModelCardException(ModelCardKeys.SampleRateHz, $"Model card key '{ModelCardKeys.SampleRateHz}' is {sampleRate}; expected a positive, finite rate in hertz.");
        }

        var channels = ParseStringArray(copy, ModelCardKeys.Channels);
        if (channels.Length == 0)
        {
            throw new ModelCardException(ModelCardKeys.Channels, $"Model card key '{ModelCardKeys.Channels}' is empty; expected the channel names, e.g. [\"ax\",\"ay\",\"az\",\"gx\",\"gy\",\"gz\"].");
        }

        var mean = ParseFloatArray(copy, ModelCardKeys.NormalizationMean, channels.Length);
        var std = ParseFloatArray(copy, ModelCardKeys.NormalizationStd, channels.Length);
        for (var c = 0; c < channels.Length; c++)
        {
            if (!float.IsFinite(mean[c]))
            {
                throw new ModelCardException(ModelCardKeys.NormalizationMean, $"Model card key '{ModelCardKeys.NormalizationMean}' has a non-finite mean ({mean[c]}) for channel '{channels[c]}'; expected a finite number.");
            }

            if (!float.IsFinite(std[c]) || std[c] <= 0)
            {
                throw new ModelCardException(ModelCardKeys.NormalizationStd, $"Model card key '{ModelCardKeys.NormalizationStd}' has std {std[c]} for channel '{channels[c]}'; expected a finite number > 0.");
            }
        }

        var output = copy[ModelCardKeys.Output] switch
        {
            "probabilities" => ModelOutputKind.Probabilities,
            "logits" => ModelOutputKind.Logits,
            var other => throw new ModelCardException(ModelCardKeys.Output, $"Model card key '{ModelCardKeys.Output}' is '{other}'; expected 'probabilities' or 'logits'."),
        };

        if (!long.TryParse(copy[ModelCardKeys.Parameters], NumberStyles.None, CultureInfo.InvariantCulture, out var parameters) || parameters <= 0)
        {
            throw new ModelCardException(ModelCardKeys.Parameters, $"Model card key '{ModelCardKeys.Parameters}' is '{copy[ModelCardKeys.Parameters]}'; expected a positive integer parameter count.");
        }

        RequireJsonObject(copy, ModelCardKeys.TrainingData);
        var metrics = ParseMetrics(copy);

        if (!DateTimeOffset.TryParse(copy[ModelCardKeys.TrainedAt], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var trainedAt))
        {
            throw new ModelCardException(ModelCardKeys.TrainedAt, $"Model card key '{ModelCardKeys.TrainedAt}' is '{copy[ModelCardKeys.TrainedAt]}'; expected an ISO-8601 timestamp.");
        }

        return new ModelCard(copy, name, version, labels, windowLength, contextFrames, stride, sampleRate, channels, mean, std, output, parameters, metrics, trainedAt);
    }

    /// <summary>The largest fixed batch axis served (every run pads to it; a dynamic axis has no limit but the options').</summary>
    internal const int MaxFixedBatch = 256;

    /// <summary>
    /// Gets the graph's fixed batch size, or 0 when its batch axis is dynamic. A fixed axis is served with every run
    /// holding exactly that many windows (padded when fewer wait); only <see cref="ModelCard.FromSession"/> sets it.
    /// </summary>
    internal int FixedBatchSize { get; private set; }

    /// <summary>The most context frames a card may ask for (a window of 2^20 frames is about 6 hours at 50 Hz).</summary>
    private const int MaxContextFrames = 1 << 20;

    /// <summary>Returns <c>name@version</c>.</summary>
    /// <returns>The model's identity.</returns>
    public override string ToString() => $"{ModelName}@{ModelVersion}";

    private void ValidateAgainstGraph(InferenceSession session)
    {
        if (session.InputMetadata.Count != 1)
        {
            throw new ModelCardException(null, $"Model {this} has {session.InputMetadata.Count} inputs; expected exactly one float32 input [N, {InputFrames}, {ChannelCount}].");
        }

        if (session.OutputMetadata.Count < 1)
        {
            throw new ModelCardException(null, $"Model {this} has no outputs; expected one float32 output [N, {ClassCount}].");
        }

        var (inputName, input) = session.InputMetadata.First();
        if (input.ElementDataType != TensorElementType.Float)
        {
            throw new ModelCardException(null, $"Model {this} input '{inputName}' is {input.ElementDataType}; expected float32.");
        }

        var dims = input.Dimensions;
        if (dims.Length != 3)
        {
            throw new ModelCardException(null, $"Model {this} input '{inputName}' has rank {dims.Length}; expected rank 3 [N, {InputFrames}, {ChannelCount}].");
        }

        if (dims[1] == ChannelCount && dims[2] == InputFrames && ChannelCount != InputFrames)
        {
            throw new ModelCardException(null, $"Model {this}: the graph input '{inputName}' is [N, {dims[1]}, {dims[2]}], channels before time; expected [N, {InputFrames}, {ChannelCount}] (batch, time, channel: the frames of a window in order, each frame's {ChannelCount} channel values together). Export the network with its input transposed, e.g. a forward() that begins with x.transpose(1, 2).");
        }

        if (dims[1] != InputFrames)
        {
            var cardSays = ContextFrames == 0
                ? $"card says window length {WindowLength}"
                : $"card says window length {WindowLength} plus {ContextFrames} context frames ({InputFrames})";
            throw new ModelCardException(ContextFrames == 0 ? ModelCardKeys.WindowLength : ModelCardKeys.ContextFrames, $"Model {this}: {cardSays} but the graph input '{inputName}' has {dims[1]} time steps; expected them to agree.");
        }

        if (dims[2] != ChannelCount)
        {
            throw new ModelCardException(ModelCardKeys.Channels, $"Model {this}: card lists {ChannelCount} channels but the graph input '{inputName}' has {dims[2]}; expected them to agree.");
        }

        // A fixed batch axis (what torch.onnx.export writes without dynamic_axes) is served: every run then holds exactly
        // that many windows (the batch padded when fewer are waiting). A dynamic axis is reported as -1.
        if (dims[0] > 0)
        {
            if (dims[0] > MaxFixedBatch)
            {
                throw new ModelCardException(null, $"Model {this}: the graph input '{inputName}' has a fixed batch axis of {dims[0]}; expected a dynamic one (or a fixed one of at most {MaxFixedBatch}). Export with dynamic_axes={{'{inputName}': {{0: 'N'}}, '<output>': {{0: 'N'}}}}.");
            }

            FixedBatchSize = (int)dims[0];
        }

        var (outputName, output) = session.OutputMetadata.First();
        if (output.ElementDataType != TensorElementType.Float || output.Dimensions.Length != 2)
        {
            throw new ModelCardException(null, $"Model {this} output '{outputName}' is {output.ElementDataType} of rank {output.Dimensions.Length}; expected float32 [N, {ClassCount}].");
        }

        if (FixedBatchSize > 0 && output.Dimensions[0] > 0 && output.Dimensions[0] != FixedBatchSize)
        {
            throw new ModelCardException(null, $"Model {this}: the graph input '{inputName}' has a fixed batch axis of {FixedBatchSize} but the output '{outputName}' one of {output.Dimensions[0]}; expected the same number of rows as windows.");
        }

        if (output.Dimensions[1] != ClassCount)
        {
            throw new ModelCardException(ModelCardKeys.Labels, $"Model {this}: card lists {ClassCount} labels but the graph output '{outputName}' has {output.Dimensions[1]} classes; expected them to agree.");
        }
    }

    private static int ParsePositiveInt(ReadOnlyDictionary<string, string> metadata, string key)
    {
        if (!int.TryParse(metadata[key], NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value <= 0)
        {
            throw new ModelCardException(key, $"Model card key '{key}' is '{metadata[key]}'; expected a positive integer.");
        }

        return value;
    }

    private static double ParseDouble(ReadOnlyDictionary<string, string> metadata, string key)
    {
        if (!double.TryParse(metadata[key], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            throw new ModelCardException(key, $"Model card key '{key}' is '{metadata[key]}'; expected a number.");
        }

        return value;
    }

    private static JsonElement ParseJson(IReadOnlyDictionary<string, string> metadata, string key, JsonValueKind expected, string example)
    {
        try
        {
            using var doc = JsonDocument.Parse(metadata[key]);
            if (doc.RootElement.ValueKind != expected)
            {
                throw new ModelCardException(key, $"Model card key '{key}' holds a JSON {doc.RootElement.ValueKind}; expected a JSON {expected}, e.g. {example}.");
            }

            return doc.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new ModelCardException(key, $"Model card key '{key}' is not valid JSON ({ex.Message}); expected e.g. {example}.", ex);
        }
    }

    private static string[] ParseStringArray(IReadOnlyDictionary<string, string> metadata, string key)
    {
        var array = ParseJson(metadata, key, JsonValueKind.Array, "[\"a\",\"b\"]");
        var result = new string[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(item.GetString()))
            {
                throw new ModelCardException(key, $"Model card key '{key}' item {i} is {(item.ValueKind == JsonValueKind.String ? "a blank string" : item.ValueKind.ToString())}; expected a non-empty string.");
            }

            var value = item.GetString()!;
            var first = Array.FindIndex(result, 0, i, r => string.Equals(r, value, StringComparison.OrdinalIgnoreCase));
            if (first >= 0)
            {
                // Versions are compared by these names (activities, channels): a repeated one would make that ambiguous.
                throw new ModelCardException(key, $"Model card key '{key}' names '{value}' twice (items {first} and {i}, compared ignoring case); expected each name once.");
            }

            result[i++] = value;
        }

        return result;
    }

    private static float[] ParseFloatArray(IReadOnlyDictionary<string, string> metadata, string key, int expectedLength)
    {
        var array = ParseJson(metadata, key, JsonValueKind.Array, "[0.0, 1.0, ...]");
        if (array.GetArrayLength() != expectedLength)
        {
            throw new ModelCardException(key, $"Model card key '{key}' has {array.GetArrayLength()} values; expected {expectedLength} (one per channel).");
        }

        var result = new float[expectedLength];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number)
            {
                throw new ModelCardException(key, $"Model card key '{key}' item {i} is {item.ValueKind}; expected a number.");
            }

            result[i++] = (float)item.GetDouble();
        }

        return result;
    }

    private static void RequireJsonObject(IReadOnlyDictionary<string, string> metadata, string key) =>
        ParseJson(metadata, key, JsonValueKind.Object, "{\"dataset\": \"uci-hapt\"}");

    private static ModelCardMetrics ParseMetrics(IReadOnlyDictionary<string, string> metadata)
    {
        const string Key = ModelCardKeys.Metrics;
        var obj = ParseJson(metadata, Key, JsonValueKind.Object, "{\"accuracy\": 0.93, \"macro_f1\": 0.91, \"n_windows\": 3000}");
        double Number(string name)
        {
            if (!obj.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.Number)
            {
                throw new ModelCardException(Key, $"Model card key '{Key}' lacks a numeric '{name}'; expected accuracy, macro_f1 and n_windows.");
            }

            return v.GetDouble();
        }

        var accuracy = Number("accuracy");
        var macroF1 = Number("macro_f1");
        var windows = Number("n_windows");
        if (accuracy is < 0 or > 1 || macroF1 is < 0 or > 1 || windows < 0 || windows != Math.Floor(windows))
        {
            throw new ModelCardException(Key, $"Model card key '{Key}' has accuracy {accuracy}, macro_f1 {macroF1}, n_windows {windows}; expected fractions in [0, 1] and a whole window count.");
        }

        return new ModelCardMetrics(accuracy, macroF1, (int)windows);
    }
}
