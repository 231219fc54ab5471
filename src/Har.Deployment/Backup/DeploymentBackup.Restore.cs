using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Audit;

namespace Har.Deployment;

/// <summary>Verification and restore of archives.</summary>
public static partial class DeploymentBackup
{
    /// <summary>
    /// Verifies an archive without restoring it (it is unpacked into a temporary folder that is removed afterwards):
    /// the same checks as <see cref="Restore"/>.
    /// </summary>
    /// <param name="archivePath">The <c>har-backup-*.tar.gz</c> file.</param>
    /// <param name="verifierKey">The trusted verifier key of the log's checkpoints; <see langword="null"/> uses the key in the archive (proves the archive is intact, not who made it).</param>
    /// <returns>What was verified.</returns>
    /// <exception cref="DeploymentBackupException">A check failed; the message names what was wrong.</exception>
    public static DeploymentBackupResult Verify(string archivePath, AuditVerifierKey? verifierKey = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(archivePath);
        var temp = Directory.CreateTempSubdirectory("har-backup-verify-").FullName;
        try
        {
            return ExtractAndVerify(archivePath, temp, verifierKey, actor: null, out _);
        }
        finally
        {
            TryDeleteDirectory(temp);
        }
    }

    /// <summary>
    /// Restores an archive into an empty folder (<c>registry/</c>, <c>audit/</c>, and <c>keys/</c> when the archive
    /// holds the signing key: the layout of the service's data folder), verifies everything (each file against the
    /// manifest, the audit log against its signed checkpoint, the backup record against the manifest, each version
    /// against the audit log, the current pointer, the rollout state) and only then appends a <c>backup.restored</c>
    /// record to the restored log. When a check fails, everything written is removed.
    /// </summary>
    /// <param name="archivePath">The <c>har-backup-*.tar.gz</c> file.</param>
    /// <param name="targetDirectory">A folder that does not exist or is empty.</param>
    /// <param name="verifierKey">The trusted verifier key of the log's checkpoints; <see langword="null"/> uses the key in the archive (proves the archive is intact, not who made it).</param>
    /// <param name="actor">Who restores (the actor of the <c>backup.restored</c> record).</param>
    /// <returns>What was restored and verified.</returns>
    /// <exception cref="IOException"><paramref name="targetDirectory"/> is not empty; nothing was written.</exception>
    /// <exception cref="DeploymentBackupException">A check failed; nothing is left in the target folder.</exception>
    public static DeploymentBackupResult Restore(string archivePath, string targetDirectory, AuditVerifierKey? verifierKey = null, string actor = "har-deployment")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(archivePath);
        ArgumentException.ThrowIfNullOrWhiteSpace(targetDirectory);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        var target = Path.GetFullPath(targetDirectory);
        var existed = Directory.Exists(target);
        if (existed && Directory.EnumerateFileSystemEntries(target).Any())
        {
            throw new IOException($"'{target}' is not empty: a backup is restored into an empty folder only, so nothing there is overwritten or mixed with the archive. Restore into a new folder and point the service at it.");
        }

        if (File.Exists(target))
        {
            throw new IOException($"'{target}' is a file; restore into a new or empty folder.");
        }

        // Unpacked and verified in a sibling folder, published by one rename once everything verified and the
        // backup.restored record is written: a restore that is killed (or fails) leaves the target as it was, never a
        // folder a service would take for a restored one (found from outside: 12 of 12 killed restores left one,
        // 8 of them complete-looking but unverified, one holding only the audit log).
        var parent = Path.GetDirectoryName(target) ?? throw new IOException($"'{target}' has no parent folder; restore into a folder inside one.");
        Directory.CreateDirectory(parent);
        var prefix = "." + Path.GetFileName(target) + ".restoring-";
        foreach (var stale in Directory.EnumerateDirectories(parent, prefix + "*"))
        {
            TryDeleteDirectory(stale); // a restore into the same target that was killed
        }

        var working = Path.Combine(parent, prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        CreatePrivateDirectory(working);
        try
        {
            var result = ExtractAndVerify(archivePath, working, verifierKey, actor, out _);
            if (existed)
            {
                Directory.Delete(target); // empty, checked above
            }

            Directory.Move(working, target);
            DurableFile.FsyncDirectory(parent);
            return result;
        }
        finally
        {
            TryDeleteDirectory(working);
        }
    }

    private static DeploymentBackupResult ExtractAndVerify(string archivePath, string target, AuditVerifierKey? pinned, string? actor, out List<ShippedLabel> labelled)
    {
        var extracted = Extract(archivePath, target);
        var manifest = ReadManifest(extracted, target);
        var backupId = Text(manifest, "backup_id");
        var created = DateTimeOffset.Parse(Text(manifest, "created_at"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

        // 1. Every file against the manifest, and nothing else in the archive.
        var listed = new List<BackupFile>();
        foreach (var node in manifest["files"] as JsonArray ?? throw Refused("manifest.json has no 'files' list."))
        {
            var path = node?["path"]?.GetValue<string>() ?? throw Refused("manifest.json lists a file without a path.");
            var sha = node["sha256"]?.GetValue<string>() ?? throw Refused($"manifest.json lists {path} without a sha256.");
            var bytes = node["bytes"]?.GetValue<long>() ?? throw Refused($"manifest.json lists {path} without its size.");
            if (!extracted.Remove(path, out var actual))
            {
                throw Refused($"{path} is listed in the manifest but missing from the archive.");
            }

            if (!string.Equals(actual.Sha256, sha, StringComparison.OrdinalIgnoreCase) || actual.Bytes != bytes)
            {
                throw Refused($"{path} has SHA-256 {actual.Sha256} ({actual.Bytes} bytes), but the manifest lists {sha} ({bytes} bytes): the file was altered after the backup.");
            }

            listed.Add(new BackupFile(path, sha.ToLowerInvariant(), bytes));
        }

        // Nothing else is in the archive: Extract refused any entry its manifest does not list, before writing it.

        // 2. The audit log against its signed checkpoint (the key given, else the archive's own).
        var audit = manifest["audit"] as JsonObject ?? throw Refused("manifest.json has no 'audit' section.");
        var entries = audit["entries"]?.GetValue<long>() ?? throw Refused("manifest.json's audit section has no entry count.");
        var recordIndex = audit["backup_record_index"]?.GetValue<long>() ?? throw Refused("manifest.json's audit section has no backup record index.");
        var archivedKey = Text(audit, "verifier_key");
        AuditVerifierKey key;
        try
        {
            key = pinned ?? AuditVerifierKey.Parse(archivedKey);
        }
        catch (FormatException ex)
        {
            throw Refused($"manifest.json's verifier key is not a verifier key ({ex.Message}).");
        }

        var auditDir = Path.Combine(target, AuditFolder);
        if (!File.Exists(Path.Combine(auditDir, "entries.log")))
        {
            throw Refused("The archive holds no audit log (audit/entries.log).");
        }

        var verification = AuditLog.Verify(auditDir, key);
        if (!verification.IsValid)
        {
            throw Refused($"The archive's audit log does not verify{(pinned is null ? " against the key in the archive" : " against the given verifier key")}: {verification}");
        }

        if (verification.Checkpoint is not { } checkpoint || checkpoint.TreeSize != entries || verification.EntriesVerified != entries)
        {
            throw Refused($"The archive's audit log holds {verification.EntriesVerified} entries with a checkpoint at size {verification.Checkpoint?.TreeSize.ToString(CultureInfo.InvariantCulture) ?? "none"}; the manifest says {entries}.");
        }

        if (checkpoint.NoteText != Text(audit, "checkpoint"))
        {
            throw Refused("audit/checkpoint differs from the checkpoint in manifest.json.");
        }

        // 3. The backup record (the log's last entry, under the signed checkpoint) against the manifest's listing.
        var recordedListing = Text(manifest, "recorded_files_sha256");
        var covered = listed.Where(f => !f.Path.StartsWith(AuditFolder + "/", StringComparison.Ordinal)).ToList();
        using (var log = AuditLog.Open(new AuditLogOptions { Directory = auditDir, EnableMetrics = false }))
        {
            if (recordIndex != entries - 1 || log.Count != entries)
            {
                throw Refused($"The backup record is entry {recordIndex} of a log of {log.Count} entries; expected the last of {entries}.");
            }

            if (log.Get(recordIndex).Record is not AuditEvent { EventType: CreatedEvent } record || record.EntityId != backupId)
            {
                throw Refused($"Audit entry {recordIndex} is not the {CreatedEvent} record of {backupId}: the manifest does not belong to this log.");
            }

            var recorded = record.ActionDetails.TryGetProperty("files_sha256", out var r) ? r.GetString() : null;
            var listing = ListingSha256(covered);
            if (recorded != listing || recordedListing != listing)
            {
                throw Refused($"The manifest's files (listing SHA-256 {listing}) differ from those the audit log recorded in {CreatedEvent} at entry {recordIndex} ({recorded}): the manifest or a file was changed after the backup.");
            }

            // 4. The registry against the audit log: each version's three files against their registration.
            var registryDir = Path.Combine(target, RegistryFolder);
            if (!Directory.Exists(registryDir))
            {
                throw Refused("The archive holds no registry folder.");
            }

            var registry = new ModelRegistry(registryDir, log);
            var versions = new List<string>();
            foreach (var model in registry.List())
            {
                var v = registry.Verify(model.Version);
                if (!v.IsValid)
                {
                    throw Refused($"Version {model.Version} does not verify against the audit log: {string.Join(" ", v.Problems)}");
                }

                versions.Add(model.Version);
            }

            var expectedVersions = (manifest["versions"] as JsonArray)?.Select(n => n!.GetValue<string>()).ToList() ?? [];
            if (!expectedVersions.SequenceEqual(versions))
            {
                throw Refused($"The registry holds versions [{string.Join(", ", versions)}]; the manifest lists [{string.Join(", ", expectedVersions)}].");
            }

            string? current;
            try
            {
                current = registry.CurrentVersion;
            }
            catch (InvalidDataException ex)
            {
                throw Refused(ex.Message);
            }

            if (current != manifest["current_version"]?.GetValue<string>() || (current is not null && !versions.Contains(current)))
            {
                throw Refused($"The registry's current pointer names {current ?? "nothing"}; the manifest says {manifest["current_version"]?.GetValue<string>() ?? "nothing"} among [{string.Join(", ", versions)}].");
            }

            // 5. The rollout state and finished rollouts parse.
            var stateDir = Path.Combine(registryDir, StateFolder);
            try
            {
                _ = new RolloutStateStore(stateDir).Load();
                if (Directory.Exists(Path.Combine(stateDir, "history")))
                {
                    foreach (var file in Directory.EnumerateFiles(Path.Combine(stateDir, "history"), "*.json"))
                    {
                        _ = JsonSerializer.Deserialize<RolloutState>(File.ReadAllBytes(file), RolloutStateStore.Json) ?? throw new InvalidDataException($"{Path.GetFileName(file)} holds null.");
                    }
                }
            }
            catch (Exception ex) when (ex is InvalidDataException or JsonException)
            {
                throw Refused($"The rollout state in the archive does not parse: {ex.Message}");
            }

            labelled = ReadLabelledWindows(target, manifest);

            // 6. A signing key in the archive must be the key that signed the checkpoint.
            var keyFile = Path.Combine(target, KeysFolder, "audit.key");
            var hasKey = File.Exists(keyFile);
            if (hasKey)
            {
                using var signing = AuditSigningKey.Load(keyFile);
                if (signing.VerifierKey != archivedKey)
                {
                    throw Refused("keys/audit.key is not the key that signed the archive's checkpoint.");
                }
            }

            if (actor is not null)
            {
                log.AppendAsync(RestoredRecord(backupId, HashFile(archivePath), entries, versions, pinned is not null, actor, registry.Time.GetUtcNow(), database: null)).GetAwaiter().GetResult();
            }

            return new DeploymentBackupResult(backupId, created, archivePath, entries, listed.Count, current, versions, key.ToString(), pinned is not null, hasKey, labelled.Count, [], manifest["format"]!.GetValue<string>());
        }
    }

    /// <summary>
    /// The labelled windows in an extracted archive (none in an archive from before they were kept), every line whole and
    /// as many as the manifest says.
    /// </summary>
    private static List<ShippedLabel> ReadLabelledWindows(string target, JsonObject manifest)
    {
        var path = Path.Combine(target, LabelledWindowsPath.Replace('/', Path.DirectorySeparatorChar));
        if (manifest["format"]?.GetValue<string>() == Format && manifest["labelled_windows"] is null)
        {
            throw Refused($"manifest.json of a {Format} archive has no 'labelled_windows' count.");
        }

        var expected = manifest["labelled_windows"]?.GetValue<int>() ?? 0;
        if (!File.Exists(path))
        {
            return expected == 0 ? [] : throw Refused($"manifest.json counts {expected} labelled windows, but the archive holds no {LabelledWindowsPath}.");
        }

        var windows = FeedbackJournal.Read(File.ReadLines(path), int.MaxValue, out var lines, out var skipped);
        if (skipped > 0)
        {
            throw Refused($"{LabelledWindowsPath} holds {skipped} of {lines} lines that are not a labelled window (a JSON object with the true activity and each version's answer).");
        }

        if (windows.Count != expected)
        {
            throw Refused($"{LabelledWindowsPath} holds {windows.Count} labelled windows; manifest.json counts {expected}.");
        }

        return windows;
    }

    /// <summary>The <c>backup.restored</c> event a restored log receives once everything verified.</summary>
    private static AuditEvent RestoredRecord(string backupId, string archiveSha256, long entries, IReadOnlyList<string> versions, bool pinned, string actor, DateTimeOffset now, string? database)
    {
        var details = new JsonObject
        {
            ["backup_id"] = backupId,
            ["archive_sha256"] = archiveSha256,
            ["entries_verified"] = entries,
            ["versions_verified"] = new JsonArray([.. versions.Select(x => JsonValue.Create(x))]),
            ["verifier_key_pinned"] = pinned,
        };
        if (database is not null)
        {
            details["database"] = database;
        }

        return new AuditEvent
        {
            EventType = RestoredEvent,
            EntityType = "backup",
            EntityId = backupId,
            Severity = AuditSeverity.Notice,
            Actor = actor,
            Timestamp = now,
            ActionDetails = JsonSerializer.SerializeToElement(details),
        };
    }

    /// <summary>The longest file or folder name (in UTF-8 bytes) the file systems a restore writes to accept (NAME_MAX).</summary>
    private const int MaxNameBytes = 255;

    /// <summary>Unpacks regular files only, each inside <paramref name="target"/>, hashing as it writes; returns path → (SHA-256, bytes), without the manifest.</summary>

    private static Dictionary<string, BackupFile> Extract(string archivePath, string target)
    {
        var files = new Dictionary<string, BackupFile>(StringComparer.Ordinal);
        var root = Path.TrimEndingDirectorySeparator(target) + Path.DirectorySeparatorChar;
        Dictionary<string, long>? listed = null; // the manifest's sizes, once its entry (the first) is read
        try
        {
            using var stream = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            using var gzip = new GZipStream(stream, CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            while (tar.GetNextEntry() is { } entry)
            {
                var name = entry.Name;
                if (entry.EntryType is TarEntryType.Directory)
                {
                    continue;
                }

                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile))
                {
                    throw Refused($"The archive holds '{Printable(name)}', a {entry.EntryType} entry; a Har backup holds regular files only.");
                }

                if (name.Length == 0 || name.StartsWith('/') || name.Contains('\\', StringComparison.Ordinal) || name.Split('/').Any(s => s is "" or "." or ".."))
                {
                    throw Refused($"The archive holds the path '{Printable(name)}', which would leave the restore folder; a Har backup holds relative paths only.");
                }

                var full = Path.GetFullPath(Path.Combine(target, name.Replace('/', Path.DirectorySeparatorChar)));
                if (!full.StartsWith(root, StringComparison.Ordinal))
                {
                    throw Refused($"The archive holds the path '{Printable(name)}', which would leave the restore folder.");
                }

                if (files.ContainsKey(name) || File.Exists(full))
                {
                    throw Refused($"The archive holds '{Printable(name)}' twice.");
                }

                // What the file system would refuse, said as what is wrong with the archive (found from outside: such archives
                // ended the restore with the OS's message and exit code 2, "The file '…/registry' already exists").
                var segments = name.Split('/');
                if (segments.FirstOrDefault(s => System.Text.Encoding.UTF8.GetByteCount(s) > MaxNameBytes) is { } tooLong)
                {
                    throw Refused(string.Create(CultureInfo.InvariantCulture, $"The archive holds the path '{Printable(name)}', with a name of {System.Text.Encoding.UTF8.GetByteCount(tooLong)} bytes; file systems take at most {MaxNameBytes}, and a Har backup's names are short."));
                }

                for (var depth = 1; depth < segments.Length; depth++)
                {
                    var folder = string.Join('/', segments[..depth]);
                    if (files.ContainsKey(folder))
                    {
                        throw Refused($"The archive holds '{Printable(name)}' inside '{Printable(folder)}', which it also holds as a file.");
                    }
                }

                if (Directory.Exists(full))
                {
                    throw Refused($"The archive holds '{Printable(name)}' as a file and as the folder of other entries.");
                }

                // Nothing is written that the manifest (the archive's first entry) does not list at that size: an
                // archive cannot fill the disk before it is refused (a 1 MB archive of one 1 GiB entry of zeros).
                if (listed is null)
                {
                    if (name != ManifestName)
                    {
                        throw Refused($"The archive begins with '{Printable(name)}', not {ManifestName}: it is not a Har backup (its manifest is its first entry).");
                    }

                    if (entry.Length > MaxManifestBytes)
                    {
                        throw Refused(string.Create(CultureInfo.InvariantCulture, $"The archive's {ManifestName} is {entry.Length} bytes; expected at most {MaxManifestBytes}."));
                    }
                }
                else if (!listed.TryGetValue(name, out var bytes))
                {
                    throw Refused($"The archive holds '{Printable(name)}', which its manifest does not list.");
                }
                else if (entry.Length != bytes)
                {
                    throw Refused(string.Create(CultureInfo.InvariantCulture, $"The archive's '{Printable(name)}' is {entry.Length} bytes where its manifest lists {bytes}."));
                }

                Directory.CreateDirectory(Path.GetDirectoryName(full)!);

                // The signing key (keys/…) is restored as the service keeps it: readable by its owner only.
                using var output = name.StartsWith(KeysFolder + "/", StringComparison.Ordinal) || name == ManifestName
                    ? CreatePrivateFile(full)
                    : new FileStream(full, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                long length = 0;
                if (entry.DataStream is { } data)
                {
                    var buffer = new byte[1 << 16];
                    int read;
                    while ((read = data.Read(buffer)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                        output.Write(buffer, 0, read);
                        length += read;
                    }
                }

                output.Flush(flushToDisk: true);
                files[name] = new BackupFile(name, Convert.ToHexStringLower(hash.GetHashAndReset()), length);
                if (listed is null)
                {
                    output.Dispose();
                    listed = ListedSizes(full);
                }
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw Refused($"The archive is not a readable har-backup tar.gz ({ex.Message}): it is damaged or not a backup.", ex);
        }

        return files;
    }

    /// <summary>The most bytes a manifest may hold (a listing of some thousands of files is well under a megabyte).</summary>
    private const long MaxManifestBytes = 16 << 20;

    /// <summary>Each file the manifest lists, with its size; the manifest's own checks come later (<see cref="ReadManifest"/>).</summary>
    private static Dictionary<string, long> ListedSizes(string manifestPath)
    {
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            if (JsonNode.Parse(File.ReadAllBytes(manifestPath)) is JsonObject { } manifest && manifest["files"] is JsonArray list)
            {
                foreach (var file in list)
                {
                    if (file?["path"]?.GetValue<string>() is { } path && file["bytes"] is { } bytes)
                    {
                        sizes[path] = bytes.GetValue<long>();
                    }
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw Refused($"manifest.json is not a readable manifest ({ex.Message}).", ex);
        }

        return sizes;
    }

    private static JsonObject ReadManifest(Dictionary<string, BackupFile> extracted, string target)
    {
        if (!extracted.Remove(ManifestName))
        {
            throw Refused("The archive has no manifest.json: it is not a Har backup.");
        }

        JsonObject manifest;
        try
        {
            manifest = JsonNode.Parse(File.ReadAllBytes(Path.Combine(target, ManifestName))) as JsonObject ?? throw Refused("manifest.json is not a JSON object.");
        }
        catch (JsonException ex)
        {
            throw Refused($"manifest.json is not valid JSON ({ex.Message}).", ex);
        }

        File.Delete(Path.Combine(target, ManifestName));
        if (manifest["format"]?.GetValue<string>() is not (Format or FormatV1))
        {
            throw Refused($"manifest.json has format '{manifest["format"]}'; this version reads '{Format}' and '{FormatV1}' (an archive written by a newer release needs that release's har to restore it).");
        }

        return manifest;
    }

    private static string Text(JsonObject obj, string name) =>
        obj[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Refused($"manifest.json has no '{name}'.");

    private static string Printable(string s) => ModelVersionName.Printable(s);

    private static DeploymentBackupException Refused(string message) => new("Backup refused: " + message);

    private static DeploymentBackupException Refused(string message, Exception inner) => new("Backup refused: " + message, inner);
}
