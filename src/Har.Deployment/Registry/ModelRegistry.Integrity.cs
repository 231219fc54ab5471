using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Audit;
using Har.Inference;

namespace Har.Deployment;

/// <summary>Verification: each version's files against the audit log's anchor (or, without a log, its own record).</summary>
public sealed partial class ModelRegistry
{
    private readonly ConcurrentDictionary<string, ModelVerification> _verifications = new(StringComparer.Ordinal);
    private int _scheduledRunning;
    private ITimer? _schedule;

    /// <summary>
    /// Verifies a version now: its files are regular files inside the registry; the SHA-256 of
    /// <c>model.onnx</c> equals the recorded one; and with an audit log, the hashes of <c>model.onnx</c>,
    /// <c>config.json</c> and <c>deployment_record.json</c> equal those the log registered (without one,
    /// the card inside <c>model.onnx</c> must equal <c>config.json</c>). A failure is audited.
    /// </summary>
    /// <param name="version">The version.</param>
    /// <returns>The verification, with every problem found.</returns>
    public ModelVerification Verify(string version) => Verify(version, "verify");

    /// <summary>
    /// Gets the latest verification of a version without hashing anything: the one made at registration,
    /// load, promotion, on the schedule (<see cref="StartPeriodicVerification"/>) or by <see cref="Verify(string)"/>.
    /// A version this process has not verified yet is verified once, now.
    /// </summary>
    /// <param name="version">The version.</param>
    /// <returns>The latest verification.</returns>
    /// <exception cref="ArgumentException"><paramref name="version"/> is not a semantic version.</exception>
    /// <exception cref="KeyNotFoundException">The version is not registered.</exception>
    public ModelVerification GetVerification(string version)
    {
        var model = Get(version);
        return _verifications.TryGetValue(model.Version, out var cached) ? cached : Verify(model.Version, "first read");
    }

    /// <summary>
    /// Re-verifies every registered version every <paramref name="interval"/> (through the registry's
    /// <see cref="TimeProvider"/>), starting now; a version that stops verifying is audited once, when it
    /// changes, and reads of <see cref="GetVerification"/> show it.
    /// </summary>
    /// <param name="interval">The period; at least one second.</param>
    /// <returns>A handle that stops the schedule when disposed (the registry keeps the schedule alive until then; starting again replaces it).</returns>
    public IDisposable StartPeriodicVerification(TimeSpan interval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.FromSeconds(1));
        var timer = _time.CreateTimer(static state => ((ModelRegistry)state!).VerifyAllScheduled(), this, TimeSpan.Zero, interval);
        Interlocked.Exchange(ref _schedule, timer)?.Dispose();
        return timer;
    }

    /// <summary>
    /// Reads a version's model file into memory and verifies exactly those bytes (and the version's other
    /// files) against the anchor, so the bytes that are loaded are the bytes that were verified (no
    /// check-then-use race). A refusal is audited and thrown.
    /// </summary>
    internal VerifiedModelBytes ReadVerified(string version, string purpose)
    {
        var model = Get(version);
        var problems = new List<string>();
        var bytes = CheckRegularFile(model.ModelPath, problems) ? File.ReadAllBytes(model.ModelPath) : null;
        if (bytes is not null)
        {
            CheckSelfContained(bytes, problems);
        }

        var verification = Check(model.Version, bytes is null ? null : Sha256Hex(bytes), problems, deep: false);
        if (!verification.IsValid)
        {
            RefuseQuietly(verification, purpose);
            throw new ModelIntegrityException(verification);
        }

        return new VerifiedModelBytes(model, bytes!);
    }

    internal void VerifyAllScheduled()
    {
        if (Interlocked.Exchange(ref _scheduledRunning, 1) == 1)
        {
            return;
        }

        try
        {
            foreach (var model in List())
            {
                var before = _verifications.GetValueOrDefault(model.Version);
                var problems = new List<string>();
                var actual = CheckRegularFile(model.ModelPath, problems) ? HashFile(model.ModelPath) : null;
                var now = Check(model.Version, actual, problems, deep: false);
                if (!now.IsValid && (before is null || before.IsValid || !before.Problems.SequenceEqual(now.Problems)))
                {
                    RefuseQuietly(now, "scheduled verification");
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            // The registry folder itself is unreadable: the next run tries again; loads and promotions verify on their own.
        }
        finally
        {
            Volatile.Write(ref _scheduledRunning, 0);
        }
    }

    private ModelVerification Verify(string version, string purpose)
    {
        var normalized = ModelVersionName.Normalize(version);
        try
        {
            _ = TryFetch(normalized);
        }
        catch (ModelIntegrityException refused) when (refused.Verification is { } fetched)
        {
            return fetched; // the fleet's copy was refused (and audited) before anything was written here
        }

        var problems = new List<string>();
        var modelPath = Path.Combine(VersionDirectory(normalized), ModelFileName);
        string? actual = null;
        if (CheckRegularFile(modelPath, problems))
        {
            var bytes = File.ReadAllBytes(modelPath);
            actual = Sha256Hex(bytes);
            CheckSelfContained(bytes, problems);
        }

        var verification = Check(normalized, actual, problems, deep: true);
        if (!verification.IsValid)
        {
            RefuseQuietly(verification, purpose);
        }

        return verification;
    }

    /// <summary>The checks shared by every path; <paramref name="actual"/> is the hash of the model bytes being judged.</summary>
    private ModelVerification Check(string version, string? actual, List<string> problems, bool deep)
    {
        var folder = ModelVersionName.FolderName(version);
        var dir = VersionDirectory(version);
        string? expected = null;
        if (TryReadRecord(version, out var recorded, out var recordBytes, out var recordProblem))
        {
            expected = recorded!.Sha256;
            _models.TryAdd(version, recorded);
        }
        else
        {
            problems.Add(recordProblem!);
        }

        var config = ReadRegularFile(Path.Combine(dir, ConfigFileName), problems);
        var anchor = Anchors?.Find(version, recordBytes is null ? null : Sha256Hex(recordBytes));
        if (Anchors is not null && anchor is null)
        {
            problems.Add($"{folder} has no registration in the audit log ({Anchors.LogName}), so nothing vouches for its files; register it through this log, or seed it from a trusted copy.");
        }

        if (anchor is not null)
        {
            expected = anchor.Sha256;
            if (actual is not null && !SameHash(actual, anchor.Sha256))
            {
                problems.Add($"{ModelFileName} has SHA-256 {actual}, but the audit log registered {anchor.Sha256}; the model was replaced after registration.");
            }

            if (recorded is not null && !SameHash(recorded.Sha256, anchor.Sha256))
            {
                problems.Add($"{RecordFileName} records SHA-256 {recorded.Sha256}, but the audit log registered {anchor.Sha256}; the record was rewritten after registration.");
            }
            else if (recordBytes is not null && anchor.RecordSha256 is { } recordHash && !SameHash(Sha256Hex(recordBytes), recordHash))
            {
                problems.Add($"{RecordFileName} differs from the record the audit log registered; it was edited after registration.");
            }

            if (config is not null && anchor.ConfigSha256 is { } configHash && !SameHash(Sha256Hex(config), configHash))
            {
                problems.Add($"{ConfigFileName} differs from the card the audit log registered; it was edited after registration.");
            }
        }
        else if (actual is not null && recorded is not null && !SameHash(actual, recorded.Sha256))
        {
            problems.Add($"{ModelFileName} has SHA-256 {actual}, but its deployment record says {recorded.Sha256}; the file was modified after registration.");
        }

        // Without an anchor for config.json, the card inside the model is the reference (this loads the model).
        if (deep && actual is not null && problems.Count == 0 && anchor?.ConfigSha256 is null)
        {
            CheckCardAgainstConfig(version, Path.Combine(dir, ModelFileName), config, problems);
        }

        var verification = new ModelVerification(version, expected, actual, problems, _time.GetUtcNow());
        Remember(verification);
        return verification;
    }

    /// <summary>
    /// A registered model must hold all its tensor data: data in another file is outside the hash the audit log
    /// anchors (registration refuses such models; this finds one registered before it did, or by other tools).
    /// </summary>
    private static void CheckSelfContained(byte[] model, List<string> problems)
    {
        try
        {
            if (OnnxExternalData.Find(model) is { } found)
            {
                problems.Add($"In {ModelFileName} the {found}, which the registered hash does not cover, so what the model computes could change without its hash changing; register the model again saved with every tensor inside the file.");
            }
        }
        catch (InvalidDataException ex)
        {
            problems.Add($"{ModelFileName}: {ex.Message}");
        }
    }

    private static void CheckCardAgainstConfig(string version, string modelPath, byte[]? config, List<string> problems)
    {
        try
        {
            var card = ModelCard.Load(modelPath);
            if (!ModelVersionName.TryNormalize(card.ModelVersion, out var carried) || carried != version)
            {
                problems.Add($"{ModelFileName} carries version {ModelVersionName.Printable(card.ModelVersion)} in its card; expected {version} (the folder's version).");
            }

            if (config is not null && !JsonNode.DeepEquals(JsonNode.Parse(config), JsonNode.Parse(RegistrationCard.ConfigJson(card))))
            {
                problems.Add($"{ConfigFileName} differs from the card inside {ModelFileName}; expected {ConfigFileName} to be the model's card.");
            }
        }
        catch (Exception ex) when (ex is ModelCardException or JsonException)
        {
            problems.Add($"The model card is invalid: {ex.Message.Replace(modelPath, ModelFileName, StringComparison.Ordinal)}");
        }
    }

    /// <summary>Reads a registered version's deployment record (<c>deployment_record.json</c>), as registered.</summary>
    /// <exception cref="KeyNotFoundException">The version is not registered.</exception>
    /// <exception cref="AuditRecordException">The file does not match the deployment-record schema.</exception>
    internal DeploymentRecord ReadRecord(string version)
    {
        var model = Get(version);
        return (DeploymentRecord)AuditRecord.Parse(AuditRecordKind.Deployment, File.ReadAllBytes(Path.Combine(VersionDirectory(model.Version), RecordFileName)));
    }

    private void Remember(ModelVerification verification) => _verifications[verification.Version] = verification;

    private static bool SameHash(string a, string b) =>
        a.Length == 64 && b.Length == 64 && CryptographicOperations.FixedTimeEquals(Convert.FromHexString(a), Convert.FromHexString(b));

    private bool TryReadRecord(string version, out RegisteredModel? model, out byte[]? bytes, out string? problem)
    {
        model = null;
        bytes = null;
        var folder = ModelVersionName.FolderName(version);
        var dir = VersionDirectory(version);
        if (!Directory.Exists(dir))
        {
            problem = $"no folder {folder}";
            return false;
        }

        if (new DirectoryInfo(dir).LinkTarget is not null)
        {
            problem = $"{folder} is a link; expected a real folder inside the registry";
            return false;
        }

        var problems = new List<string>();
        bytes = ReadRegularFile(Path.Combine(dir, RecordFileName), problems);
        if (bytes is null)
        {
            problem = problems[0];
            return false;
        }

        try
        {
            var record = (DeploymentRecord)AuditRecord.Parse(AuditRecordKind.Deployment, bytes);
            if (!ModelVersionName.TryNormalize(record.Model.Version, out var named) || named != version)
            {
                problem = $"{RecordFileName} names version {ModelVersionName.Printable(record.Model.Version)}; expected {version}";
                return false;
            }

            model = new RegisteredModel(version, dir, record.Model.Name, record.Model.Sha256, record.Model.Parameters, record.Timestamp, record.DeploymentId);
            problem = null;
            return true;
        }
        catch (AuditRecordException ex)
        {
            problem = $"{RecordFileName} does not match the deployment-record schema ({ex.Message})";
            return false;
        }
    }

    private byte[]? ReadRegularFile(string path, List<string> problems) =>
        CheckRegularFile(path, problems) ? File.ReadAllBytes(path) : null;

    private bool CheckRegularFile(string path, List<string> problems)
    {
        var full = Path.GetFullPath(path);
        var name = Path.GetFileName(full);
        if (!full.StartsWith(_rootWithSeparator, StringComparison.Ordinal))
        {
            problems.Add($"{name} is outside the registry.");
            return false;
        }

        var folder = Path.GetFileName(Path.GetDirectoryName(full));
        var info = new FileInfo(full);
        if (!info.Exists)
        {
            problems.Add($"{name} is missing from {folder}.");
            return false;
        }

        if (info.LinkTarget is not null)
        {
            problems.Add($"{folder}/{name} is a link; expected a regular file inside the registry.");
            return false;
        }

        return true;
    }
}

/// <summary>A model's bytes, read once and verified against the registry's anchor.</summary>
internal sealed record VerifiedModelBytes(RegisteredModel Model, byte[] Bytes);
