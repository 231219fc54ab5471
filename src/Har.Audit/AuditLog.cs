using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Har.Audit.Merkle;
using Har.Audit.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace Har.Audit;

/// <summary>
/// An embedded, append-only, tamper-evident audit log in one directory. Every entry carries its index
/// and the previous entry's leaf hash (a hash chain) and is a leaf of an RFC 9162 Merkle tree whose
/// complete-subtree hashes are stored, so inclusion and consistency proofs cost O(log n) reads;
/// checkpoints are signed C2SP notes (Ed25519). An append completes only after its bytes are fsynced;
/// concurrent appends share one write and one fsync (group commit). One process owns a log at a time
/// (<see cref="Open(AuditLogOptions, ILogger?, TimeProvider?)"/>); any number of readers in other processes can read it with <see cref="OpenReadOnly"/>.
/// </summary>
public sealed partial class AuditLog : IDisposable, IAsyncDisposable
{
    internal const string SegmentFile = "entries.log";
    internal const string IndexFile = "entries.idx";
    internal const string StateFile = "state.json";
    internal const string MetaFile = "log.json";
    internal const string CheckpointFile = "checkpoint";
    internal const string VerifierKeyFile = "checkpoint.vkey";
    internal const string TreeDirectory = "tree";
    internal const string QuarantineDirectory = "quarantine";
    internal const string TornDirectory = "torn";
    private const string LockFile = "lock";
    private const int MaxFramePayload = (64 << 20) + 4096;
    private const long MaxGroupBytes = 8 << 20;
    private const int ScratchLimit = 64 << 10;
    private const int ProbeBytes = 64 << 10;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> OpenInProcess = new(StringComparer.Ordinal);

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_scratch;

    private readonly AuditLogOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly AuditMetrics _metrics;
    private readonly SafeFileHandle _lock;
    private readonly SafeFileHandle _segment;
    private readonly NodeStore _nodes;
    private readonly EntryIndex _index;
    private readonly object _gate = new();
    private readonly Lock _commitLock = new();

    /// <summary>Serialises the file log's <see cref="AppendOnceAsync"/> calls: each one's check and append, before the next's check.</summary>
    private readonly SemaphoreSlim _onceGate = new(1, 1);
    private readonly Lock _checkpointLock = new();
    private readonly SemaphoreSlim _sealGate = new(1, 1);
    private readonly Thread _writer;
    private readonly ArrayBufferWriter<byte> _group = new(1 << 20);
    private readonly byte[] _lastLeaf = new byte[32];

    /// <summary>Whether the log was opened with <see cref="OpenReadOnly"/>: no lock, no writer, nothing written.</summary>
    private readonly bool _readOnly;

    /// <summary>Read-only: the checkpoint note when the view was opened (read before the seal and the segment, so it never covers more than a healthy log's view).</summary>
    private readonly string? _checkpointNote;
    private PendingQueue _queue = new();
    private bool _stopping;
    private bool _disposed;
    private Exception? _fault;
    private long _size;
    private long _segmentLength;
    private long _sealedSize;
    private int _sealing;
    private int _state;
    private bool _retryDue;
    private ITimer? _retryTimer;
    private Task _sealTask = Task.CompletedTask;

    private AuditLog(AuditLogOptions options, ILogger logger, TimeProvider time, RepairRequest? repair)
    {
        _options = options;
        _logger = logger;
        _time = time;
        Directory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.Directory));
        if (FolderProblem(Directory) is { } folderProblem)
        {
            throw new ArgumentException(folderProblem, nameof(options));
        }

        if (!OpenInProcess.TryAdd(Directory, 0))
        {
            throw new InvalidOperationException($"The audit log at '{Directory}' is already open in this process: a log has one AuditLog instance at a time. Share that instance (e.g. the AuditLog singleton that AddHarAudit registers) or dispose it before opening the folder again.");
        }

        try
        {
            _lock = OpenLock(Directory);
        }
        catch
        {
            OpenInProcess.TryRemove(Directory, out _);
            throw;
        }

        try
        {
            Origin = LoadOrCreateMeta(options.Origin);
            _segment = OpenSegment();
            _nodes = new NodeStore(Path.Combine(Directory, TreeDirectory));
            _index = new EntryIndex(Path.Combine(Directory, IndexFile));
            _metrics = new AuditMetrics(options, this);
            Recovery = Recover(repair);
            _metrics.Size(_size, _segmentLength);
            _metrics.Quarantine(QuarantineSummary.Read(Directory));
            _metrics.Checkpoint(CheckpointSizeOrZero());
        }
        catch (Exception ex)
        {
            _segment?.Dispose();
            _nodes?.Dispose();
            _index?.Dispose();
            _metrics?.Dispose();
            _lock.Dispose();
            OpenInProcess.TryRemove(Directory, out _);
            if (ex is (IOException or UnauthorizedAccessException) and not AuditLogUnavailableException and not AuditLogCorruptedException)
            {
                throw Unavailable(Directory, "cannot be opened for writing", ex);
            }

            throw;
        }

        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "har-audit-writer" };
        _writer.Start();
    }

    /// <summary>Gets the log directory (full path); for a log in PostgreSQL, <c>postgresql://host/database</c> (never the password).</summary>
    public string Directory { get; }

    /// <summary>Gets the log's origin, the first line of its checkpoints.</summary>
    public string Origin { get; }

    /// <summary>Gets the number of acknowledged entries.</summary>
    /// <remarks>For a log opened with <see cref="OpenReadOnly"/>: the entries of the view, fixed when it was opened.</remarks>
    public long Count => _pg?.Reading(static s => s.Count) ?? Volatile.Read(ref _size);

    /// <summary>Gets what opening the log found: entries re-scanned, and any bad tail truncated.</summary>
    internal AuditRecoveryReport Recovery { get; }

    /// <summary>Gets whether appends can be made durable now; <see cref="AuditLogState.Unavailable"/> after a failed write or fsync until a probe write succeeds (see <see cref="AuditLogOptions.RetryInterval"/>), and always for a log opened with <see cref="OpenReadOnly"/>.</summary>
    public AuditLogState State => _pg?.State ?? (AuditLogState)Volatile.Read(ref _state);

    /// <summary>Gets the latest signed checkpoint written for this log, or <see langword="null"/>.</summary>
    /// <remarks>For a log opened with <see cref="OpenReadOnly"/>: the latest checkpoint when the view was opened.</remarks>
    public SignedCheckpoint? LatestCheckpoint => _pg is not null ? _pg.Reading(static s => s.LatestCheckpoint)
        : _readOnly ? (_checkpointNote is null ? null : SignedCheckpoint.Parse(_checkpointNote))
        : ReadCheckpoint(Directory);

    /// <summary>
    /// Opens (or creates) the log in <see cref="AuditLogOptions.Directory"/>, re-scanning the entries written
    /// after the last seal. A torn tail (an incomplete last frame that was never acknowledged, followed by no
    /// valid entry and not covered by the latest checkpoint) is truncated, a copy kept in <c>torn/</c> and
    /// reported in <see cref="Recovery"/>; any other damage stops the open with <see cref="AuditLogCorruptedException"/>.
    /// </summary>
    /// <param name="options">The options; validated.</param>
    /// <param name="logger">Receives recovery and fault messages.</param>
    /// <param name="timeProvider">The clock (fsync latency, retry probes, file names).</param>
    /// <returns>The open log.</returns>
    /// <exception cref="IOException">Another process has the log open (read it there with <see cref="OpenReadOnly"/>).</exception>
    /// <exception cref="InvalidOperationException">This process already has the log open.</exception>
    /// <exception cref="AuditLogUnavailableException">The folder cannot be opened for writing (read-only, disk full, I/O error).</exception>
    /// <exception cref="AuditLogCorruptedException">An acknowledged entry is damaged (see <see cref="Repair"/>).</exception>
    /// <exception cref="InvalidDataException">The directory holds something that is not a Har audit log.</exception>
    /// <exception cref="ArgumentException">
    /// The options are invalid: <see cref="AuditLogOptions.Directory"/> and <see cref="AuditLogOptions.ConnectionString"/> are
    /// both set or both empty, the directory is a file, or it holds other files and no audit log.
    /// </exception>
    public static AuditLog Open(AuditLogOptions options, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var validation = new AuditLogOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new ArgumentException($"Invalid audit log options: {validation.FailureMessage}", nameof(options));
        }

        CheckStorage(options);
        if (!string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            return OpenDatabase(options, logger ?? NullLogger.Instance, timeProvider ?? TimeProvider.System);
        }

        return new AuditLog(options, logger ?? NullLogger.Instance, timeProvider ?? TimeProvider.System, null);
    }

    /// <summary>
    /// Opens the log like <see cref="Open(AuditLogOptions, ILogger?, TimeProvider?)"/>, but when an acknowledged
    /// entry is damaged, moves it and everything after it to <c>quarantine/</c> (with a manifest), archives a
    /// checkpoint that no longer matches, truncates the segment and appends an <c>audit.log.repaired</c> event
    /// (severity critical, by <paramref name="actor"/>, with <paramref name="reason"/> and what was removed).
    /// The quarantine stays visible: <see cref="Verify()"/> then reports <see cref="AuditVerificationProblem.Quarantined"/>.
    /// A log with nothing to repair is opened unchanged and no event is written.
    /// </summary>
    /// <param name="options">The options; validated.</param>
    /// <param name="actor">Who decided the repair (recorded).</param>
    /// <param name="reason">Why (recorded), e.g. the incident number.</param>
    /// <param name="logger">Receives recovery messages.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <returns>What was removed (see <see cref="AuditRecoveryReport.RepairEventIndex"/>).</returns>
    /// <exception cref="ArgumentException">The options are invalid (see <see cref="Open(AuditLogOptions, ILogger?, TimeProvider?)"/>), or <paramref name="actor"/> or <paramref name="reason"/> is empty.</exception>
    /// <exception cref="NotSupportedException">The options name a PostgreSQL log: restore the database from its backups instead.</exception>
    public static AuditRecoveryReport Repair(AuditLogOptions options, string actor, string reason, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        var validation = new AuditLogOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new ArgumentException($"Invalid audit log options: {validation.FailureMessage}", nameof(options));
        }

        CheckStorage(options);
        if (!string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            throw new NotSupportedException("Repair applies to a file log (a damaged segment on disk); a log in PostgreSQL is repaired from the database's backups. AuditLog.VerifyDatabase(connectionString, verifierKey) finds the first bad entry.");
        }

        var repair = new RepairRequest(actor, reason);
        using var log = new AuditLog(options, logger ?? NullLogger.Instance, timeProvider ?? TimeProvider.System, repair);
        return log.FinishRepair(repair);
    }

    /// <summary>Opens (or creates) the log in <paramref name="directory"/> with default options.</summary>
    /// <param name="directory">The log directory.</param>
    /// <returns>The open log.</returns>
    internal static AuditLog Open(string directory) => Open(new AuditLogOptions { Directory = directory });

    /// <summary>
    /// Verifies a log directory without opening it for writing (nothing is repaired): framing, CRC-32C,
    /// entry indexes, the hash chain, each record against its schema, the stored Merkle nodes and query
    /// index against the entries, and the Merkle root at the latest signed checkpoint's size against the
    /// signed root, with the checkpoint's signature.
    /// </summary>
    /// <param name="directory">The log directory.</param>
    /// <param name="verifierKey">The trusted verifier key; <see langword="null"/> uses the key stored beside the checkpoint (weaker: say so to your auditor).</param>
    /// <returns>The outcome, with the first bad index and why.</returns>
    /// <exception cref="ArgumentException"><paramref name="directory"/> is <see langword="null"/>, empty or white space.</exception>
    public static AuditVerificationResult Verify(string directory, AuditVerifierKey? verifierKey)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        return LogVerifier.Verify(Path.GetFullPath(directory), null, verifierKey);
    }

    /// <summary>Verifies this log (see <see cref="Verify(string, AuditVerifierKey?)"/>) up to the acknowledged entries, with <see cref="AuditLogOptions.VerifierKey"/> if set.</summary>
    /// <remarks>
    /// For a log opened with <see cref="OpenReadOnly"/>: verifies the folder as it is now, as <see cref="Verify(string, AuditVerifierKey?)"/>
    /// does with the key stored beside the checkpoint (the whole segment, or the consistent prefix of a log another process
    /// is writing), so damage the view stepped around (see <see cref="ReadOnlyStopReason"/>) is reported, not hidden.
    /// </remarks>
    /// <returns>The outcome.</returns>
    /// <exception cref="ObjectDisposedException">The log was disposed.</exception>
    public AuditVerificationResult Verify()
    {
        ThrowIfDisposed();
        var key = _options.VerifierKey is null ? null : AuditVerifierKey.Parse(_options.VerifierKey);
        if (_pg is not null)
        {
            return _pg.Reading(s => s.Verify(key));
        }

        if (_readOnly)
        {
            return LogVerifier.Verify(Directory, null, key);
        }

        long limit;
        lock (_commitLock)
        {
            limit = _segmentLength;
        }

        return LogVerifier.Verify(Directory, limit, key);
    }

    /// <summary>Whether a writer (this process or another) holds the log open, so its files may be growing.</summary>
    internal static bool IsLive(string directory)
    {
        var path = Path.Combine(directory, LockFile);
        return OpenInProcess.ContainsKey(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory))) || (File.Exists(path) && IsLockedByOther(path));
    }

    /// <summary>Refuses a read, proof, export, checkpoint or verification on a disposed log (its files are closed), naming the log.</summary>
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _stopping = true;
            Monitor.PulseAll(_gate);
        }

        if (_readOnly)
        {
            // No writer, seal, timer, metrics or lock: only the read handles.
            _segment.Dispose();
            _nodes.Dispose();
            _index.Dispose();
            _sealGate.Dispose();
            return;
        }

        if (_pg is not null)
        {
            _pg.Dispose();
            _metrics.Dispose();
            return;
        }

        _writer.Join();
        try
        {
            _sealTask.GetAwaiter().GetResult();
        }
        catch (IOException)
        {
            // logged by the seal itself
        }

        _retryTimer?.Dispose();
        if (State == AuditLogState.Writable)
        {
            try
            {
                Seal(_size, _segmentLength);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Log.SealFailed(_logger, Directory, ex); // the next open re-scans the unsealed entries
            }
        }

        _metrics.Dispose();
        _segment.Dispose();
        _nodes.Dispose();
        _index.Dispose();
        _sealGate.Dispose();
        _lock.Dispose();
        OpenInProcess.TryRemove(Directory, out _);
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    internal static SignedCheckpoint? ReadCheckpoint(string directory)
    {
        var path = Path.Combine(directory, CheckpointFile);
        return File.Exists(path) ? SignedCheckpoint.Parse(File.ReadAllText(path, Encoding.UTF8)) : null;
    }

    private void CheckSize(long size, string name)
    {
        var count = Count;
        if (size < 0 || size > count)
        {
            throw new ArgumentOutOfRangeException(name, size, $"Tree size must be in [0, {count}] (the log holds {Messages.Entries(count)}).");
        }
    }

    private AuditEntry ReadEntry(long index, IndexRow row)
    {
        var frame = new byte[row.FrameLength];
        if (RandomAccess.Read(_segment, frame, row.Offset) != frame.Length)
        {
            throw new AuditLogCorruptedException($"Entry {index} is damaged: the segment ends before its frame at offset {row.Offset}. Verify the log (AuditLog.Verify(), or `har audit verify`) to find every damaged entry.", index, row.Offset);
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(frame);
        var payload = frame.AsSpan(LogEnvelope.FrameOverhead);
        if (length != payload.Length || BinaryPrimitives.ReadUInt32LittleEndian(frame.AsSpan(4)) != LogEnvelope.FrameCrc(frame.AsSpan(0, 4), payload))
        {
            throw new AuditLogCorruptedException($"Entry {index} is damaged: its frame at offset {row.Offset} fails its length or CRC-32C check. Verify the log (AuditLog.Verify(), or `har audit verify`) to find every damaged entry.", index, row.Offset);
        }

        var parsed = LogEnvelope.TryParse(payload, out var problem)
            ?? throw new AuditLogCorruptedException($"Entry {index} is damaged (frame at offset {row.Offset}): {problem}. Verify the log (AuditLog.Verify(), or `har audit verify`) to find every damaged entry.", index, row.Offset);
        if (parsed.Index != index)
        {
            throw new AuditLogCorruptedException($"Entry {index} is damaged: the entry stored at offset {row.Offset} says index {parsed.Index}. Verify the log (AuditLog.Verify(), or `har audit verify`) to find every damaged entry.", index, row.Offset);
        }

        var bytes = payload.ToArray();
        return new AuditEntry(index, parsed.Record, parsed.PreviousHash, bytes, MerkleHasher.Leaf(bytes));
    }

    private string LoadOrCreateMeta(string? requestedOrigin)
    {
        var path = Path.Combine(Directory, MetaFile);
        if (File.Exists(path))
        {
            var origin = RequireMetaOrigin(path);
            if (requestedOrigin is not null && !string.Equals(requestedOrigin, origin, StringComparison.Ordinal))
            {
                throw new ArgumentException($"The log at '{Directory}' has origin '{origin}'; the options ask for '{requestedOrigin}'. The origin is fixed when a log is created.");
            }

            return origin;
        }

        if (File.Exists(Path.Combine(Directory, SegmentFile)))
        {
            throw new InvalidDataException($"'{Directory}' holds {SegmentFile} but not {MetaFile}; refusing to guess the log's origin.");
        }

        var created = requestedOrigin ?? "har.audit/" + Path.GetFileName(Directory.TrimEnd(Path.DirectorySeparatorChar));
        if (SignedCheckpoint.OriginProblem(created) is { } problem)
        {
            throw new ArgumentException(problem);
        }

        var json = JsonSerializer.SerializeToUtf8Bytes(new SortedDictionary<string, object>(StringComparer.Ordinal)
        {
            ["format"] = "har-audit-log/v1",
            ["origin"] = created,
            ["created"] = RecordText.FormatTimestamp(_time.GetUtcNow()),
        });
        DurableFile.WriteAtomic(path, json);
        return created;
    }

    /// <summary>The origin in a log's <c>log.json</c>; a file that names none is an <see cref="InvalidDataException"/> naming it.</summary>
    private static string RequireMetaOrigin(string path) =>
        ReadMetaOrigin(path) ?? throw new InvalidDataException($"'{path}' names no origin; expected {{\"format\": \"har-audit-log/v1\", \"origin\": \"…\"}}. Restore it from a backup (the origin is in every signed checkpoint note's first line).");

    /// <summary>
    /// The origin in a log's <c>log.json</c>, or <see langword="null"/> when it names none; a file that is not JSON is an
    /// <see cref="InvalidDataException"/> naming it (found by fuzzing the CLI: a damaged log.json ended every audit
    /// command in an unhandled JsonReaderException).
    /// </summary>
    internal static string? ReadMetaOrigin(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("origin", out var o) && o.ValueKind == JsonValueKind.String ? o.GetString() : null;
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON ({ex.Message}); expected {{\"format\": \"har-audit-log/v1\", \"origin\": \"…\"}}. Restore it from a backup (the origin is in every signed checkpoint note's first line).", ex);
        }
    }

    private static SafeFileHandle OpenLock(string directory)
    {
        try
        {
            System.IO.Directory.CreateDirectory(directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Unavailable(directory, "cannot be created", ex);
        }

        var path = Path.Combine(directory, LockFile);
        try
        {
            // A reader asking whether the log is live (IsLive: `har audit verify`, a read-only view that stopped short)
            // holds the lock for a moment; an owner starting at that instant waits it out rather than failing to open.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    return File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                }
                catch (IOException) when (attempt < LockAttempts && File.Exists(path))
                {
                    // Held: wait. Not held any more: the holder let go between the failed open and the probe (found
                    // failing 2 of 12 test runs on a loaded machine, as "cannot be opened for writing"), so try again
                    // at once; an error that is not the lock fails the same way every time and ends as before.
                    if (IsLockedByOther(path))
                    {
                        Thread.Sleep(LockRetryDelay);
                    }
                }
            }
        }
        catch (UnauthorizedAccessException ex)
        {
            throw Unavailable(directory, "cannot be opened for writing", ex);
        }
        catch (IOException ex) when (File.Exists(path) && IsLockedByOther(path))
        {
            throw new IOException($"The audit log at '{directory}' is open in another process (its lock file is held); a log has one owner at a time, which appends and signs. Readers in other processes open it with AuditLog.OpenReadOnly(directory) (or verify it with AuditLog.Verify(directory, key)); the har CLI's read commands (audit show, query, prove, export, verify) do that.", ex);
        }
        catch (IOException ex)
        {
            throw Unavailable(directory, "cannot be opened for writing", ex);
        }
    }

    /// <summary>How many times an open tries the lock file while another process holds it, <see cref="LockRetryDelay"/> apart (about three seconds in all).</summary>
    private const int LockAttempts = 31;

    private static readonly TimeSpan LockRetryDelay = TimeSpan.FromMilliseconds(100);

    private static bool IsLockedByOther(string path)
    {
        try
        {
            // Read access needs no write permission: if even this fails with a sharing error, the lock is held.
            using var probe = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.None);
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static AuditLogUnavailableException Unavailable(string directory, string what, Exception ex) =>
        new($"The audit log at '{directory}' {what}: {Messages.Sentence(ex.Message)} Appends are refused until the folder is writable again; fix the permissions, mount or free space (nothing was lost).", ex);

    private SafeFileHandle OpenSegment()
    {
        var path = Path.Combine(Directory, SegmentFile);
        var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        var length = RandomAccess.GetLength(handle);
        if (length < LogEnvelope.HeaderSize)
        {
            // New, or a crash while the header was being written: nothing was ever acknowledged.
            RandomAccess.SetLength(handle, 0);
            RandomAccess.Write(handle, LogEnvelope.Magic, 0);
            RandomAccess.FlushToDisk(handle);
            DurableFile.FsyncDirectory(Directory);
            return handle;
        }

        CheckHeader(handle, path, length);
        return handle;
    }

    /// <summary>Throws (disposing <paramref name="handle"/>) when the segment's first bytes are not the header, or not a prefix of it when it is shorter.</summary>
    private static void CheckHeader(SafeFileHandle handle, string path, long length)
    {
        Span<byte> header = stackalloc byte[LogEnvelope.HeaderSize];
        var n = RandomAccess.Read(handle, header[..(int)Math.Min(length, LogEnvelope.HeaderSize)], 0);
        if (!header[..n].SequenceEqual(LogEnvelope.Magic[..n]))
        {
            handle.Dispose();
            throw new InvalidDataException($"'{path}' is not a Har audit log segment (bad header).");
        }
    }

}
