using System.Security.Cryptography;
using System.Text.Json;
using Har.Audit;

namespace Har.Deployment;

/// <summary>Restore of an archive into a fleet's PostgreSQL database.</summary>
public static partial class DeploymentBackup
{
    /// <summary>
    /// Restores an archive into a PostgreSQL database that holds no Har state yet (the fleet's <c>ConnectionStrings:Har</c>):
    /// the archive is first unpacked into a temporary folder and verified exactly as <see cref="Restore"/> does (a refused
    /// archive writes nothing to the database); then the audit log is imported with the same entries, leaf hashes and
    /// Merkle tree and the archive's signed checkpoint (which therefore verifies against the database), the registry's
    /// versions (model bytes, card, deployment record) and <c>current</c> pointer, the rollout state and the accuracy gate's
    /// labelled windows are written to the fleet's tables, the database's log is verified, and a <c>backup.restored</c> record is appended to it. Replicas
    /// started on the database fetch the versions from it and serve the restored current version.
    /// </summary>
    /// <param name="archivePath">The <c>har-backup-*.tar.gz</c> file.</param>
    /// <param name="connectionString">The Npgsql connection string of the database to restore into.</param>
    /// <param name="verifierKey">The trusted verifier key of the log's checkpoints; <see langword="null"/> uses the key in the archive (proves the archive is intact, not who made it).</param>
    /// <param name="actor">Who restores (the actor of the <c>backup.restored</c> record).</param>
    /// <returns>What was restored and verified.</returns>
    /// <exception cref="DeploymentBackupException">A check of the archive failed, or the database already holds an audit log, a registry or a rollout; nothing was written to the database.</exception>
    /// <exception cref="AuditLogUnavailableException">PostgreSQL could not be reached while the log was imported; nothing of the log was committed.</exception>
    /// <remarks>
    /// The log is imported in one transaction and the registry and rollout state in a second one; should the second fail
    /// (the database went away in between), the database holds the restored log only and the exception says so: drop and
    /// recreate the database, then restore again. A signing key in the archive (<c>keys/audit.key</c>) is not written to
    /// the database: put it where the replicas read their checkpoint key.
    /// </remarks>
    public static DeploymentBackupResult RestoreToDatabase(string archivePath, string connectionString, AuditVerifierKey? verifierKey = null, string actor = "har-deployment")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(archivePath);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        var temp = Directory.CreateTempSubdirectory("har-backup-restore-").FullName;
        try
        {
            // 1. Every check of a folder restore, before the database is touched.
            var verified = ExtractAndVerify(archivePath, temp, verifierKey, actor: null, out var labelled);
            var key = AuditVerifierKey.Parse(verified.VerifierKey);
            var registryDir = Path.Combine(temp, RegistryFolder);
            var registryId = File.ReadAllText(Path.Combine(registryDir, "registry-id")).Trim();
            var models = new List<SharedModelFiles>(verified.Versions.Count);
            foreach (var version in verified.Versions)
            {
                var dir = Path.Combine(registryDir, ModelVersionName.FolderName(version));
                var model = File.ReadAllBytes(Path.Combine(dir, ModelRegistry.ModelFileName));
                models.Add(new SharedModelFiles(version, Convert.ToHexStringLower(SHA256.HashData(model)), model, File.ReadAllBytes(Path.Combine(dir, ModelRegistry.ConfigFileName)), File.ReadAllBytes(Path.Combine(dir, ModelRegistry.RecordFileName)), registryId));
            }

            var stateDir = Path.Combine(registryDir, StateFolder);
            var state = new RolloutStateStore(stateDir).Load();
            var history = new List<RolloutState>();
            if (Directory.Exists(Path.Combine(stateDir, "history")))
            {
                foreach (var file in Directory.EnumerateFiles(Path.Combine(stateDir, "history"), "*.json").Order(StringComparer.Ordinal))
                {
                    history.Add(JsonSerializer.Deserialize<RolloutState>(File.ReadAllBytes(file), RolloutStateStore.Json)!);
                }
            }

            // 2. The database must hold no registry or rollout (checked again inside the write) and no log (checked by the import).
            using var fleet = FleetStore.Open(connectionString);
            if (fleet.DescribeContents() is { } found)
            {
                throw new DeploymentBackupException($"Restore refused: {fleet.Display} already holds {found}; a backup is restored into a database without Har state only, so nothing there is overwritten or mixed with the archive. Create a new, empty database, restore into it, and point the replicas at it. Nothing of the archive was written.");
            }

            try
            {
                AuditLog.ImportToDatabase(Path.Combine(temp, AuditFolder), connectionString, key);
            }
            catch (InvalidOperationException ex)
            {
                throw new DeploymentBackupException($"Restore refused: {ex.Message} Nothing of the archive was written.", ex);
            }

            // 3. The registry and the rollout state, in one transaction.
            try
            {
                fleet.Restore(models, verified.CurrentVersion, state, history, labelled);
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException)
            {
                throw new DeploymentBackupException($"Restore incomplete: the audit log of {verified.BackupId} was imported into {fleet.Display}, but its registry and rollout state were not written ({ex.Message}). Drop and recreate the database, then restore again.", ex);
            }

            // 4. The database's log verifies as a whole (entries, tree, the archive's checkpoint), then the restore is recorded in it.
            var check = AuditLog.VerifyDatabase(connectionString, key);
            if (!check.IsValid)
            {
                throw new DeploymentBackupException($"Restore incomplete: the audit log imported into {fleet.Display} does not verify: {check}");
            }

            using (var log = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false }))
            {
                log.AppendAsync(RestoredRecord(verified.BackupId, verified.Sha256, verified.AuditEntries, verified.Versions, verified.KeyPinned, actor, TimeProvider.System.GetUtcNow(), fleet.Display)).GetAwaiter().GetResult();
            }

            return verified;
        }
        finally
        {
            TryDeleteDirectory(temp);
        }
    }
}
