using System.Collections.Concurrent;
using Har.Audit;

namespace Har.Deployment;

/// <summary>
/// The registered models' files in a fleet's database (attached by a controller with a connection string): a version
/// registered through any replica is stored there (model bytes once per SHA-256, with its card and deployment record) and
/// every other replica fetches it when it first needs it — listed, started as a candidate, loaded — checks the fetched
/// bytes against the version's registration in the shared audit log, and keeps the checked copy in its own folder (a
/// cache, verified again at every load as any version is). Nothing in the database is trusted: a row whose model, card
/// or record is not the one the log registered is refused, the refusal audited, and nothing is written to the folder.
/// </summary>
public sealed partial class ModelRegistry
{
    private readonly Lock _fetchGate = new();
    private readonly ConcurrentDictionary<string, string> _refusedRows = new(StringComparer.Ordinal);
    private FleetStore? _sharedModels;

    /// <summary>Gets the fleet database the versions' files are shared through, when a controller attached one.</summary>
    internal FleetStore? SharedModels => _sharedModels;

    /// <summary>
    /// Shares this registry's versions through the fleet's database: from now on registrations store their files there and
    /// versions this folder lacks are fetched from there. The versions already in this folder that verify and the database
    /// lacks are stored now. Needs the audit log the fetched files are checked against; without one, nothing is shared.
    /// </summary>
    internal void UseSharedModels(FleetStore store)
    {
        if (Anchors is null || Interlocked.CompareExchange(ref _sharedModels, store, null) is not null)
        {
            return;
        }

        foreach (var model in ListLocal())
        {
            try
            {
                if (store.ReadModelSha256(model.Version) is not null)
                {
                    continue;
                }

                // Exactly the bytes that verified against the anchor are stored (a version that does not verify is refused and audited, not shared).
                var verified = ReadVerified(model.Version, "share with the fleet");
                var dir = VersionDirectory(model.Version);
                _ = Publish(model.Version, verified.Model.Sha256, verified.Bytes, File.ReadAllBytes(Path.Combine(dir, ConfigFileName)), File.ReadAllBytes(Path.Combine(dir, RecordFileName)));
            }
            catch (Exception ex) when (ex is ModelIntegrityException or ModelVersionConflictException or IOException)
            {
                // Not shared now: refused (audited), registered differently by another replica first, or the database did not
                // answer (this version is stored at the next start; the replicas that need it meanwhile cannot fetch it).
            }
        }
    }

    /// <summary>Stores a version's files in the fleet's database (nothing without one). Returns whether they were stored now or before.</summary>
    /// <exception cref="ModelVersionConflictException">The fleet registered a different model under this version first.</exception>
    /// <exception cref="ModelRegistryUnavailableException">The database did not answer.</exception>
    private bool Publish(string version, string sha256, byte[] model, byte[] config, byte[] record)
    {
        if (_sharedModels is not { } shared)
        {
            return false;
        }

        string held;
        try
        {
            held = shared.PublishModel(version, sha256, model, config, record, RegistryId);
        }
        catch (IOException ex)
        {
            throw new ModelRegistryUnavailableException($"Model version {version} was not registered: its files could not be stored in the fleet's database ({ex.Message}), and a version the other replicas cannot fetch is not registered. Retry when the database answers.", ex);
        }

        return SameHash(held, sha256)
            ? true
            : throw new ModelVersionConflictException(version, $"Model version {version} was registered in the fleet by another replica meanwhile (sha256 {held[..Math.Min(12, held.Length)]}…); versions are immutable, so register the new model under a new version.");
    }

    private void TryWithdrawShared(string version, string sha256)
    {
        try
        {
            _sharedModels?.WithdrawModel(version, sha256, RegistryId);
        }
        catch (IOException)
        {
            // Its registration is withdrawn from the audit log, so no replica would accept the row anyway.
        }
    }

    /// <summary>A bundled (trusted) file whose version the fleet holds with other bytes: refused, the fleet's registration stays.</summary>
    private ModelVerification? SeedConflictsWithFleet(string modelPath, string version)
    {
        if (_sharedModels?.ReadModelSha256(version) is not { } held)
        {
            return null;
        }

        var trusted = HashFile(modelPath);
        return SameHash(held, trusted)
            ? null
            : new ModelVerification(version, held, trusted, [$"The seed file for {version} has SHA-256 {trusted}, but the fleet registered {held} under this version; versions are immutable, so the registered one stays."], _time.GetUtcNow());
    }

    /// <summary>Fetches every version the fleet's database holds and this folder lacks (those refused are left out; an unreachable database lists this folder's only).</summary>
    private void FetchMissing(FleetStore shared)
    {
        List<string> versions;
        try
        {
            versions = shared.ListModelVersions();
        }
        catch (IOException)
        {
            return;
        }

        foreach (var version in versions)
        {
            if (!ModelVersionName.TryNormalize(version, out var normalized) || normalized != version || Directory.Exists(VersionDirectory(version)))
            {
                continue;
            }

            try
            {
                _ = Fetch(shared, version);
            }
            catch (Exception ex) when (ex is ModelIntegrityException or IOException or UnauthorizedAccessException)
            {
                // Refused (and audited) or not fetched now: listed once it can be fetched and verified.
            }
        }
    }

    /// <summary>Fetches <paramref name="version"/> when this folder lacks it and the fleet's database holds it; <see langword="null"/> otherwise.</summary>
    /// <exception cref="ModelIntegrityException">The database's copy is not the one the audit log registered (audited; nothing written).</exception>
    private RegisteredModel? TryFetch(string version)
    {
        if (_sharedModels is not { } shared || Directory.Exists(VersionDirectory(version)))
        {
            return null;
        }

        return Fetch(shared, version);
    }

    private RegisteredModel? Fetch(FleetStore shared, string version)
    {
        lock (_fetchGate)
        {
            var target = VersionDirectory(version);
            if (Directory.Exists(target))
            {
                return TryGetModel(version, out var present, out _) ? present : null;
            }

            if (shared.ReadModel(version) is not { } row)
            {
                return null;
            }

            var now = _time.GetUtcNow();
            var actual = Sha256Hex(row.Model);
            var problems = CheckShared(Anchors!, row, actual, out var anchor);
            if (problems.Count > 0)
            {
                var refusal = new ModelVerification(version, anchor?.Sha256, actual, problems, now);
                Remember(refusal);

                // Audited once per distinct row content (listing the registry again does not repeat it).
                var fingerprint = $"{actual}/{Sha256Hex(row.Config)}/{Sha256Hex(row.Record)}/{row.ModelSha256}";
                if (!_refusedRows.TryGetValue(version, out var last) || last != fingerprint)
                {
                    _refusedRows[version] = fingerprint;
                    RefuseQuietly(refusal, "fetch from the fleet database");
                }

                throw new ModelIntegrityException(refusal);
            }

            using (AcquireWriter())
            {
                if (!Directory.Exists(target))
                {
                    var staging = Path.Combine(Root, $".fetch-{version}-{Guid.NewGuid():N}");
                    try
                    {
                        Directory.CreateDirectory(staging);
                        DurableFile.WriteAtomic(Path.Combine(staging, ModelFileName), row.Model);
                        DurableFile.WriteAtomic(Path.Combine(staging, ConfigFileName), row.Config);
                        DurableFile.WriteAtomic(Path.Combine(staging, RecordFileName), row.Record);
                        DurableFile.FsyncDirectory(staging);
                        Directory.Move(staging, target);
                        DurableFile.FsyncDirectory(Root);
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        TryDelete(staging);
                        throw;
                    }
                }
            }

            _refusedRows.TryRemove(version, out _);
            Remember(new ModelVerification(version, anchor!.Sha256, actual, [], now));
            return TryGetModel(version, out var fetched, out _) ? fetched : null;
        }
    }

    /// <summary>
    /// Verifies every version the fleet's database holds against the audit log (the command line's <c>har models verify
    /// --connection</c>): nothing is fetched to a folder and nothing is appended to the log.
    /// </summary>
    internal static IEnumerable<ModelVerification> VerifyShared(FleetStore store, AuditLog log, TimeProvider time)
    {
        var anchors = new RegistryAnchors(log);
        foreach (var (version, _, _, _, _) in store.ListModels().OrderBy(m => m.Version, StringComparer.Ordinal))
        {
            if (store.ReadModel(version) is not { } row)
            {
                continue;
            }

            var actual = Sha256Hex(row.Model);
            var problems = CheckShared(anchors, row, actual, out var anchor);
            yield return new ModelVerification(version, anchor?.Sha256, actual, problems, time.GetUtcNow());
        }
    }

    /// <summary>A row of the fleet's database against the audit log: a registration of this version whose record is the row's record, whose model hash is the bytes' and whose card hash is the row's card.</summary>
    private static List<string> CheckShared(RegistryAnchors anchors, SharedModelFiles row, string actual, out ModelAnchor? anchor)
    {
        var version = row.Version;
        var problems = new List<string>();
        var recordHash = Sha256Hex(row.Record);
        anchor = Matching(anchors.Find(version, recordHash), recordHash);
        if (anchor is null)
        {
            // Registered through another replica since this one read the log.
            anchors.Reload();
            anchor = Matching(anchors.Find(version, recordHash), recordHash);
        }

        if (anchor is null)
        {
            problems.Add($"The fleet database's deployment record for {version} is not one the audit log ({anchors.LogName}) registered; the row was written or edited outside a registration.");
            return problems;
        }

        if (!SameHash(actual, anchor.Sha256))
        {
            problems.Add($"The fleet database's {ModelFileName} for {version} has SHA-256 {actual}, but the audit log registered {anchor.Sha256}; the stored model was altered after registration.");
        }

        if (!string.Equals(row.ModelSha256, anchor.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            problems.Add($"The fleet database files {version} under SHA-256 {row.ModelSha256}, but the audit log registered {anchor.Sha256}.");
        }

        if (anchor.ConfigSha256 is { } configHash && !SameHash(Sha256Hex(row.Config), configHash))
        {
            problems.Add($"The fleet database's {ConfigFileName} for {version} differs from the card the audit log registered; it was edited after registration.");
        }

        try
        {
            var record = (DeploymentRecord)AuditRecord.Parse(AuditRecordKind.Deployment, row.Record);
            if (!ModelVersionName.TryNormalize(record.Model.Version, out var named) || named != version || !SameHash(record.Model.Sha256, anchor.Sha256))
            {
                problems.Add($"The fleet database's {RecordFileName} for {version} names {ModelVersionName.Printable(record.Model.Version)} with SHA-256 {record.Model.Sha256}; the audit log registered {version} with {anchor.Sha256}.");
            }
        }
        catch (AuditRecordException ex)
        {
            problems.Add($"The fleet database's {RecordFileName} for {version} does not match the deployment-record schema ({ex.Message}).");
        }

        return problems;

        static ModelAnchor? Matching(ModelAnchor? found, string recordHash) =>
            found?.RecordSha256 is { } hash && string.Equals(hash, recordHash, StringComparison.OrdinalIgnoreCase) ? found : null;
    }
}
