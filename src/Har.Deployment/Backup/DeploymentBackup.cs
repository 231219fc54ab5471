using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Audit;

namespace Har.Deployment;

/// <summary>
/// Backup and restore of a deployment's state: the model registry (every version's <c>model.onnx</c>, <c>config.json</c>
/// and <c>deployment_record.json</c>, the <c>current</c> pointer, the registry's id), the rollout state and finished
/// rollouts (with their rollback and incident records), and the audit log, in one self-describing archive
/// (<c>har-backup-*.tar.gz</c>) with a manifest of the SHA-256 of every file.
/// </summary>
/// <remarks>
/// <para>
/// Consistent while the service serves: the rollout controller's gate and the registry's writer lock are held while the
/// registry and the rollout state are copied and a <c>backup.created</c> record (the copied files' listing hash) is
/// appended to the audit log; the log is then exported up to and including that record (appends go on meanwhile) and
/// the export's checkpoint is signed. The signed checkpoint covers the log, the log's last entry covers the listing, and
/// the manifest covers every file, so a change anywhere is found.
/// </para>
/// <para>
/// Restore writes into an empty folder only and declares success only after every check passed: each file's hash
/// against the manifest, the audit log against its signed checkpoint, the backup record against the manifest, every
/// registered version against the audit log, the current pointer and the rollout state. A failed check removes what
/// was written and throws <see cref="DeploymentBackupException"/> naming what was wrong.
/// </para>
/// </remarks>
public static partial class DeploymentBackup
{
    /// <summary>The audit event of a backup (entity type <c>backup</c>, entity id the backup id).</summary>
    internal const string CreatedEvent = "backup.created";

    /// <summary>The audit event a restored log receives once its restore verified.</summary>
    internal const string RestoredEvent = "backup.restored";

    /// <summary>
    /// The archive format this version writes: v2 holds the accuracy gate's labelled windows (<c>labelled_windows</c> in the
    /// manifest, <see cref="LabelledWindowsPath"/>). v1 archives, from before they were kept, are read too: they hold none.
    /// A release that reads v1 only refuses a v2 archive, naming the format, rather than restoring it without its labels.
    /// </summary>
    internal const string Format = "har-backup/v2";

    /// <summary>The format of archives from before labelled windows were kept (still read).</summary>
    internal const string FormatV1 = "har-backup/v1";
    internal const string ManifestName = "manifest.json";
    internal const string FilePrefix = "har-backup-";
    internal const string FileSuffix = ".tar.gz";
    internal const string RegistryFolder = "registry";
    internal const string AuditFolder = "audit";
    internal const string KeysFolder = "keys";
    internal const string StateFolder = ".rollout";

    /// <summary>The accuracy gate's labelled windows in an archive: the single-process journal's format and place.</summary>
    internal const string LabelledWindowsPath = RegistryFolder + "/" + StateFolder + "/" + FeedbackJournal.FileName;

    private static readonly JsonSerializerOptions ManifestJson = new() { WriteIndented = true };

    /// <summary>
    /// Takes a backup into <paramref name="directory"/> as <c>har-backup-{UTC time}-{random}.tar.gz</c>, consistent
    /// while the registry, the controller and the audit log are in use (see the type's remarks), and applies
    /// <see cref="DeploymentBackupOptions.Keep"/>.
    /// </summary>
    /// <param name="registry">The registry to back up (with its audit log: the one in <paramref name="auditLog"/>).</param>
    /// <param name="auditLog">The registry's audit log (a folder or PostgreSQL: both export to a file log in the archive).</param>
    /// <param name="controller">The rollout controller on <paramref name="registry"/>, whose state is read while its gate is held; <see langword="null"/> when none runs (the state is read from <c>.rollout</c> in the registry).</param>
    /// <param name="directory">The folder of the archives (created if missing).</param>
    /// <param name="options">The signing key and who takes the backup; <see cref="DeploymentBackupOptions.SigningKey"/> is required.</param>
    /// <param name="cancellationToken">Cancels the backup before the archive is published.</param>
    /// <returns>The archive written.</returns>
    /// <exception cref="ArgumentException">No signing key is set.</exception>
    /// <exception cref="AuditLogUnavailableException">The backup record could not be appended; no archive was written.</exception>
    public static async Task<DeploymentBackupResult> CreateAsync(ModelRegistry registry, AuditLog auditLog, RolloutController? controller, string directory, DeploymentBackupOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(auditLog);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(options);
        var key = options.SigningKey ?? throw new ArgumentException("DeploymentBackupOptions.SigningKey is required: the archive's audit log is signed with it (use the log's checkpoint key, e.g. AuditSigningKey.Load(path)).", nameof(options));
        if (controller is not null && !ReferenceEquals(controller.Registry, registry))
        {
            throw new ArgumentException("The controller steers another registry; pass the controller of this registry (or none).", nameof(controller));
        }

        if (options.Keep is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Keep, "DeploymentBackupOptions.Keep must be at least 1 (or null to keep every archive).");
        }

        var folder = Path.GetFullPath(directory);
        CreatePrivateDirectory(folder);
        var now = registry.Time.GetUtcNow();
        RemoveInterruptedBackups(folder, now);
        var backupId = FilePrefix + now.UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var staging = Path.Combine(folder, "." + backupId + ".staging");
        CreatePrivateDirectory(staging);

        // Held (an OS file lock) until the backup ends: the kernel lets go of it when the process dies, so the next backup
        // into this folder, from any process, tells a backup a crash interrupted from one in progress.
        var inProgress = new FileStream(Path.Combine(staging, InProgressName), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1);
        try
        {
            // 1. Frozen: no rollout command or analysis, no registration; the copies and the backup record agree.
            var frozen = controller is null
                ? await CaptureAsync(registry, auditLog, ReadOfflineState(registry), staging, backupId, now, options, cancellationToken).ConfigureAwait(false)
                : await controller.RunFrozenAsync(state => CaptureAsync(registry, auditLog, state, staging, backupId, now, options, cancellationToken), cancellationToken).ConfigureAwait(false);

            // 2. The audit log up to and including the backup record, signed for exactly that size.
            var entries = frozen.RecordIndex + 1;
            var auditStaging = Path.Combine(staging, AuditFolder);
            auditLog.ExportTo(auditStaging, entries);
            SignedCheckpoint checkpoint;
            using (var export = AuditLog.Open(new AuditLogOptions { Directory = auditStaging, EnableMetrics = false }))
            {
                checkpoint = export.CreateCheckpoint(key);
            }

            var files = new List<BackupFile>(frozen.Files);
            foreach (var path in Directory.EnumerateFiles(auditStaging, "*", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(staging, path).Replace(Path.DirectorySeparatorChar, '/');
                if (relative != AuditFolder + "/lock")
                {
                    files.Add(BackupFile.Of(relative, path));
                }
            }

            files.Sort(static (a, b) => string.CompareOrdinal(a.Path, b.Path));
            var manifest = new JsonObject
            {
                ["format"] = Format,
                ["backup_id"] = backupId,
                ["created_at"] = now.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                ["created_by"] = options.Actor,
                ["reason"] = options.Reason,
                ["current_version"] = frozen.CurrentVersion,
                ["versions"] = new JsonArray([.. frozen.Versions.Select(v => JsonValue.Create(v))]),
                ["rollout_id"] = frozen.RolloutId,
                ["rollout_phase"] = frozen.RolloutPhase,
                ["labelled_windows"] = frozen.LabelledWindows,
                ["audit"] = new JsonObject
                {
                    ["origin"] = auditLog.Origin,
                    ["entries"] = entries,
                    ["backup_record_index"] = frozen.RecordIndex,
                    ["checkpoint"] = checkpoint.NoteText,
                    ["verifier_key"] = key.VerifierKey,
                },
                ["recorded_files_sha256"] = frozen.ListingSha256,
                ["files"] = new JsonArray([.. files.Select(f => (JsonNode)new JsonObject { ["path"] = f.Path, ["sha256"] = f.Sha256, ["bytes"] = f.Bytes })]),
            };

            // 3. One archive, published by rename; then retention.
            var archive = Path.Combine(folder, backupId + FileSuffix);
            var temp = Path.Combine(folder, "." + backupId + FileSuffix + ".tmp");
            WriteArchive(temp, JsonSerializer.SerializeToUtf8Bytes(manifest, ManifestJson), staging, files);
            File.Move(temp, archive);
            DurableFile.FsyncDirectory(folder);
            var pruned = options.Keep is { } keep ? Prune(folder, keep) : [];
            return new DeploymentBackupResult(backupId, now, archive, entries, files.Count, frozen.CurrentVersion, frozen.Versions, key.VerifierKey, keyPinned: true, hasSigningKey: options.SigningKeyFile is not null, frozen.LabelledWindows, pruned, Format);
        }
        finally
        {
            inProgress.Dispose();
            TryDeleteDirectory(staging);
            TryDeleteFile(Path.Combine(folder, "." + backupId + FileSuffix + ".tmp"));
        }
    }

    /// <summary>Lists the archives in <paramref name="directory"/>, newest first (by the UTC time in their names).</summary>
    /// <param name="directory">The folder of the archives.</param>
    /// <returns>The archive files; empty when the folder does not exist.</returns>
    public static IReadOnlyList<FileInfo> List(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (!Directory.Exists(directory))
        {
            return [];
        }

        var files = new DirectoryInfo(directory).EnumerateFiles(FilePrefix + "*" + FileSuffix).Where(f => IsArchiveName(f.Name)).ToList();
        files.Sort(static (a, b) => string.CompareOrdinal(b.Name, a.Name));
        return files;
    }

    /// <summary>
    /// Reads when a backup was taken from its archive's file name (<c>har-backup-yyyyMMddTHHmmssfffZ-xxxxxxxx.tar.gz</c>,
    /// the UTC time of its <c>backup.created</c> record), e.g. to report the age of the newest archive in a folder.
    /// </summary>
    /// <param name="archivePath">The archive's path or file name.</param>
    /// <param name="createdAt">The UTC time in the name, when it is an archive name.</param>
    /// <returns>Whether the name is one this class writes.</returns>
    public static bool TryGetCreatedAt(string archivePath, out DateTimeOffset createdAt)
    {
        ArgumentNullException.ThrowIfNull(archivePath);
        var name = Path.GetFileName(archivePath);
        createdAt = default;
        return IsArchiveName(name)
            && DateTimeOffset.TryParseExact(name.AsSpan(FilePrefix.Length, 19), "yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out createdAt);
    }

    /// <summary>The file in a backup's <c>.{id}.staging</c> folder that the backup holds locked while it runs.</summary>
    internal const string InProgressName = ".in-progress";

    /// <summary>
    /// How long after its start a backup's working files (<c>.{id}.staging</c>, a copy of every model and of the audit
    /// log, and <c>.{id}.tar.gz.tmp</c>, the unpublished archive) are kept when the backup never finished and nothing
    /// tells whether it is still running: a staging folder without its lock file (written by a release before the lock,
    /// or a crash between the folder and the file). A staging folder whose lock file nobody holds, and an unpublished
    /// archive without a staging folder, are removed at once.
    /// </summary>
    internal static readonly TimeSpan InterruptedBackupAge = TimeSpan.FromHours(12);

    /// <summary>
    /// Removes the working files of backups a crash interrupted: a crash (SIGKILL, power loss) skips the backup's own
    /// clean-up, and a crash loop with a backup before each rollout filled a volume (13 staging folders, 349 MB, in 9
    /// minutes). Best effort; a backup in progress in any process holds its lock file and is left alone.
    /// </summary>
    internal static void RemoveInterruptedBackups(string folder, DateTimeOffset now)
    {
        try
        {
            foreach (var path in Directory.EnumerateFileSystemEntries(folder, "." + FilePrefix + "*"))
            {
                var name = Path.GetFileName(path);
                var id = name.EndsWith(".staging", StringComparison.Ordinal) ? name[1..^".staging".Length]
                    : name.EndsWith(FileSuffix + ".tmp", StringComparison.Ordinal) ? name[1..^".tmp".Length][..^FileSuffix.Length]
                    : null;
                if (id is null || !TryGetCreatedAt(id + FileSuffix, out var started))
                {
                    continue;
                }

                var interrupted = InterruptedNow(Path.Combine(folder, "." + id + ".staging"));
                if (interrupted is false || (interrupted is null && now - started < InterruptedBackupAge))
                {
                    continue;
                }

                var info = new DirectoryInfo(path);
                if (info.Exists && info.LinkTarget is null)
                {
                    TryDeleteDirectory(path);
                }
                else
                {
                    TryDeleteFile(path); // a file, or a link (removed itself, never followed)
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// Whether the backup of a staging folder has ended without cleaning up: true when its lock file is there and nobody
    /// holds it, or there is no staging folder (an unpublished archive left alone); false while a backup holds it; null
    /// when it cannot tell (a folder without the lock file, a link: decided by age).
    /// </summary>
    private static bool? InterruptedNow(string staging)
    {
        var info = new DirectoryInfo(staging);
        if (!info.Exists)
        {
            return info.LinkTarget is null ? true : null;
        }

        if (info.LinkTarget is not null || !File.Exists(Path.Combine(staging, InProgressName)))
        {
            return null;
        }

        try
        {
            using var probe = new FileStream(Path.Combine(staging, InProgressName), FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1);
            return true;
        }
        catch (IOException)
        {
            return false; // held: a backup in progress (or the file is unreadable: leave it to the age rule's next pass)
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether <paramref name="name"/> is an archive name this class writes (<c>har-backup-yyyyMMddTHHmmssfffZ-xxxxxxxx.tar.gz</c>).</summary>
    internal static bool IsArchiveName(string name) => ArchiveName().IsMatch(name);

    [System.Text.RegularExpressions.GeneratedRegex(@"^har-backup-[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}\.tar\.gz$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex ArchiveName();

    private static async Task<Captured> CaptureAsync(ModelRegistry registry, AuditLog auditLog, FrozenRolloutState state, string staging, string backupId, DateTimeOffset now, DeploymentBackupOptions options, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        using var writer = RegistryLock.Acquire(registry.Root);
        var files = new List<BackupFile>();
        var versions = new List<string>();
        foreach (var model in registry.List())
        {
            var dir = registry.VersionDirectory(model.Version);
            foreach (var name in (ReadOnlySpan<string>)[ModelRegistry.ModelFileName, ModelRegistry.ConfigFileName, ModelRegistry.RecordFileName])
            {
                var source = Path.Combine(dir, name);
                var info = new FileInfo(source);
                if (!info.Exists || info.LinkTarget is not null)
                {
                    throw new InvalidDataException($"{ModelVersionName.FolderName(model.Version)}/{name} is missing or a link; the registry does not verify, so no backup was taken (run verification on the registry).");
                }

                files.Add(CopyIn(staging, $"{RegistryFolder}/{ModelVersionName.FolderName(model.Version)}/{name}", source));
            }

            versions.Add(model.Version);
        }

        var current = registry.CurrentVersion;
        if (current is not null)
        {
            files.Add(WriteIn(staging, $"{RegistryFolder}/{ModelRegistry.CurrentFileName}", Encoding.UTF8.GetBytes(ModelVersionName.FolderName(current) + "\n")));
        }

        files.Add(WriteIn(staging, $"{RegistryFolder}/registry-id", Encoding.ASCII.GetBytes(registry.RegistryId)));
        if (state.State is { } bytes)
        {
            files.Add(WriteIn(staging, $"{RegistryFolder}/{StateFolder}/{RolloutStateStore.FileName}", bytes));
        }

        foreach (var (name, content) in state.History)
        {
            files.Add(WriteIn(staging, $"{RegistryFolder}/{StateFolder}/history/{name}", content));
        }

        if (state.LabelledWindows.Count > 0)
        {
            files.Add(WriteIn(staging, LabelledWindowsPath, FeedbackJournal.Serialize(state.LabelledWindows)));
        }

        if (options.SigningKeyFile is { } keyFile)
        {
            using var signing = AuditSigningKey.Load(keyFile);
            if (signing.VerifierKey != options.SigningKey!.VerifierKey)
            {
                throw new ArgumentException("DeploymentBackupOptions.SigningKeyFile holds another key than DeploymentBackupOptions.SigningKey; include the key that signs the archive's checkpoint.", nameof(options));
            }

            files.Add(CopyIn(staging, $"{KeysFolder}/audit.key", keyFile));
            files.Add(WriteIn(staging, $"{KeysFolder}/audit.vkey", Encoding.UTF8.GetBytes(signing.VerifierKey + "\n")));
        }

        files.Sort(static (a, b) => string.CompareOrdinal(a.Path, b.Path));
        var listing = ListingSha256(files);
        var details = new JsonObject
        {
            ["backup_id"] = backupId,
            ["reason"] = options.Reason,
            ["files_sha256"] = listing,
            ["file_count"] = files.Count,
            ["current_version"] = current,
            ["versions"] = new JsonArray([.. versions.Select(v => JsonValue.Create(v))]),
            ["rollout_id"] = state.RolloutId,
            ["rollout_phase"] = state.Phase,
            ["registry_id"] = registry.RegistryId,
            ["labelled_windows"] = state.LabelledWindows.Count,
        };
        var record = new AuditEvent
        {
            EventType = CreatedEvent,
            EntityType = "backup",
            EntityId = backupId,
            Severity = AuditSeverity.Info,
            Actor = options.Actor,
            Timestamp = now,
            ActionDetails = JsonSerializer.SerializeToElement(details),
        };
        var appended = await auditLog.AppendAsync(record, ct).ConfigureAwait(false);
        return new Captured(files, versions, current, state.RolloutId, state.Phase, listing, appended.Index, state.LabelledWindows.Count);
    }

    /// <summary>The rollout state of a registry whose controller is not running: <c>.rollout</c> in the registry folder.</summary>
    private static FrozenRolloutState ReadOfflineState(ModelRegistry registry)
    {
        var dir = Path.Combine(registry.Root, StateFolder);
        var statePath = Path.Combine(dir, RolloutStateStore.FileName);
        var state = File.Exists(statePath) ? File.ReadAllBytes(statePath) : null;
        var parsed = state is null ? null : JsonSerializer.Deserialize<RolloutState>(state, RolloutStateStore.Json);
        var history = new List<(string Name, byte[] Bytes)>();
        if (Directory.Exists(Path.Combine(dir, "history")))
        {
            foreach (var path in Directory.EnumerateFiles(Path.Combine(dir, "history"), "*.json"))
            {
                history.Add((Path.GetFileName(path), File.ReadAllBytes(path)));
            }
        }

        history.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));

        // The labelled windows: every whole line of the journal (it holds at most twice the store's limit, which is not
        // known here; a controller restored from the archive keeps the newest it is configured for).
        var journal = Path.Combine(dir, FeedbackJournal.FileName);
        var labelled = File.Exists(journal) ? FeedbackJournal.Read(File.ReadLines(journal), int.MaxValue, out _, out _) : [];
        return new FrozenRolloutState(state, parsed?.RolloutId, parsed?.Phase.ToString(), history, labelled);
    }

    /// <summary>The hash of the file listing the backup record carries: lines <c>sha256  bytes  path</c>, sorted by path.</summary>
    internal static string ListingSha256(IEnumerable<BackupFile> files)
    {
        var text = new StringBuilder();
        foreach (var f in files.OrderBy(f => f.Path, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"{f.Sha256}  {f.Bytes}  {f.Path}\n");
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private static BackupFile CopyIn(string staging, string relative, string source)
    {
        var target = Path.Combine(staging, relative.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using (var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
        using (var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
        {
            input.CopyTo(output);
        }

        return BackupFile.Of(relative, target);
    }

    private static BackupFile WriteIn(string staging, string relative, byte[] content)
    {
        var target = Path.Combine(staging, relative.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.WriteAllBytes(target, content);
        return new BackupFile(relative, Convert.ToHexStringLower(SHA256.HashData(content)), content.Length);
    }

    /// <summary>
    /// Creates a file only its owner can read or write (0600 on Unix): an archive holds the audit signing key by
    /// default, so it is a secret on disk too (it was 0644, readable by any local user or any container mounting the
    /// volume).
    /// </summary>
    internal static FileStream CreatePrivateFile(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 1 << 16 };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        return new FileStream(path, options);
    }

    /// <summary>Creates a folder only its owner can enter (0700 on Unix) if it does not exist; an existing one is left as it is.</summary>
    internal static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows() || Directory.Exists(path))
        {
            Directory.CreateDirectory(path);
            return;
        }

        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private static void WriteArchive(string path, byte[] manifest, string staging, IReadOnlyList<BackupFile> files)
    {
        using (var stream = CreatePrivateFile(path))
        {
            using (var gzip = new GZipStream(stream, CompressionLevel.Optimal, leaveOpen: true))
            using (var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true))
            {
                // Every entry owner-only (0600), as the archive itself: the default 0644 made 'tar -xzf <archive> keys/audit.key'
                // (the step the restore runbook gives for a fleet's signing key) write the key world-readable when run as root.
                var entry = new PaxTarEntry(TarEntryType.RegularFile, ManifestName) { DataStream = new MemoryStream(manifest), Mode = OwnerOnly };
                tar.WriteEntry(entry);
                foreach (var file in files)
                {
                    using var data = File.OpenRead(Path.Combine(staging, file.Path.Replace('/', Path.DirectorySeparatorChar)));
                    tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, file.Path) { DataStream = data, Mode = OwnerOnly });
                }
            }

            stream.Flush(flushToDisk: true);
        }
    }

    internal static string HashFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static void TryDeleteDirectory(string directory)
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
            // A staging folder is never read; the next backup uses a fresh name.
        }
    }

    private static void TryDeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Never read: archives are published by rename.
        }
    }

    /// <summary>One file of an archive: its path inside the archive (<c>/</c>-separated), SHA-256 and size.</summary>
    internal sealed record BackupFile(string Path, string Sha256, long Bytes)
    {
        public static BackupFile Of(string relative, string file) => new(relative, HashFile(file), new FileInfo(file).Length);
    }

    private sealed record Captured(IReadOnlyList<BackupFile> Files, IReadOnlyList<string> Versions, string? CurrentVersion, string? RolloutId, string? RolloutPhase, string ListingSha256, long RecordIndex, int LabelledWindows);
}
