using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Audit;
using Har.Inference;

namespace Har.Deployment;

/// <summary>
/// A model registry on a directory, in the reference layout:
/// <code>
/// registry/
///   v1.0.0/model.onnx  config.json  deployment_record.json
///   v1.1.0/model.onnx  config.json  deployment_record.json
///   current            (holds "v1.0.0"; replaced atomically by rename)
/// </code>
/// Versions are immutable once registered. A version's <c>model.onnx</c> is hashed (SHA-256) at
/// registration and again before it is loaded; a mismatch is refused. Version names are strict
/// semantic versions, and every path is checked to stay inside the registry directory.
/// </summary>
public sealed class ModelRegistry
{
    /// <summary>The model file name inside a version folder.</summary>
    public const string ModelFileName = "model.onnx";

    /// <summary>The model card file name inside a version folder.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>The deployment record file name inside a version folder.</summary>
    public const string RecordFileName = "deployment_record.json";

    /// <summary>The name of the pointer file that holds the current version's folder name.</summary>
    public const string CurrentFileName = "current";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private readonly TimeProvider _time;
    private readonly string _rootWithSeparator;

    /// <summary>Initializes a new instance of the <see cref="ModelRegistry"/> class on <paramref name="root"/> (created if missing).</summary>
    /// <param name="root">The registry directory.</param>
    /// <param name="auditLog">The audit log registrations, refusals and (through a <see cref="RolloutController"/> on this registry) every rollout decision are appended to; <see langword="null"/> for none.</param>
    /// <param name="timeProvider">The clock for registration timestamps; <see cref="TimeProvider.System"/> by default.</param>
    public ModelRegistry(string root, AuditLog? auditLog = null, TimeProvider? timeProvider = null)
    {
        Audit = auditLog is null ? null : new AuditLogSink(auditLog);
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        _rootWithSeparator = Root + Path.DirectorySeparatorChar;
        _time = timeProvider ?? TimeProvider.System;
        Directory.CreateDirectory(Root);
    }

    /// <summary>Gets the registry directory (absolute).</summary>
    public string Root { get; }

    /// <summary>Gets the current version (from the <c>current</c> pointer), or <see langword="null"/> when none is set.</summary>
    public string? CurrentVersion
    {
        get
        {
            var path = Path.Combine(Root, CurrentFileName);
            if (!File.Exists(path))
            {
                return null;
            }

            var folder = File.ReadAllText(path).Trim();
            if (!folder.StartsWith('v') || !ModelVersionName.TryNormalize(folder, out var version))
            {
                throw new InvalidDataException($"The registry pointer '{path}' holds '{folder}'; expected a version folder name such as 'v1.2.0'.");
            }

            return version;
        }
    }

    /// <summary>Gets or sets the audit sink refusals and registrations are written to (set by the composition root).</summary>
    internal IDeploymentAuditSink? Audit { get; set; }

    /// <summary>
    /// Registers the model at <paramref name="modelPath"/>: validates its card, copies it into
    /// <c>v{version}/model.onnx</c> while hashing it, writes <c>config.json</c> (the card) and
    /// <c>deployment_record.json</c>, and publishes the folder with one atomic rename.
    /// </summary>
    /// <param name="modelPath">The <c>.onnx</c> file to register; its card's version names the folder.</param>
    /// <param name="options">Who registers it and for which environment; defaults when <see langword="null"/>.</param>
    /// <returns>The registered version.</returns>
    /// <exception cref="ModelCardException">The file's card is missing or invalid.</exception>
    /// <exception cref="InvalidOperationException">The version is already registered (versions are immutable).</exception>
    public RegisteredModel Register(string modelPath, ModelRegistrationOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        options ??= new ModelRegistrationOptions();
        var card = ModelCard.Load(modelPath);
        var version = ModelVersionName.Normalize(card.ModelVersion);
        var target = VersionDirectory(version);
        if (Directory.Exists(target))
        {
            throw new InvalidOperationException($"Model version {version} is already registered in '{Root}'; versions are immutable, so register the new model under a new version.");
        }

        var staging = Path.Combine(Root, $".staging-{version}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
        Directory.CreateDirectory(staging);
        try
        {
            string sha256;
            using (var source = new FileStream(modelPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
            using (var destination = new FileStream(Path.Combine(staging, ModelFileName), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = source.Read(buffer)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    destination.Write(buffer, 0, read);
                }

                destination.Flush(flushToDisk: true);
                sha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
            }

            var now = _time.GetUtcNow();
            var deploymentId = options.DeploymentId ?? string.Create(CultureInfo.InvariantCulture, $"deploy-{now:yyyy-MM-dd}-{sha256[..8]}");
            WriteText(Path.Combine(staging, ConfigFileName), CardJson(card));
            var record = CreateDeploymentRecord(card, sha256, deploymentId, now, options);
            WriteText(Path.Combine(staging, RecordFileName), JsonNode.Parse(record.ToCanonicalJson())!.ToJsonString(Indented) + "\n");
            DurableFile.FsyncDirectory(staging);
            Directory.Move(staging, target);
            DurableFile.FsyncDirectory(Root);

            var registered = new RegisteredModel(version, target, card.ModelName, sha256, card.Parameters, now, deploymentId);
            Audit?.ModelRegistered(registered, record, options.Deployer ?? Environment.UserName, now);
            if (options.MakeCurrentIfNone && CurrentVersion is null)
            {
                SetCurrent(version);
            }

            return registered;
        }
        catch
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }

            throw;
        }
    }

    /// <summary>Lists the registered versions in semantic-version order.</summary>
    /// <returns>The versions whose folder holds a readable deployment record.</returns>
    public IReadOnlyList<RegisteredModel> List()
    {
        var result = new List<RegisteredModel>();
        foreach (var dir in Directory.EnumerateDirectories(Root, "v*"))
        {
            var name = Path.GetFileName(dir);
            if (ModelVersionName.TryNormalize(name, out var version) && name == ModelVersionName.FolderName(version) && TryReadRecord(version, out var model, out _))
            {
                result.Add(model!);
            }
        }

        result.Sort(static (a, b) => CompareVersions(a.Version, b.Version));
        return result;
    }

    /// <summary>Gets a registered version.</summary>
    /// <param name="version">The version, e.g. <c>1.2.0</c> or <c>v1.2.0</c>.</param>
    /// <returns>The version.</returns>
    /// <exception cref="ArgumentException"><paramref name="version"/> is not a semantic version.</exception>
    /// <exception cref="KeyNotFoundException">The version is not registered.</exception>
    public RegisteredModel Get(string version)
    {
        var normalized = ModelVersionName.Normalize(version);
        if (!TryReadRecord(normalized, out var model, out var problem))
        {
            throw new KeyNotFoundException($"Model version {normalized} is not registered in '{Root}' ({problem}); registered: {string.Join(", ", List().Select(m => m.Version))}.");
        }

        return model!;
    }

    /// <summary>
    /// Verifies a version: its files are regular files inside the registry, the SHA-256 of
    /// <c>model.onnx</c> equals the recorded one, and its card is valid and equals <c>config.json</c>.
    /// </summary>
    /// <param name="version">The version.</param>
    /// <returns>The verification, with every problem found.</returns>
    public ModelVerification Verify(string version)
    {
        var normalized = ModelVersionName.Normalize(version);
        var problems = new List<string>();
        string? expected = null;
        string? actual = null;
        if (!TryReadRecord(normalized, out var model, out var recordProblem))
        {
            problems.Add(recordProblem!);
        }
        else
        {
            expected = model!.Sha256;
        }

        var modelPath = Path.Combine(VersionDirectory(normalized), ModelFileName);
        if (CheckRegularFile(modelPath, problems))
        {
            actual = HashFile(modelPath);
            if (expected is not null && !CryptographicOperations.FixedTimeEquals(Convert.FromHexString(expected), Convert.FromHexString(actual)))
            {
                problems.Add($"model.onnx has SHA-256 {actual} but its deployment record says {expected}; the file was modified after registration.");
            }

            try
            {
                var card = ModelCard.Load(modelPath);
                if (ModelVersionName.Normalize(card.ModelVersion) != normalized)
                {
                    problems.Add($"model.onnx carries version {card.ModelVersion} in its card; expected {normalized} (the folder's version).");
                }

                var configPath = Path.Combine(VersionDirectory(normalized), ConfigFileName);
                if (CheckRegularFile(configPath, problems) && !JsonNode.DeepEquals(JsonNode.Parse(File.ReadAllText(configPath)), JsonNode.Parse(CardJson(card))))
                {
                    problems.Add("config.json differs from the card inside model.onnx; expected config.json to be the model's card.");
                }
            }
            catch (Exception ex) when (ex is ModelCardException or JsonException)
            {
                problems.Add($"the model card is invalid: {ex.Message}");
            }
        }

        var verification = new ModelVerification(normalized, expected, actual, problems);
        if (!verification.IsValid)
        {
            Audit?.ModelRefused(verification, "verify", _time.GetUtcNow());
        }

        return verification;
    }

    /// <summary>
    /// Reads a version's model file into memory and checks the SHA-256 of exactly those bytes against
    /// the record, so the bytes that are loaded are the bytes that were verified (no check-then-use race).
    /// </summary>
    internal VerifiedModelBytes ReadVerified(string version, string purpose)
    {
        var model = Get(version);
        var path = model.ModelPath;
        var problems = new List<string>();
        if (!CheckRegularFile(path, problems))
        {
            var refused = new ModelVerification(model.Version, model.Sha256, null, problems);
            Audit?.ModelRefused(refused, purpose, _time.GetUtcNow());
            throw new ModelIntegrityException(refused);
        }

        var bytes = File.ReadAllBytes(path);
        var actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (!CryptographicOperations.FixedTimeEquals(Convert.FromHexString(model.Sha256), Convert.FromHexString(actual)))
        {
            var refused = new ModelVerification(model.Version, model.Sha256, actual, [$"model.onnx has SHA-256 {actual} but its deployment record says {model.Sha256}; the file was modified after registration."]);
            Audit?.ModelRefused(refused, purpose, _time.GetUtcNow());
            throw new ModelIntegrityException(refused);
        }

        return new VerifiedModelBytes(model, bytes);
    }

    /// <summary>Points <c>current</c> at <paramref name="version"/> (atomic rename) after verifying it.</summary>
    /// <param name="version">The version to make current.</param>
    /// <exception cref="ModelIntegrityException">The version fails verification.</exception>
    public void SetCurrent(string version)
    {
        var verification = Verify(version);
        if (!verification.IsValid)
        {
            throw new ModelIntegrityException(verification);
        }

        WriteCurrentPointer(verification.Version);
    }

    /// <summary>Switches the <c>current</c> pointer durably (temp file, fsync, rename, directory fsync), without verifying the version.</summary>
    internal void WriteCurrentPointer(string normalizedVersion) =>
        WriteText(Path.Combine(Root, CurrentFileName), ModelVersionName.FolderName(normalizedVersion) + "\n");

    private static void WriteText(string path, string text) => DurableFile.WriteAtomic(path, Encoding.UTF8.GetBytes(text));

    /// <summary>Resolves a version's folder, refusing any path that would leave the registry.</summary>
    internal string VersionDirectory(string normalizedVersion)
    {
        var full = Path.GetFullPath(Path.Combine(Root, ModelVersionName.FolderName(normalizedVersion)));
        if (!full.StartsWith(_rootWithSeparator, StringComparison.Ordinal) || full.IndexOf(Path.DirectorySeparatorChar, _rootWithSeparator.Length) >= 0)
        {
            throw new ArgumentException($"Version '{normalizedVersion}' resolves to '{full}', outside the registry '{Root}'; expected a folder directly inside it.", nameof(normalizedVersion));
        }

        return full;
    }

    internal static int CompareVersions(string a, string b) => SemanticVersion.Parse(a).CompareTo(SemanticVersion.Parse(b));

    internal static string HashFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    internal static string CardJson(ModelCard card)
    {
        var obj = new JsonObject();
        foreach (var key in card.Metadata.Keys.Order(StringComparer.Ordinal))
        {
            obj[key] = card.Metadata[key];
        }

        return obj.ToJsonString(Indented) + "\n";
    }

    private bool TryReadRecord(string version, out RegisteredModel? model, out string? problem)
    {
        model = null;
        var dir = VersionDirectory(version);
        var problems = new List<string>();
        if (!Directory.Exists(dir))
        {
            problem = $"no folder {ModelVersionName.FolderName(version)}";
            return false;
        }

        if (new DirectoryInfo(dir).LinkTarget is not null)
        {
            problem = $"{ModelVersionName.FolderName(version)} is a link; expected a real folder inside the registry";
            return false;
        }

        var recordPath = Path.Combine(dir, RecordFileName);
        if (!CheckRegularFile(recordPath, problems))
        {
            problem = problems[0];
            return false;
        }

        try
        {
            var record = DeploymentRecord.Parse(File.ReadAllBytes(recordPath));
            if (!ModelVersionName.TryNormalize(record.Model.Version, out var recorded) || recorded != version)
            {
                problem = $"deployment_record.json names version {record.Model.Version}; expected {version}";
                return false;
            }

            model = new RegisteredModel(version, dir, record.Model.Name, record.Model.Sha256, record.Model.Parameters, record.Timestamp, record.DeploymentId);
            problem = null;
            return true;
        }
        catch (AuditRecordException ex)
        {
            problem = $"deployment_record.json does not match the deployment-record schema ({ex.Message})";
            return false;
        }
    }

    private bool CheckRegularFile(string path, List<string> problems)
    {
        var full = Path.GetFullPath(path);
        if (!full.StartsWith(_rootWithSeparator, StringComparison.Ordinal))
        {
            problems.Add($"'{full}' is outside the registry '{Root}'.");
            return false;
        }

        var info = new FileInfo(full);
        if (!info.Exists)
        {
            problems.Add($"{Path.GetFileName(full)} is missing from {Path.GetFileName(Path.GetDirectoryName(full))}.");
            return false;
        }

        if (info.LinkTarget is not null)
        {
            problems.Add($"{Path.GetFileName(full)} is a link to '{info.LinkTarget}'; expected a regular file inside the registry.");
            return false;
        }

        return true;
    }

    private static DeploymentRecord CreateDeploymentRecord(ModelCard card, string sha256, string deploymentId, DateTimeOffset now, ModelRegistrationOptions options)
    {
        JsonObject trainingData;
        try
        {
            trainingData = JsonNode.Parse(card.TrainingData) as JsonObject ?? [];
        }
        catch (JsonException)
        {
            trainingData = [];
        }

        return new DeploymentRecord
        {
            DeploymentId = deploymentId,
            Timestamp = now,
            Model = new DeployedModel
            {
                Name = card.ModelName,
                Version = card.ModelVersion,
                RunId = options.RunId ?? "none",
                Sha256 = sha256,
                Parameters = card.Parameters,
            },
            TrainingData = new TrainingDataIdentity
            {
                DataVersion = (string?)trainingData["dataset"] ?? "unknown",
                Commit = (string?)trainingData["sha256"] ?? "unknown",
                Samples = trainingData["windows"]?["train"]?.GetValue<long>() ?? 0,
                Users = (trainingData["train_subjects"] as JsonArray)?.Count ?? 0,
            },
            Validation = new ValidationMetrics
            {
                TestAccuracy = card.Metrics.Accuracy,
                MacroF1 = card.Metrics.MacroF1,
                PassedSmokeTest = options.PassedSmokeTest,
            },
            Config = new InferenceConfig
            {
                WindowSize = card.WindowLength,
                SampleRateHz = card.SampleRateHz,
                Classes = card.ClassCount,
                ConfidenceThreshold = options.ConfidenceThreshold,
            },
            Deployer = new Deployer
            {
                User = options.Deployer ?? Environment.UserName,
                Method = options.Method,
                ApprovedBy = options.ApprovedBy ?? "pending",
            },
            Environment = new DeploymentEnvironment
            {
                Target = options.EnvironmentTarget,
                Replicas = options.Replicas,
                Resources = new ResourceRequest { Cpu = options.Cpu, Memory = options.Memory },
            },
        };
    }
}

/// <summary>A model's bytes, read once and verified against the registry record.</summary>
internal sealed record VerifiedModelBytes(RegisteredModel Model, byte[] Bytes);
