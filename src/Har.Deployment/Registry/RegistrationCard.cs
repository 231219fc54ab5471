using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Audit;
using Har.Inference;

namespace Har.Deployment;

/// <summary>
/// The checks a model card passes before its version is registered (bounded size, a training-data
/// identity of the expected shape) and the files the registry derives from it: <c>config.json</c> and
/// <c>deployment_record.json</c>.
/// </summary>
internal static class RegistrationCard
{
    /// <summary>The most metadata keys a registered card may carry (the Har card has 15; the rest is room for the user's own).</summary>
    internal const int MaxKeys = 64;

    /// <summary>The most UTF-8 bytes of all keys and values together.</summary>
    internal const int MaxBytes = 256 * 1024;

    /// <summary>The most UTF-8 bytes of one key.</summary>
    internal const int MaxKeyBytes = 128;

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Loads and validates the card of <paramref name="modelPath"/>; messages name the file, never its folder.</summary>
    public static ModelCard Load(string modelPath)
    {
        if (!File.Exists(modelPath))
        {
            var where = Path.IsPathFullyQualified(modelPath) ? string.Empty : $" (looked for '{Path.GetFullPath(modelPath)}': a relative path is read from the working directory)";
            throw new FileNotFoundException(
                Directory.Exists(modelPath)
                    ? $"Model path '{modelPath}' is a folder{where}; expected the .onnx file to register, such as models/har-cnn-bilstm-1.0.0.onnx of the repository."
                    : $"Model file '{modelPath}' does not exist{where}; expected the .onnx file to register, with a Har model card.",
                modelPath);
        }

        CheckSelfContained(modelPath);
        ModelCard card;
        try
        {
            card = ModelCard.Load(modelPath);
        }
        catch (ModelCardException ex) when (ex.Message.Contains(modelPath, StringComparison.Ordinal))
        {
            throw new ModelCardException(ex.Key, ex.Message.Replace(modelPath, Path.GetFileName(modelPath), StringComparison.Ordinal), ex);
        }

        CheckSize(card);
        return card;
    }

    /// <summary>
    /// Refuses a model that keeps tensor data in other files (ONNX external data): the registry stores, hashes
    /// and anchors <c>model.onnx</c> alone, so such data would be neither copied nor verified.
    /// </summary>
    /// <exception cref="ModelCardException">A tensor refers to external data, or the file is not a well-formed protobuf.</exception>
    public static void CheckSelfContained(string modelPath)
    {
        var name = Path.GetFileName(modelPath);
        string? found;
        try
        {
            found = OnnxExternalData.Find(modelPath);
        }
        catch (InvalidDataException ex)
        {
            throw new ModelCardException(null, $"{name} cannot be registered: {ex.Message}", ex);
        }

        if (found is not null)
        {
            throw new ModelCardException(null, ExternalDataProblem(name, found));
        }
    }

    /// <summary>The refusal of a model whose tensor <paramref name="found"/> keeps its data in another file.</summary>
    public static string ExternalDataProblem(string fileName, string found) =>
        $"{fileName} cannot be registered: its {found}. The registry stores, hashes and anchors the .onnx file alone, so data kept in another file would be neither copied nor verified. Save the model with every tensor inside the file (Python: onnx.save_model(model, path, save_as_external_data=False); a model must then be under 2 GB) and register that file.";

    /// <summary>Refuses a card larger than the registry keeps (every read of the version would pay for it).</summary>
    /// <exception cref="ModelCardException">Too many keys, a key too long, or too many bytes.</exception>
    public static void CheckSize(ModelCard card)
    {
        var metadata = card.Metadata;
        if (metadata.Count > MaxKeys)
        {
            throw new ModelCardException(null, $"The model card has {metadata.Count} metadata keys; the registry accepts at most {MaxKeys} (the Har card keys plus your own). Move bulky details (per-class reports, histories) out of the ONNX metadata.");
        }

        long total = 0;
        foreach (var (key, value) in metadata)
        {
            var keyBytes = Encoding.UTF8.GetByteCount(key);
            if (keyBytes > MaxKeyBytes)
            {
                throw new ModelCardException(null, $"A model card key is {keyBytes} bytes long; the registry accepts keys of at most {MaxKeyBytes} bytes.");
            }

            total += keyBytes + Encoding.UTF8.GetByteCount(value);
        }

        if (total > MaxBytes)
        {
            throw new ModelCardException(null, $"The model card's metadata is {total} bytes; the registry accepts at most {MaxBytes} bytes (keys and values, UTF-8).");
        }
    }

    /// <summary><c>config.json</c>: the card's metadata, keys in ordinal order, indented.</summary>
    public static byte[] ConfigJson(ModelCard card)
    {
        var obj = new JsonObject();
        foreach (var key in card.Metadata.Keys.Order(StringComparer.Ordinal))
        {
            obj[key] = card.Metadata[key];
        }

        return Encoding.UTF8.GetBytes(obj.ToJsonString(Indented) + "\n");
    }

    /// <summary><c>deployment_record.json</c>: the record, indented (its canonical form is what the audit log holds).</summary>
    public static byte[] RecordJson(DeploymentRecord record) =>
        Encoding.UTF8.GetBytes(JsonNode.Parse(record.ToCanonicalJson())!.ToJsonString(Indented) + "\n");

    /// <summary>The training-data identity from the card's <c>training_data</c> object; absent members are "unknown" / 0.</summary>
    /// <exception cref="ModelCardException">A member has the wrong type.</exception>
    public static TrainingDataIdentity TrainingData(ModelCard card)
    {
        const string Key = "har.training_data"; // the card key (Har.Inference keeps the list of keys internal)
        const string Expected = "expected {\"dataset\": \"uci-hapt\", \"sha256\": \"…\", \"windows\": {\"train\": 7767}, \"train_subjects\": [1, 3, …]} (every member optional)";
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(card.TrainingData);
            root = document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new ModelCardException(Key, $"Model card key '{Key}' is not valid JSON ({ex.Message}); {Expected}.", ex);
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ModelCardException(Key, $"Model card key '{Key}' is a JSON {root.ValueKind}; {Expected}.");
        }

        string Text(string name)
        {
            if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return "unknown";
            }

            return value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 and <= 256 } s
                ? s
                : throw new ModelCardException(Key, $"Model card key '{Key}' has '{name}' as {Describe(value)}; {Expected}.");
        }

        long samples = 0;
        if (root.TryGetProperty("windows", out var windows) && windows.ValueKind != JsonValueKind.Null)
        {
            if (windows.ValueKind != JsonValueKind.Object)
            {
                throw new ModelCardException(Key, $"Model card key '{Key}' has 'windows' as {Describe(windows)}; {Expected}.");
            }

            if (windows.TryGetProperty("train", out var train) && train.ValueKind != JsonValueKind.Null && (train.ValueKind != JsonValueKind.Number || !train.TryGetInt64(out samples) || samples < 0))
            {
                throw new ModelCardException(Key, $"Model card key '{Key}' has 'windows.train' as {Describe(train)}; expected a whole number of windows >= 0.");
            }
        }

        var users = 0;
        if (root.TryGetProperty("train_subjects", out var subjects) && subjects.ValueKind != JsonValueKind.Null)
        {
            if (subjects.ValueKind != JsonValueKind.Array)
            {
                throw new ModelCardException(Key, $"Model card key '{Key}' has 'train_subjects' as {Describe(subjects)}; {Expected}.");
            }

            users = subjects.GetArrayLength();
        }

        return new TrainingDataIdentity(Text("dataset"), Text("sha256"), samples, users);
    }

    public static DeploymentRecord CreateRecord(ModelCard card, TrainingDataIdentity trainingData, string sha256, string deploymentId, DateTimeOffset now, ModelRegistrationOptions options) => new(
        deploymentId,
        new DeployedModel(card.ModelName, card.ModelVersion, options.RunId ?? "none", sha256, card.Parameters),
        trainingData,
        new ValidationMetrics(card.Metrics.Accuracy, card.Metrics.MacroF1, options.PassedSmokeTest),
        new InferenceConfig(card.WindowLength, card.SampleRateHz, card.ClassCount, options.ConfidenceThreshold),
        new Deployer(options.Deployer ?? Environment.UserName, options.Method, options.ApprovedBy ?? "pending"),
        new DeploymentEnvironment(options.EnvironmentTarget, options.Replicas, new ResourceRequest(options.Cpu, options.Memory)))
    {
        Timestamp = now,
    };

    public static string DefaultDeploymentId(DateTimeOffset now, string sha256) =>
        string.Create(CultureInfo.InvariantCulture, $"deploy-{now:yyyy-MM-dd}-{sha256[..8]}");

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{Clip(value.GetString()!)}\"",
        JsonValueKind.Number => $"the number {Clip(value.GetRawText())}",
        _ => $"a JSON {value.ValueKind.ToString().ToLowerInvariant()}",
    };

    private static string Clip(string s) => s.Length <= 40 ? s : string.Concat(s.AsSpan(0, 40), "…");
}
