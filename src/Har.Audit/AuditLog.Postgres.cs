using Har.Audit.Postgres;
using Microsoft.Extensions.Logging;

namespace Har.Audit;

public sealed partial class AuditLog
{
    /// <summary>The PostgreSQL storage when <see cref="AuditLogOptions.ConnectionString"/> is set; null for the file log.</summary>
    private readonly PostgresAuditStore? _pg;

    /// <summary>Opens the log stored in PostgreSQL; the file-log members stay unset and every public member delegates to <paramref name="store"/>.</summary>
    private AuditLog(PostgresAuditStore store, AuditLogOptions options, ILogger logger, TimeProvider time)
    {
        _options = options;
        _logger = logger;
        _time = time;
        _pg = store;
        Directory = store.DisplayName;
        Origin = store.Origin;
        Recovery = new AuditRecoveryReport { Entries = store.Count };
        _lock = null!;
        _segment = null!;
        _nodes = null!;
        _index = null!;
        _writer = null!;
        _metrics = new AuditMetrics(options, this);
        store.Metrics = _metrics;
        _metrics.Size(Recovery.Entries, 0);
        _metrics.Checkpoint(store.LatestCheckpoint?.TreeSize ?? 0);
    }

    /// <summary>Gets whether the log is stored in PostgreSQL (no folder, no quarantine).</summary>
    internal bool IsDatabase => _pg is not null;

    /// <summary>
    /// Verifies the audit log stored in a PostgreSQL database, read-only and in one snapshot (nothing is created or
    /// migrated): every entry (record schema, index without gaps, hash chain, stored leaf hash, query columns), every
    /// stored Merkle node recomputed from the entries, and the root at every signed checkpoint, with the latest
    /// checkpoint's signature.
    /// </summary>
    /// <param name="connectionString">The Npgsql connection string of the database holding the log (e.g. <c>ConnectionStrings:Har</c>).</param>
    /// <param name="verifierKey">The trusted verifier key; <see langword="null"/> uses the key stored with the checkpoint (weaker: say so to your auditor).</param>
    /// <returns>The outcome, with the first bad index and why.</returns>
    /// <exception cref="InvalidDataException">The database holds no Har audit log.</exception>
    /// <exception cref="InvalidOperationException">The database's audit schema is newer than this package.</exception>
    public static AuditVerificationResult VerifyDatabase(string connectionString, AuditVerifierKey? verifierKey)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        using var store = PostgresAuditStore.OpenExisting(connectionString);
        return store.Verify(verifierKey);
    }

    /// <summary>
    /// Writes every acknowledged entry of this log (file or PostgreSQL), or the first <paramref name="treeSize"/> of them, to
    /// a new file log in <paramref name="directory"/>, byte-identical (same entries, leaf hashes and Merkle tree), with the
    /// latest signed checkpoint and its verifier key, so the export verifies offline with
    /// <see cref="Verify(string, AuditVerifierKey?)"/> or <c>har audit verify --log</c>. A tree size gives a consistent
    /// prefix while appends go on (e.g. up to and including a record just appended); the latest signed checkpoint is then
    /// copied when it covers no more than the exported entries: sign one for exactly this size on the export with
    /// <see cref="CreateCheckpoint"/>.
    /// </summary>
    /// <param name="directory">A folder that does not exist or is empty.</param>
    /// <param name="treeSize">How many entries to export, from 0 to <see cref="Count"/>; <see langword="null"/> for every acknowledged entry.</param>
    /// <returns>The number of entries exported.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="treeSize"/> is negative or more than the log holds.</exception>
    /// <exception cref="IOException">The folder is not empty.</exception>
    /// <exception cref="InvalidDataException">A stored entry does not reproduce its leaf hash (the log is damaged: run verify).</exception>
    /// <exception cref="ObjectDisposedException">The log was disposed.</exception>
    public long ExportTo(string directory, long? treeSize = null)
    {
        ThrowIfDisposed();
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (treeSize is { } size)
        {
            CheckSize(size, nameof(treeSize));
        }

        return ExportCore(directory, treeSize);
    }

    /// <summary>
    /// Imports a file log (an export, or the <c>audit/</c> folder of a backup) into a PostgreSQL database that holds no log
    /// yet, the inverse of <see cref="ExportTo"/>: the folder is verified first against <paramref name="verifierKey"/>
    /// (every entry, the tree, the signed checkpoint); then, in one transaction, every entry is written with the same
    /// index, leaf hash and Merkle tree, and the folder's signed checkpoint with it, so the checkpoint verifies against the
    /// database and appends continue the same log. Nothing is committed unless every leaf and the checkpoint's root match.
    /// </summary>
    /// <param name="directory">The folder of the file log; it must hold a signed checkpoint.</param>
    /// <param name="connectionString">The Npgsql connection string of the database (its <c>har_audit</c> schema is created when missing).</param>
    /// <param name="verifierKey">The trusted verifier key of the folder's checkpoint.</param>
    /// <returns>The number of entries imported.</returns>
    /// <exception cref="InvalidDataException">The folder does not verify, or has no signed checkpoint; nothing was written to the database.</exception>
    /// <exception cref="InvalidOperationException">The database already holds a log (or part of one); nothing was written.</exception>
    /// <exception cref="AuditLogUnavailableException">PostgreSQL could not be reached; nothing was committed.</exception>
    public static long ImportToDatabase(string directory, string connectionString, AuditVerifierKey verifierKey)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        ArgumentNullException.ThrowIfNull(verifierKey);
        var verification = Verify(directory, verifierKey);
        if (!verification.IsValid)
        {
            throw new InvalidDataException($"The log in '{directory}' does not verify, so nothing was imported: {verification}");
        }

        using var source = Open(new AuditLogOptions { Directory = directory, EnableMetrics = false });
        var checkpoint = source.LatestCheckpoint ?? throw new InvalidDataException($"The log in '{directory}' has no signed checkpoint; an import carries one (sign it first: CreateCheckpoint or `har audit checkpoint`).");
        return PostgresAuditStore.Import(connectionString, source.Origin, source.ReadAll(), checkpoint, verifierKey.ToString(), TimeProvider.System);
    }

    /// <summary>Every entry in index order, a page at a time.</summary>
    private IEnumerable<AuditEntry> ReadAll()
    {
        string? token = null;
        do
        {
            var page = Query(new AuditQuery { PageSize = 1000, PageToken = token });
            foreach (var entry in page.Entries)
            {
                yield return entry;
            }

            token = page.NextPageToken;
        }
        while (token is not null);
    }

    private long ExportCore(string directory, long? treeSize)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var target = Path.GetFullPath(directory);
        if (System.IO.Directory.Exists(target) && System.IO.Directory.EnumerateFileSystemEntries(target).Any())
        {
            throw new IOException($"'{target}' is not empty: an export writes a new log folder.");
        }

        var checkpoint = _pg is null ? LatestCheckpoint : null;
        var verifierKey = _pg is null
            ? (File.Exists(Path.Combine(Directory, VerifierKeyFile)) ? File.ReadAllText(Path.Combine(Directory, VerifierKeyFile)).Trim() : null)
            : null;
        if (_pg is not null && _pg.Reading(static s => s.LatestCheckpointWithKey()) is { } stored)
        {
            (checkpoint, verifierKey) = stored;
        }

        var size = treeSize ?? Math.Max(Count, checkpoint?.TreeSize ?? 0);
        using var export = Open(new AuditLogOptions { Directory = target, Origin = Origin, EnableMetrics = false, MaxRecordBytes = _options.MaxRecordBytes });
        string? token = null;
        long exported = 0;
        do
        {
            var page = Query(new AuditQuery { PageSize = 1000, PageToken = token });
            var appends = new List<(AuditEntry Entry, Task<AuditAppendResult> Ack)>(page.Entries.Count);
            foreach (var entry in page.Entries)
            {
                if (entry.Index >= size)
                {
                    break;
                }

                appends.Add((entry, export.AppendAsync(entry.Record)));
            }

            foreach (var (entry, ack) in appends)
            {
                var result = ack.GetAwaiter().GetResult();
                if (result.Index != entry.Index || !result.LeafHash.Span.SequenceEqual(entry.LeafHashBytes))
                {
                    throw new InvalidDataException($"Entry {entry.Index} does not reproduce its leaf hash in the export: the log is damaged. Run verify.");
                }
            }

            exported += appends.Count;
            token = exported < size ? page.NextPageToken : null;
        }
        while (token is not null);

        if (checkpoint is not null && checkpoint.TreeSize <= exported)
        {
            if (verifierKey is not null)
            {
                Storage.DurableFile.WriteAtomic(Path.Combine(target, VerifierKeyFile), System.Text.Encoding.UTF8.GetBytes(verifierKey + "\n"));
            }

            Storage.DurableFile.WriteAtomic(Path.Combine(target, CheckpointFile), System.Text.Encoding.UTF8.GetBytes(checkpoint.NoteText));
        }

        return exported;
    }

    /// <summary>The message when neither storage is configured.</summary>
    internal const string StorageRequired = "AuditLogOptions.Directory is required: the folder that holds (or will hold) the log (or set AuditLogOptions.ConnectionString to keep the log in PostgreSQL).";

    /// <summary>The message when both storages are configured, or null (the connection string is not repeated: it may hold a password).</summary>
    internal static string? StorageConflict(AuditLogOptions options) =>
        !string.IsNullOrWhiteSpace(options.Directory) && !string.IsNullOrWhiteSpace(options.ConnectionString)
            ? $"AuditLogOptions.Directory ('{options.Directory}') and AuditLogOptions.ConnectionString are both set; the log lives in one place: set Directory for a file log owned by one process, or ConnectionString for a log in PostgreSQL shared by a fleet, not both."
            : null;

    /// <summary>The message when <see cref="AuditLogOptions.VerifierKey"/> is set but is not a verifier key, or null.</summary>
    internal static string? VerifierKeyProblem(AuditLogOptions options)
    {
        if (options.VerifierKey is null)
        {
            return null;
        }

        try
        {
            AuditVerifierKey.Parse(options.VerifierKey);
            return null;
        }
        catch (FormatException ex)
        {
            return $"AuditLogOptions.VerifierKey is not a verifier key: {ex.Message} It is the pinned key Verify() checks checkpoints with (AuditSigningKey.VerifierKey, or the log's checkpoint.vkey); leave it null to use the key stored beside the checkpoint.";
        }
    }

    private static void CheckStorage(AuditLogOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.Directory) && string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            throw new ArgumentException($"Invalid audit log options: {StorageRequired}", nameof(options));
        }

        if (StorageConflict(options) is { } conflict)
        {
            throw new ArgumentException($"Invalid audit log options: {conflict}", nameof(options));
        }

        if (VerifierKeyProblem(options) is { } key)
        {
            throw new ArgumentException($"Invalid audit log options: {key}", nameof(options));
        }
    }

    private static AuditLog OpenDatabase(AuditLogOptions options, ILogger logger, TimeProvider time)
    {
        var store = PostgresAuditStore.Open(options, logger, time);
        try
        {
            return new AuditLog(store, options, logger, time);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }
}
