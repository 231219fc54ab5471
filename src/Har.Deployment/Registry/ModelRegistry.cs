using System.Collections.Concurrent;
using System.Security.Cryptography;
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
/// Versions are immutable once registered. With an audit log, the log is the reference: registering a
/// version first appends its deployment record and the SHA-256 of its three files to the log (nothing is
/// written to the registry when that append fails), and a version whose files disagree with the log is
/// refused at load, at promotion and by <see cref="Verify(string)"/>, each refusal audited. Version names
/// are strict semantic versions, every path stays inside the registry directory, and writers in several
/// processes sharing the directory take turns.
/// </summary>
public sealed partial class ModelRegistry
{
    /// <summary>The model file name inside a version folder.</summary>
    internal const string ModelFileName = "model.onnx";

    /// <summary>The model card file name inside a version folder.</summary>
    internal const string ConfigFileName = "config.json";

    /// <summary>The deployment record file name inside a version folder.</summary>
    internal const string RecordFileName = "deployment_record.json";

    /// <summary>The name of the pointer file that holds the current version's folder name.</summary>
    internal const string CurrentFileName = "current";

    private readonly TimeProvider _time;
    private readonly string _rootWithSeparator;
    private readonly ConcurrentDictionary<string, RegisteredModel> _models = new(StringComparer.Ordinal);

    /// <summary>Initializes a new instance of the <see cref="ModelRegistry"/> class on <paramref name="root"/> (created if missing).</summary>
    /// <param name="root">The registry directory.</param>
    /// <param name="auditLog">The audit log that anchors the registry (registrations, refusals and, through a <see cref="RolloutController"/> on this registry, every rollout decision); <see langword="null"/> for none, and then a version is checked against its own deployment record only.</param>
    /// <param name="timeProvider">The clock for registration timestamps and scheduled verification; <see cref="TimeProvider.System"/> by default.</param>
    /// <exception cref="ArgumentException"><paramref name="root"/> is empty, or is a file.</exception>
    public ModelRegistry(string root, AuditLog? auditLog = null, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        if (File.Exists(root))
        {
            throw new ArgumentException($"The registry root '{root}' is a file; expected a folder (created if missing), such as an empty 'registry' folder beside the audit log's.", nameof(root));
        }

        Audit = auditLog is null ? null : new AuditLogSink(auditLog);
        Anchors = auditLog is null ? null : new RegistryAnchors(auditLog);
        Retirements = auditLog is null ? null : new RegistryRetirements(auditLog);
        Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        _rootWithSeparator = Root + Path.DirectorySeparatorChar;
        _time = timeProvider ?? TimeProvider.System;
        Directory.CreateDirectory(Root);
    }

    /// <summary>Gets the registry directory (absolute).</summary>
    internal string Root { get; }

    /// <summary>Gets the registry's clock.</summary>
    internal TimeProvider Time => _time;

    /// <summary>
    /// Gets this registry folder's identity (a GUID kept in <c>registry-id</c>, created on first use), written into its
    /// registrations: replicas sharing one audit log each hold their own folder, and a folder is vouched for by its own
    /// registrations, not by another replica's.
    /// </summary>
    internal string RegistryId => _registryId ??= ReadOrCreateRegistryId();

    private string? _registryId;

    private string ReadOrCreateRegistryId()
    {
        var path = Path.Combine(Root, "registry-id");
        if (File.Exists(path) && File.ReadAllText(path).Trim() is { Length: 32 } existing && Guid.TryParseExact(existing, "N", out _))
        {
            return existing;
        }

        var id = Guid.NewGuid().ToString("N");
        DurableFile.WriteAtomic(path, System.Text.Encoding.ASCII.GetBytes(id));
        return id;
    }

    /// <summary>Gets the current version (from the <c>current</c> pointer; in PostgreSQL when a fleet's controller shares it), or <see langword="null"/> when none is set.</summary>
    public string? CurrentVersion => _sharedCurrent is { } shared ? shared.Version : ReadCurrentFile();

    /// <summary>Reads the <c>current</c> file of the registry directory.</summary>
    internal string? ReadCurrentFile()
    {
        var path = Path.Combine(Root, CurrentFileName);
        if (!File.Exists(path))
        {
            return null;
        }

        var folder = File.ReadAllText(path).Trim();
        if (!folder.StartsWith('v') || !ModelVersionName.TryNormalize(folder, out var version))
        {
            throw new InvalidDataException($"The registry pointer '{CurrentFileName}' holds '{ModelVersionName.Printable(folder)}'; expected a version folder name such as 'v1.2.0'.");
        }

        return version;
    }

    /// <summary>Gets or sets the audit sink refusals and registrations are written to (set by the composition root).</summary>
    internal IDeploymentAuditSink? Audit { get; set; }

    /// <summary>Gets or sets the anchors read from the audit log; <see langword="null"/> when the registry has no log to read.</summary>
    internal RegistryAnchors? Anchors { get; set; }

    /// <summary>
    /// The versions this registry registered through its audit log, whether or not their folders are still there
    /// (<c>har models verify</c> checks these as well as the folders: a deleted folder is a finding, not a version
    /// that silently stops being listed).
    /// </summary>
    internal IReadOnlyList<string> RegisteredVersions() => Anchors?.VersionsFrom(RegistryId) ?? [];

    /// <summary>
    /// Registers the model at <paramref name="modelPath"/>: validates its card (at most 64 metadata keys,
    /// 256 KiB), hashes it, appends its deployment record and the hashes of its files to the audit log,
    /// then copies it into <c>v{version}/model.onnx</c>, writes <c>config.json</c> (the card) and
    /// <c>deployment_record.json</c>, and publishes the folder with one atomic rename.
    /// </summary>
    /// <param name="modelPath">The <c>.onnx</c> file to register; its card's version names the folder.</param>
    /// <param name="options">Who registers it and for which environment; defaults when <see langword="null"/>.</param>
    /// <returns>The registered version.</returns>
    /// <exception cref="FileNotFoundException"><paramref name="modelPath"/> does not exist, or is a folder.</exception>
    /// <exception cref="ModelCardException">The file's card is missing, invalid or larger than the registry accepts.</exception>
    /// <exception cref="ModelVersionConflictException">The version is already registered (versions are immutable).</exception>
    /// <exception cref="ModelRegistryUnavailableException">The audit record could not be written; nothing was registered.</exception>
    public RegisteredModel Register(string modelPath, ModelRegistrationOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        options ??= new ModelRegistrationOptions();
        var card = RegistrationCard.Load(modelPath);
        using var writer = AcquireWriter();
        return RegisterLocked(modelPath, card, options);
    }

    /// <summary>
    /// Registers trusted model files (e.g. the models bundled with the application), oldest version first,
    /// so the oldest becomes current in an empty registry. Safe when several processes seed the same
    /// registry at once (replicas starting together on one volume): they take turns, and a version another
    /// process registered from identical bytes is adopted (anchored in this registry's audit log) instead
    /// of registered twice. A registered version whose files differ from the trusted file is left alone and
    /// the refusal audited.
    /// </summary>
    /// <param name="modelPaths">The trusted <c>.onnx</c> files.</param>
    /// <param name="options">Who registers them; defaults when <see langword="null"/>.</param>
    /// <returns>The versions registered or adopted now (already anchored ones are not repeated).</returns>
    /// <exception cref="ModelCardException">A file's card is missing, invalid or too large.</exception>
    /// <exception cref="ModelRegistryUnavailableException">An audit record could not be written; the versions before it are seeded.</exception>
    public IReadOnlyList<RegisteredModel> Seed(IEnumerable<string> modelPaths, ModelRegistrationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(modelPaths);
        options ??= new ModelRegistrationOptions();
        var files = new List<(string Path, ModelCard Card, SemanticVersion Version)>();
        foreach (var file in modelPaths)
        {
            var card = RegistrationCard.Load(file);
            files.Add((file, card, CardVersion(card)));
        }

        files.Sort(static (a, b) => a.Version.CompareTo(b.Version));
        var seeded = new List<RegisteredModel>();
        using var writer = AcquireWriter();
        foreach (var (path, card, version) in files)
        {
            var name = version.ToString();
            if (!Directory.Exists(VersionDirectory(name)))
            {
                if (SeedConflictsWithFleet(path, name) is { } refusal)
                {
                    RefuseQuietly(refusal, "seed");
                    continue;
                }

                try
                {
                    seeded.Add(RegisterLocked(path, card, options));
                }
                catch (ModelVersionConflictException) when (_sharedModels is not null)
                {
                    // Another replica stored a different model under this version first (audited and undone): the fleet's stays.
                }
            }
            else if (AdoptLocked(path, card, name, options) is { } adopted)
            {
                seeded.Add(adopted);
            }
        }

        return seeded;
    }

    /// <summary>Lists the registered versions in semantic-version order.</summary>
    /// <returns>The versions whose folder holds a readable deployment record (in a fleet, first fetched from its database, each verified against the audit log).</returns>
    public IReadOnlyList<RegisteredModel> List()
    {
        if (_sharedModels is { } shared)
        {
            FetchMissing(shared);
        }

        return ListLocal();
    }

    /// <summary>Lists the versions in the registry folder.</summary>
    private List<RegisteredModel> ListLocal()
    {
        var result = new List<(SemanticVersion Order, RegisteredModel Model)>();
        foreach (var dir in Directory.EnumerateDirectories(Root, "v*"))
        {
            var name = Path.GetFileName(dir);
            if (ModelVersionName.TryNormalize(name, out var version) && name == ModelVersionName.FolderName(version) && TryGetModel(version, out var model, out _))
            {
                result.Add((ModelVersionName.Parse(version), model!));
            }
        }

        result.Sort(static (a, b) => a.Order.CompareTo(b.Order));
        return [.. result.Select(static r => r.Model)];
    }

    /// <summary>Gets a registered version (its recorded identity, cached: versions are immutable).</summary>
    /// <param name="version">The version, e.g. <c>1.2.0</c> or <c>v1.2.0</c>.</param>
    /// <returns>The version.</returns>
    /// <exception cref="ArgumentException"><paramref name="version"/> is not a semantic version.</exception>
    /// <exception cref="KeyNotFoundException">The version is not registered.</exception>
    public RegisteredModel Get(string version)
    {
        var normalized = ModelVersionName.Normalize(version);
        if (!TryGetModel(normalized, out var model, out var problem) && (model = TryFetch(normalized)) is null)
        {
            throw new KeyNotFoundException($"Model version {normalized} is not registered ({problem}); registered: {string.Join(", ", List().Select(m => m.Version))}.");
        }

        return model!;
    }

    /// <summary>
    /// Points <c>current</c> at <paramref name="version"/> (atomic rename) after verifying it. Not public: the served
    /// version changes through the rollout controller (a <c>recreate</c> rollout, a rollback), which keeps its state,
    /// traffic plan and audit trail in step; <see cref="ModelRegistrationOptions.MakeCurrentIfNone"/> sets the first one.
    /// </summary>
    /// <param name="version">The version to make current.</param>
    /// <param name="rolloutRevision">
    /// For a pointer shared by a fleet: the revision of the shared rollout state the change belongs to. The pointer is
    /// moved only while the state is still at it, so a replica that stalled (a paused process, a lapsed lease) cannot move
    /// it after another replica took the rollout further (<see cref="RolloutStateConflictException"/>).
    /// </param>
    /// <exception cref="ModelIntegrityException">The version fails verification (the refusal is audited).</exception>
    internal void SetCurrent(string version, long? rolloutRevision = null)
    {
        var verification = Verify(version, "make current");
        if (!verification.IsValid)
        {
            throw new ModelIntegrityException(verification);
        }

        using var writer = AcquireWriter();
        WriteCurrentPointer(verification.Version, rolloutRevision);
    }

    /// <summary>Switches the <c>current</c> pointer durably (temp file, fsync, rename, directory fsync), without verifying the version.</summary>
    internal void WriteCurrentPointer(string normalizedVersion, long? rolloutRevision = null)
    {
        if (_sharedCurrent is { } shared)
        {
            shared.Write(normalizedVersion, rolloutRevision);
            return;
        }

        DurableFile.WriteAtomic(Path.Combine(Root, CurrentFileName), System.Text.Encoding.UTF8.GetBytes(ModelVersionName.FolderName(normalizedVersion) + "\n"));
    }

    /// <summary>Resolves a version's folder, refusing any path that would leave the registry.</summary>
    internal string VersionDirectory(string normalizedVersion)
    {
        var full = Path.GetFullPath(Path.Combine(Root, ModelVersionName.FolderName(normalizedVersion)));
        if (!full.StartsWith(_rootWithSeparator, StringComparison.Ordinal) || full.IndexOf(Path.DirectorySeparatorChar, _rootWithSeparator.Length) >= 0)
        {
            throw new ArgumentException($"Version '{ModelVersionName.Printable(normalizedVersion)}' does not name a folder directly inside the registry.", nameof(normalizedVersion));
        }

        return full;
    }

    internal static int CompareVersions(string a, string b) => SemanticVersion.Parse(a).CompareTo(SemanticVersion.Parse(b));

    internal static string HashFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private RegisteredModel RegisterLocked(string modelPath, ModelCard card, ModelRegistrationOptions options)
    {
        var version = CardVersion(card).ToString();
        var target = VersionDirectory(version);
        if (Directory.Exists(target))
        {
            var existing = TryGetModel(version, out var model, out _) ? $" (sha256 {model!.Sha256[..12]}…)" : string.Empty;
            throw new ModelVersionConflictException(version, $"Model version {version} is already registered{existing}; versions are immutable, so register the new model under a new version.");
        }

        if (_sharedModels?.ReadModelSha256(version) is { } held)
        {
            throw new ModelVersionConflictException(version, $"Model version {version} is already registered in the fleet (sha256 {held[..Math.Min(12, held.Length)]}…, {_sharedModels.Display}); versions are immutable, so register the new model under a new version.");
        }

        // Everything the audit record needs is computed from the source alone: nothing is written before the log has it.
        var trainingData = RegistrationCard.TrainingData(card);
        var sha256 = HashFile(modelPath);
        var now = _time.GetUtcNow();
        var deploymentId = options.DeploymentId ?? RegistrationCard.DefaultDeploymentId(now, sha256);
        var record = RegistrationCard.CreateRecord(card, trainingData, sha256, deploymentId, now, options);
        var config = RegistrationCard.ConfigJson(card);
        var recordJson = RegistrationCard.RecordJson(record);
        var registered = new RegisteredModel(version, target, card.ModelName, sha256, card.Parameters, now, deploymentId);
        var makeCurrent = options.MakeCurrentIfNone && CurrentVersion is null;
        var anchor = new ModelAnchor(version, sha256, Sha256Hex(config), Sha256Hex(recordJson), -1, RegistryId);
        AppendAnchor(RegistryAnchors.Registered, registered, anchor, options.Deployer ?? Environment.UserName, now, record, makeCurrent, source: null);

        var staging = Path.Combine(Root, $".staging-{version}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
        var published = false;
        try
        {
            Directory.CreateDirectory(staging);
            var copied = CopyHashing(modelPath, Path.Combine(staging, ModelFileName));
            if (copied != sha256)
            {
                throw new IOException($"The model file changed while it was registered (SHA-256 {sha256} when audited, {copied} when copied); register it again.");
            }

            DurableFile.WriteAtomic(Path.Combine(staging, ConfigFileName), config);
            DurableFile.WriteAtomic(Path.Combine(staging, RecordFileName), recordJson);
            DurableFile.FsyncDirectory(staging);

            // In a fleet the version's files go to the database before the folder is published: once registered here, every
            // replica can fetch it (and verifies it against the audit log's anchor before it uses it).
            published = Publish(version, sha256, File.ReadAllBytes(Path.Combine(staging, ModelFileName)), config, recordJson);
            Directory.Move(staging, target);
            DurableFile.FsyncDirectory(Root);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ModelVersionConflictException)
        {
            TryDelete(staging);
            WithdrawAnchor(registered, ex, now);
            if (published)
            {
                TryWithdrawShared(version, sha256);
            }

            throw;
        }

        Anchors?.Set(anchor);
        _models[version] = registered;
        Remember(new ModelVerification(version, sha256, sha256, [], now));
        if (makeCurrent)
        {
            WriteCurrentPointer(version);
        }

        return registered;
    }

    /// <summary>A version already in the registry, seeded again from a trusted file: anchored in this log when its files are that file's.</summary>
    private RegisteredModel? AdoptLocked(string modelPath, ModelCard card, string version, ModelRegistrationOptions options)
    {
        var now = _time.GetUtcNow();
        var trusted = HashFile(modelPath);
        var dir = VersionDirectory(version);
        if (!TryGetModel(version, out var model, out var problem))
        {
            RefuseQuietly(new ModelVerification(version, trusted, null, [problem!], now), "seed");
            return null;
        }

        var problems = new List<string>();
        var modelFile = Path.Combine(dir, ModelFileName);
        var actual = CheckRegularFile(modelFile, problems) ? HashFile(modelFile) : null;
        var config = ReadRegularFile(Path.Combine(dir, ConfigFileName), problems);
        var recordJson = ReadRegularFile(Path.Combine(dir, RecordFileName), problems);
        if (Anchors?.FindFrom(version, RegistryId) is { } mine)
        {
            // This folder's own registration: nothing to adopt (an edited file is the verification's to report).
            return mine.Sha256 == trusted ? null : Refused(new ModelVerification(version, mine.Sha256, trusted, [$"The seed file for {version} has SHA-256 {trusted}, but the audit log registered {mine.Sha256}; versions are immutable, so the registered one stays."], now));
        }

        if (Anchors?.Find(version) is { } other && other.Sha256 != trusted)
        {
            return Refused(new ModelVerification(version, other.Sha256, trusted, [$"The seed file for {version} has SHA-256 {trusted}, but the audit log registered {other.Sha256}; versions are immutable, so the registered one stays."], now));
        }

        // Not registered, or registered only by another registry sharing the log (another replica): this folder, with
        // its own deployment record, is adopted below once its files are checked against the trusted seed file.

        if (actual is not null && actual != trusted)
        {
            problems.Add($"{ModelVersionName.FolderName(version)}/{ModelFileName} has SHA-256 {actual}; the trusted seed file has {trusted}.");
        }

        if (model!.Sha256 != trusted)
        {
            problems.Add($"{RecordFileName} records SHA-256 {model.Sha256}; the trusted seed file has {trusted}.");
        }

        if (config is not null && !config.AsSpan().SequenceEqual(RegistrationCard.ConfigJson(card)))
        {
            problems.Add($"{ConfigFileName} is not the trusted seed file's card.");
        }

        if (problems.Count > 0)
        {
            return Refused(new ModelVerification(version, trusted, actual, problems, now));
        }

        if (Anchors is null)
        {
            // No log to anchor in: the files are the trusted file's, so there is nothing to do.
            return null;
        }

        var anchor = new ModelAnchor(version, trusted, Sha256Hex(config!), Sha256Hex(recordJson!), -1, RegistryId);
        AppendAnchor(RegistryAnchors.Adopted, model, anchor, options.Deployer ?? Environment.UserName, now, record: null, makeCurrent: false, source: Path.GetFileName(modelPath));
        Anchors?.Set(anchor);
        Remember(new ModelVerification(version, trusted, trusted, [], now));
        if (options.MakeCurrentIfNone && CurrentVersion is null)
        {
            WriteCurrentPointer(version);
        }

        return model;

        RegisteredModel? Refused(ModelVerification verification)
        {
            RefuseQuietly(verification, "seed");
            return null;
        }
    }

    private bool TryGetModel(string version, out RegisteredModel? model, out string? problem)
    {
        if (_models.TryGetValue(version, out model))
        {
            problem = null;
            return true;
        }

        if (!TryReadRecord(version, out model, out _, out problem))
        {
            return false;
        }

        _models.TryAdd(version, model!);
        return true;
    }

    private static string CopyHashing(string source, string destination)
    {
        using var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var output = new FileStream(destination, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        int read;
        while ((read = input.Read(buffer)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            output.Write(buffer, 0, read);
        }

        output.Flush(flushToDisk: true);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static SemanticVersion CardVersion(ModelCard card) =>
        SemanticVersion.TryParse(card.ModelVersion, out var version) && version.Build.Length == 0
            ? version
            : throw new ModelCardException("har.model_version", $"Model card key 'har.model_version' is '{ModelVersionName.Printable(card.ModelVersion)}'; the registry names folders by semantic versions without +build metadata, such as '1.2.0'.");

    private static string Sha256Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static void TryDelete(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A staging folder is never read; the next registration uses a fresh name.
        }
    }
}
