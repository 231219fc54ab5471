using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
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
/// concurrent appends share one write and one fsync (group commit). One process owns a log at a time.
/// </summary>
public sealed class AuditLog : IDisposable, IAsyncDisposable
{
    internal const string SegmentFile = "entries.log";
    internal const string IndexFile = "entries.idx";
    internal const string StateFile = "state.json";
    internal const string MetaFile = "log.json";
    internal const string CheckpointFile = "checkpoint";
    internal const string VerifierKeyFile = "checkpoint.vkey";
    internal const string TreeDirectory = "tree";
    internal const string QuarantineDirectory = "quarantine";
    private const string LockFile = "lock";
    private const int MaxFramePayload = (64 << 20) + 4096;
    private const long MaxGroupBytes = 8 << 20;
    private const int ScratchLimit = 64 << 10;

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
    private readonly SemaphoreSlim _sealGate = new(1, 1);
    private readonly Thread _writer;
    private readonly ArrayBufferWriter<byte> _group = new(1 << 20);
    private readonly byte[] _lastLeaf = new byte[32];
    private PendingQueue _queue = new();
    private bool _stopping;
    private bool _disposed;
    private Exception? _fault;
    private long _size;
    private long _segmentLength;
    private long _sealedSize;
    private int _sealing;
    private Task _sealTask = Task.CompletedTask;

    private AuditLog(AuditLogOptions options, ILogger logger, TimeProvider time)
    {
        _options = options;
        _logger = logger;
        _time = time;
        Directory = Path.GetFullPath(options.Directory);
        System.IO.Directory.CreateDirectory(Directory);
        try
        {
            _lock = File.OpenHandle(Path.Combine(Directory, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new IOException($"The audit log at '{Directory}' is open in another process (its lock file is held); a log has one owner at a time.", ex);
        }

        try
        {
            Origin = LoadOrCreateMeta(options.Origin);
            _segment = OpenSegment();
            _nodes = new NodeStore(Path.Combine(Directory, TreeDirectory));
            _index = new EntryIndex(Path.Combine(Directory, IndexFile));
            _metrics = new AuditMetrics(options);
            Recovery = Recover();
            _metrics.Size(_size, _segmentLength);
        }
        catch
        {
            _segment?.Dispose();
            _nodes?.Dispose();
            _index?.Dispose();
            _lock.Dispose();
            throw;
        }

        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "har-audit-writer" };
        _writer.Start();
    }

    /// <summary>Gets the log directory (full path).</summary>
    public string Directory { get; }

    /// <summary>Gets the log's origin, the first line of its checkpoints.</summary>
    public string Origin { get; }

    /// <summary>Gets the number of acknowledged entries.</summary>
    public long Count => Volatile.Read(ref _size);

    /// <summary>Gets what opening the log found: entries re-scanned, and any bad tail truncated.</summary>
    public AuditRecoveryReport Recovery { get; }

    /// <summary>Gets the latest signed checkpoint written for this log, or <see langword="null"/>.</summary>
    public SignedCheckpoint? LatestCheckpoint => ReadCheckpoint(Directory);

    /// <summary>Opens (or creates) the log in <see cref="AuditLogOptions.Directory"/>, re-scanning the entries written after the last seal and truncating a torn or corrupt tail (kept in <c>quarantine/</c> and reported in <see cref="Recovery"/>).</summary>
    /// <param name="options">The options; validated.</param>
    /// <param name="logger">Receives recovery and fault messages.</param>
    /// <param name="timeProvider">The clock (fsync latency, quarantine file names).</param>
    /// <returns>The open log.</returns>
    /// <exception cref="IOException">Another process has the log open.</exception>
    /// <exception cref="InvalidDataException">The directory holds something that is not a Har audit log, or the segment lost acknowledged entries.</exception>
    public static AuditLog Open(AuditLogOptions options, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var validation = new AuditLogOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new ArgumentException($"Invalid audit log options: {validation.FailureMessage}", nameof(options));
        }

        return new AuditLog(options, logger ?? NullLogger.Instance, timeProvider ?? TimeProvider.System);
    }

    /// <summary>Opens (or creates) the log in <paramref name="directory"/> with default options.</summary>
    /// <param name="directory">The log directory.</param>
    /// <returns>The open log.</returns>
    public static AuditLog Open(string directory) => Open(new AuditLogOptions { Directory = directory });

    /// <summary>
    /// Verifies a log directory without opening it for writing (nothing is repaired): framing, CRC-32C,
    /// entry indexes, the hash chain, each record against its schema, the stored Merkle nodes and query
    /// index against the entries, and the Merkle root at the latest signed checkpoint's size against the
    /// signed root, with the checkpoint's signature.
    /// </summary>
    /// <param name="directory">The log directory.</param>
    /// <param name="verifierKey">The trusted verifier key; <see langword="null"/> uses the key stored beside the checkpoint (weaker: say so to your auditor).</param>
    /// <returns>The outcome, with the first bad index and why.</returns>
    public static AuditVerificationResult Verify(string directory, AuditVerifierKey? verifierKey) =>
        LogVerifier.Verify(Path.GetFullPath(directory), null, verifierKey);

    /// <summary>Verifies this log (see <see cref="Verify(string, AuditVerifierKey?)"/>) up to the acknowledged entries, with <see cref="AuditLogOptions.VerifierKey"/> if set.</summary>
    /// <returns>The outcome.</returns>
    public AuditVerificationResult Verify()
    {
        var key = _options.VerifierKey is null ? null : AuditVerifierKey.Parse(_options.VerifierKey);
        long limit;
        lock (_commitLock)
        {
            limit = _segmentLength;
        }

        return LogVerifier.Verify(Directory, limit, key);
    }

    /// <summary>
    /// Appends a record. The record is validated against its schema and serialised canonically on the
    /// caller's thread; the returned task completes after the entry is written and fsynced, together
    /// with every other append that arrived meanwhile (group commit).
    /// </summary>
    /// <param name="record">The record.</param>
    /// <param name="cancellationToken">Checked before the record is queued; a queued append is not abandoned.</param>
    /// <returns>The entry's index and leaf hash.</returns>
    /// <exception cref="AuditRecordException">The record does not match its schema.</exception>
    /// <exception cref="InvalidOperationException">The log is faulted by an earlier I/O error and must be reopened.</exception>
    public Task<AuditAppendResult> AppendAsync(AuditRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        cancellationToken.ThrowIfCancellationRequested();

        // Canonicalised once, into this thread's scratch buffer, then copied into the shared queue.
        var buffer = t_scratch ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        try
        {
            record.WriteValidated(buffer);
            if (buffer.WrittenCount > _options.MaxRecordBytes)
            {
                throw new ArgumentException($"The canonical record has {buffer.WrittenCount} bytes; the log accepts at most {_options.MaxRecordBytes} (AuditLogOptions.MaxRecordBytes).", nameof(record));
            }

            var row = IndexRow.For(0, 0, record);
            var completion = new TaskCompletionSource<AuditAppendResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_stopping, this);
                if (_fault is not null)
                {
                    throw new InvalidOperationException($"The audit log at '{Directory}' is faulted by an earlier write or fsync failure and accepts no appends; reopen it.", _fault);
                }

                _queue.Add(buffer.WrittenSpan, row, completion);
                if (_queue.Count == 1)
                {
                    Monitor.Pulse(_gate);
                }
            }

            return completion.Task;
        }
        finally
        {
            if (buffer.Capacity > ScratchLimit)
            {
                t_scratch = null;
            }
        }
    }

    /// <summary>Reads entry <paramref name="index"/>, checking its CRC and index.</summary>
    /// <param name="index">The entry index.</param>
    /// <returns>The entry.</returns>
    public AuditEntry Get(long index)
    {
        var count = Count;
        if (index < 0 || index >= count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Entry index must be in [0, {count}).");
        }

        return ReadEntry(index, _index.Read(index));
    }

    /// <summary>Queries the log by event type, entity, actor, record type and time range, one page at a time, in index order.</summary>
    /// <param name="query">The filters and page.</param>
    /// <returns>The page.</returns>
    public AuditPage Query(AuditQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(query.PageSize, 1, nameof(query));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(query.PageSize, 1000, nameof(query));
        long start = 0;
        if (query.PageToken is not null && (!long.TryParse(query.PageToken, NumberStyles.None, CultureInfo.InvariantCulture, out start) || start < 0))
        {
            throw new FormatException($"Page token '{query.PageToken}' is not one this log issued; pass null for the first page or the previous page's NextPageToken.");
        }

        var evt = query.EventType is null ? 0u : IndexRow.HashText(query.EventType);
        var etype = query.EntityType is null ? 0u : IndexRow.HashText(query.EntityType);
        var eid = query.EntityId is null ? 0u : IndexRow.HashText(query.EntityId);
        var actor = query.Actor is null ? 0u : IndexRow.HashText(query.Actor);
        var from = query.From?.UtcTicks ?? long.MinValue;
        var to = query.To?.UtcTicks ?? long.MaxValue;
        var count = Count;
        var results = new List<AuditEntry>(Math.Min(query.PageSize, 64));
        var rows = new byte[4096 * IndexRow.Size];
        var i = start;
        while (i < count)
        {
            var n = _index.ReadRows(i, rows.AsSpan(0, (int)Math.Min(4096, count - i) * IndexRow.Size));
            if (n == 0)
            {
                break;
            }

            for (var r = 0; r < n; r++, i++)
            {
                var row = IndexRow.Read(rows.AsSpan(r * IndexRow.Size, IndexRow.Size));
                if ((query.Kind is { } k && row.Kind != k) || row.Ticks < from || row.Ticks >= to
                    || (query.EventType is not null && row.EventType != evt) || (query.EntityType is not null && row.EntityType != etype)
                    || (query.EntityId is not null && row.EntityId != eid) || (query.Actor is not null && row.Actor != actor))
                {
                    continue;
                }

                var entry = ReadEntry(i, row);
                if ((query.EventType is null || entry.EventType == query.EventType) && (query.EntityType is null || entry.EntityType == query.EntityType)
                    && (query.EntityId is null || entry.EntityId == query.EntityId) && (query.Actor is null || entry.Actor == query.Actor))
                {
                    results.Add(entry);
                    if (results.Count == query.PageSize)
                    {
                        var next = i + 1;
                        return new AuditPage(results, next < count ? next.ToString(CultureInfo.InvariantCulture) : null);
                    }
                }
            }
        }

        return new AuditPage(results, null);
    }

    /// <summary>The RFC 9162 root hash of the first <paramref name="treeSize"/> entries.</summary>
    /// <param name="treeSize">The tree size (0 to <see cref="Count"/>).</param>
    /// <returns>The 32-byte root.</returns>
    public ReadOnlyMemory<byte> GetRootHash(long treeSize)
    {
        CheckSize(treeSize, nameof(treeSize));
        return MerkleProofBuilder.RootHash(_nodes, treeSize);
    }

    /// <summary>An inclusion proof for entry <paramref name="index"/> in the tree of <paramref name="treeSize"/> entries (default: all).</summary>
    /// <param name="index">The entry index.</param>
    /// <param name="treeSize">The tree size; <see langword="null"/> for <see cref="Count"/>.</param>
    /// <returns>The proof.</returns>
    public InclusionProof GetInclusionProof(long index, long? treeSize = null)
    {
        var size = treeSize ?? Count;
        CheckSize(size, nameof(treeSize));
        if (index < 0 || index >= size)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Entry index must be in [0, {size}) for a tree of {size} entries.");
        }

        var leaf = new byte[32];
        _nodes.ReadNode(0, index, leaf);
        var path = MerkleProofBuilder.Inclusion(_nodes, index, size);
        return new InclusionProof(index, size, leaf, MerkleProofBuilder.RootHash(_nodes, size), path);
    }

    /// <summary>A consistency proof that the tree of <paramref name="fromSize"/> entries is a prefix of the tree of <paramref name="toSize"/> entries (default: all).</summary>
    /// <param name="fromSize">The older size.</param>
    /// <param name="toSize">The newer size; <see langword="null"/> for <see cref="Count"/>.</param>
    /// <returns>The proof.</returns>
    public ConsistencyProof GetConsistencyProof(long fromSize, long? toSize = null)
    {
        var size = toSize ?? Count;
        CheckSize(size, nameof(toSize));
        if (fromSize < 1 || fromSize > size)
        {
            throw new ArgumentOutOfRangeException(nameof(fromSize), fromSize, $"The older size must be in [1, {size}]; every tree extends the empty tree, so a proof from size 0 proves nothing.");
        }

        var path = MerkleProofBuilder.Consistency(_nodes, fromSize, size);
        return new ConsistencyProof(fromSize, size, MerkleProofBuilder.RootHash(_nodes, fromSize), MerkleProofBuilder.RootHash(_nodes, size), path);
    }

    /// <summary>Signs a checkpoint of the current tree with the key at <see cref="AuditLogOptions.SigningKeyPath"/>.</summary>
    /// <returns>The signed checkpoint (also written to the log directory).</returns>
    /// <exception cref="InvalidOperationException">No signing key path is configured.</exception>
    public SignedCheckpoint CreateCheckpoint()
    {
        if (string.IsNullOrEmpty(_options.SigningKeyPath))
        {
            throw new InvalidOperationException("No checkpoint signing key is configured: set AuditLogOptions.SigningKeyPath to a key file created with AuditSigningKey.Generate(...).Save(path) (or `har audit keygen`).");
        }

        using var key = AuditSigningKey.Load(_options.SigningKeyPath);
        return CreateCheckpoint(key);
    }

    /// <summary>
    /// Signs a checkpoint (origin, size, root) of every acknowledged entry, after checking that the log
    /// still matches the previous checkpoint, seals the derived files, and writes the note to
    /// <c>checkpoint</c> (and the verifier key to <c>checkpoint.vkey</c>) atomically.
    /// </summary>
    /// <param name="key">The signing key.</param>
    /// <returns>The signed checkpoint.</returns>
    /// <exception cref="InvalidDataException">The log no longer matches its previous checkpoint.</exception>
    public SignedCheckpoint CreateCheckpoint(AuditSigningKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        long size, segment;
        lock (_commitLock)
        {
            size = _size;
            segment = _segmentLength;
        }

        var previous = LatestCheckpoint;
        if (previous is not null)
        {
            if (previous.TreeSize > size)
            {
                throw new InvalidDataException($"The previous checkpoint commits to {previous.TreeSize} entries but the log holds {size}: entries were lost. Run verify.");
            }

            if (!MerkleProofBuilder.RootHash(_nodes, previous.TreeSize).AsSpan().SequenceEqual(previous.RootHash.Span))
            {
                throw new InvalidDataException($"The log no longer matches its previous checkpoint at size {previous.TreeSize}: history was rewritten. Run verify.");
            }
        }

        var root = MerkleProofBuilder.RootHash(_nodes, size);
        var checkpoint = SignedCheckpoint.Create(Origin, size, root, key);
        Seal(size, segment);
        DurableFile.WriteAtomic(Path.Combine(Directory, VerifierKeyFile), Encoding.UTF8.GetBytes(key.VerifierKey + "\n"));
        DurableFile.WriteAtomic(Path.Combine(Directory, CheckpointFile), Encoding.UTF8.GetBytes(checkpoint.NoteText));
        Log.Checkpointed(_logger, Directory, size, key.Name);
        return checkpoint;
    }

    /// <summary>A self-contained proof that entry <paramref name="index"/> is covered by the latest signed checkpoint; verifies offline with <see cref="AuditProofBundle.Verify"/>.</summary>
    /// <param name="index">The entry index.</param>
    /// <returns>The bundle.</returns>
    /// <exception cref="InvalidOperationException">There is no signed checkpoint yet.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The entry is newer than the latest checkpoint.</exception>
    public AuditProofBundle ExportProof(long index)
    {
        var checkpoint = LatestCheckpoint ?? throw new InvalidOperationException("The log has no signed checkpoint yet; create one (CreateCheckpoint, or `har audit checkpoint`) before exporting proofs.");
        if (index < 0 || index >= checkpoint.TreeSize)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Entry {index} is not covered by the latest signed checkpoint (size {checkpoint.TreeSize}); create a newer checkpoint first.");
        }

        if (!MerkleProofBuilder.RootHash(_nodes, checkpoint.TreeSize).AsSpan().SequenceEqual(checkpoint.RootHash.Span))
        {
            throw new InvalidDataException($"The log does not match its signed checkpoint at size {checkpoint.TreeSize}. Run verify.");
        }

        var entry = Get(index);
        return new AuditProofBundle(entry.Payload, index, MerkleProofBuilder.Inclusion(_nodes, index, checkpoint.TreeSize), checkpoint);
    }

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

        _writer.Join();
        try
        {
            _sealTask.GetAwaiter().GetResult();
        }
        catch (IOException)
        {
            // logged by the seal itself
        }

        if (_fault is null)
        {
            Seal(_size, _segmentLength);
        }

        _segment.Dispose();
        _nodes.Dispose();
        _index.Dispose();
        _sealGate.Dispose();
        _lock.Dispose();
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
            throw new ArgumentOutOfRangeException(name, size, $"Tree size must be in [0, {count}] (the log holds {count} entries).");
        }
    }

    private AuditEntry ReadEntry(long index, IndexRow row)
    {
        var frame = new byte[row.FrameLength];
        if (RandomAccess.Read(_segment, frame, row.Offset) != frame.Length)
        {
            throw new InvalidDataException($"Entry {index}: the segment ends before the frame at offset {row.Offset}.");
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(frame);
        var payload = frame.AsSpan(LogEnvelope.FrameOverhead);
        if (length != payload.Length || BinaryPrimitives.ReadUInt32LittleEndian(frame.AsSpan(4)) != LogEnvelope.FrameCrc(frame.AsSpan(0, 4), payload))
        {
            throw new InvalidDataException($"Entry {index}: frame at offset {row.Offset} fails its length or CRC-32C check. Run verify.");
        }

        var parsed = LogEnvelope.TryParse(payload, out var problem) ?? throw new InvalidDataException($"Entry {index}: {problem}.");
        if (parsed.Index != index)
        {
            throw new InvalidDataException($"Entry {index}: the stored entry says index {parsed.Index}. Run verify.");
        }

        var bytes = payload.ToArray();
        return new AuditEntry(index, parsed.Record, parsed.PreviousHash, bytes, MerkleHasher.Leaf(bytes));
    }

    private string LoadOrCreateMeta(string? requestedOrigin)
    {
        var path = Path.Combine(Directory, MetaFile);
        if (File.Exists(path))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var origin = doc.RootElement.GetProperty("origin").GetString() ?? throw new InvalidDataException($"{path} has no origin.");
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
        if (created.Length == 0 || created.Contains('\n', StringComparison.Ordinal) || created.Trim() != created)
        {
            throw new ArgumentException($"Origin '{created}' must be one non-empty line without surrounding whitespace.");
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

        Span<byte> header = stackalloc byte[LogEnvelope.HeaderSize];
        RandomAccess.Read(handle, header, 0);
        if (!header.SequenceEqual(LogEnvelope.Magic))
        {
            handle.Dispose();
            throw new InvalidDataException($"'{path}' is not a Har audit log segment (bad header).");
        }

        return handle;
    }

    private AuditRecoveryReport Recover()
    {
        var segmentLength = RandomAccess.GetLength(_segment);
        var (sealedSize, sealedBytes, sealProblem) = ReadSeal(segmentLength);
        var rebuilt = false;
        if (sealProblem is not null)
        {
            if (File.Exists(Path.Combine(Directory, StateFile)))
            {
                Log.SealMismatch(_logger, Directory, sealProblem);
            }

            rebuilt = sealProblem != "no seal";
            sealedSize = 0;
            sealedBytes = LogEnvelope.HeaderSize;
        }

        _nodes.Reset(sealedSize);
        _index.Reset(sealedSize);
        if (sealedSize > 0)
        {
            _nodes.ReadNode(0, sealedSize - 1, _lastLeaf);
        }

        _size = sealedSize;
        _sealedSize = sealedSize;
        var offset = sealedBytes;
        string? reason = null;
        using (var stream = new FileStream(Path.Combine(Directory, SegmentFile), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20, FileOptions.SequentialScan))
        {
            stream.Position = offset;
            var header = new byte[LogEnvelope.FrameOverhead];
            var payload = new byte[4096];
            while (offset < segmentLength)
            {
                var remaining = segmentLength - offset;
                if (remaining < LogEnvelope.FrameOverhead)
                {
                    reason = $"incomplete frame header ({remaining} bytes) at the end";
                    break;
                }

                stream.ReadExactly(header);
                var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
                if (length == 0 || length > MaxFramePayload || length > remaining - LogEnvelope.FrameOverhead)
                {
                    reason = length > remaining - LogEnvelope.FrameOverhead
                        ? $"frame length {length} runs past the end of the segment ({remaining - LogEnvelope.FrameOverhead} bytes left)"
                        : $"impossible frame length {length}";
                    break;
                }

                if (payload.Length < length)
                {
                    payload = new byte[Math.Max(length, payload.Length * 2)];
                }

                var span = payload.AsSpan(0, (int)length);
                stream.ReadExactly(span);
                if (BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)) != LogEnvelope.FrameCrc(header.AsSpan(0, 4), span))
                {
                    reason = "CRC-32C mismatch";
                    break;
                }

                var entry = LogEnvelope.TryParse(span, out var problem);
                if (entry is null)
                {
                    reason = problem;
                    break;
                }

                if (entry.Index != _size)
                {
                    reason = $"entry says index {entry.Index}, expected {_size}";
                    break;
                }

                if (!entry.PreviousHash.AsSpan().SequenceEqual(_lastLeaf))
                {
                    reason = "chain link broken (prev is not the previous entry's leaf hash)";
                    break;
                }

                MerkleHasher.Leaf(span, _lastLeaf);
                _nodes.Append(_lastLeaf);
                _index.Append(IndexRow.For(offset, (int)length + LogEnvelope.FrameOverhead, entry.Record));
                _size++;
                offset += LogEnvelope.FrameOverhead + length;
                if ((_size & 4095) == 0)
                {
                    _nodes.WritePending();
                    _index.WritePending();
                }
            }
        }

        _nodes.WritePending();
        _index.WritePending();
        string? quarantine = null;
        var truncated = segmentLength - offset;
        if (reason is not null)
        {
            quarantine = Quarantine(offset, segmentLength);
            RandomAccess.SetLength(_segment, offset);
            RandomAccess.FlushToDisk(_segment);
            Log.TailTruncated(_logger, Directory, truncated, offset, reason, quarantine);
        }

        _segmentLength = offset;
        var scanned = _size - sealedSize;
        if (scanned > 0 || reason is not null || rebuilt)
        {
            Seal(_size, _segmentLength);
        }

        Log.Opened(_logger, Directory, _size, sealedSize, scanned);
        return new AuditRecoveryReport
        {
            SealedEntries = sealedSize,
            ScannedEntries = scanned,
            Entries = _size,
            TailTruncated = reason is not null,
            TruncatedAtOffset = reason is null ? null : offset,
            TruncatedBytes = reason is null ? 0 : truncated,
            Reason = reason,
            QuarantinePath = quarantine,
            RebuiltFromStart = rebuilt,
        };
    }

    private (long Size, long Bytes, string? Problem) ReadSeal(long segmentLength)
    {
        var path = Path.Combine(Directory, StateFile);
        if (!File.Exists(path))
        {
            return (0, LogEnvelope.HeaderSize, "no seal");
        }

        long size, bytes;
        byte[] root;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            size = doc.RootElement.GetProperty("size").GetInt64();
            bytes = doc.RootElement.GetProperty("segment_bytes").GetInt64();
            root = Convert.FromHexString(doc.RootElement.GetProperty("root").GetString()!);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or FormatException or InvalidOperationException)
        {
            return (0, 0, $"unreadable {StateFile}: {ex.Message}");
        }

        if (bytes > segmentLength)
        {
            throw new InvalidDataException($"The segment of '{Directory}' has {segmentLength} bytes but its seal records {bytes} bytes of acknowledged entries: the segment was truncated outside the log. Restore it from a backup; the log will not open over lost entries.");
        }

        if (size < 0 || bytes < LogEnvelope.HeaderSize || !_nodes.Covers(size) || _index.FileRows < size)
        {
            return (0, 0, $"the Merkle node or index files hold fewer than the {size} sealed entries");
        }

        _nodes.Reset(size);
        if (!MerkleProofBuilder.RootHash(_nodes, size).AsSpan().SequenceEqual(root))
        {
            return (0, 0, $"the stored Merkle nodes do not produce the sealed root at size {size}");
        }

        return (size, bytes, null);
    }

    private string Quarantine(long from, long to)
    {
        var dir = Path.Combine(Directory, QuarantineDirectory);
        System.IO.Directory.CreateDirectory(dir);
        var name = string.Create(CultureInfo.InvariantCulture, $"tail-{from}-{_time.GetUtcNow().UtcDateTime:yyyyMMdd'T'HHmmssfff'Z'}.bin");
        var path = Path.Combine(dir, name);
        var buffer = new byte[(int)Math.Min(to - from, 1 << 20)];
        using (var output = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write))
        {
            for (var pos = from; pos < to;)
            {
                var n = RandomAccess.Read(_segment, buffer.AsSpan(0, (int)Math.Min(buffer.Length, to - pos)), pos);
                if (n == 0)
                {
                    break;
                }

                RandomAccess.Write(output, buffer.AsSpan(0, n), pos - from);
                pos += n;
            }

            RandomAccess.FlushToDisk(output);
        }

        DurableFile.FsyncDirectory(dir);
        DurableFile.FsyncDirectory(Directory);
        return path;
    }

    /// <summary>fsyncs the derived files up to <paramref name="size"/> entries and records a recovery seal (temp file + rename + directory fsync).</summary>
    private void Seal(long size, long segmentBytes)
    {
        _sealGate.Wait();
        try
        {
            if (size < Volatile.Read(ref _sealedSize))
            {
                return;
            }

            _nodes.Flush(size);
            _index.Flush();
            var root = MerkleProofBuilder.RootHash(_nodes, size);
            var json = JsonSerializer.SerializeToUtf8Bytes(new SortedDictionary<string, object>(StringComparer.Ordinal)
            {
                ["root"] = Convert.ToHexStringLower(root),
                ["segment_bytes"] = segmentBytes,
                ["size"] = size,
            });
            DurableFile.WriteAtomic(Path.Combine(Directory, StateFile), json);
            Volatile.Write(ref _sealedSize, size);
        }
        finally
        {
            _sealGate.Release();
        }
    }

    private void WriterLoop()
    {
        var batch = new PendingQueue();
        while (true)
        {
            lock (_gate)
            {
                while (_queue.Count == 0 && !_stopping)
                {
                    Monitor.Wait(_gate);
                }

                if (_queue.Count == 0)
                {
                    return;
                }

                (_queue, batch) = (batch, _queue);
            }

            try
            {
                // One write + fsync per group of at most MaxGroupCommitRecords appends and about 8 MiB.
                var start = 0;
                while (start < batch.Count)
                {
                    var end = start;
                    long bytes = 0;
                    while (end < batch.Count && end - start < _options.MaxGroupCommitRecords && (end == start || bytes + batch.Items[end].RecordLength <= MaxGroupBytes))
                    {
                        bytes += batch.Items[end].RecordLength;
                        end++;
                    }

                    Commit(batch, start, end);
                    start = end;
                }
            }
            catch (Exception ex)
            {
                Fail(batch, ex);
                return;
            }

            batch.Clear();
            MaybeSealInBackground();
        }
    }

    private void Commit(PendingQueue batch, int start, int end)
    {
        var items = batch.Items;
        long first;
        lock (_commitLock)
        {
            _group.ResetWrittenCount();
            first = _size;
            var index = first;
            for (var i = start; i < end; i++, index++)
            {
                ref var p = ref items[i];
                var frameOffset = _group.WrittenCount;
                var (payloadStart, payloadLength) = LogEnvelope.WriteFrame(_group, index, p.Row.Kind, _lastLeaf, batch.Record(i));

                // The leaf hash is the appender's result; it is hashed straight into the array returned.
                var leaf = new byte[MerkleHasher.HashSize];
                MerkleHasher.Leaf(_group.WrittenSpan.Slice(payloadStart, payloadLength), leaf);
                leaf.CopyTo(_lastLeaf, 0);
                p.LeafHash = leaf;
                p.Row = p.Row with { Offset = _segmentLength + frameOffset, FrameLength = payloadLength + LogEnvelope.FrameOverhead };
            }

            RandomAccess.Write(_segment, _group.WrittenSpan, _segmentLength);
            var t0 = _time.GetTimestamp();
            RandomAccess.FlushToDisk(_segment);
            var fsync = _time.GetElapsedTime(t0).TotalSeconds;

            for (var i = start; i < end; i++)
            {
                _nodes.Append(items[i].LeafHash);
                _index.Append(items[i].Row);
            }

            _nodes.WritePending();
            _index.WritePending();
            _segmentLength += _group.WrittenCount;
            Volatile.Write(ref _size, index);
            _metrics.Committed(end - start, fsync, index, _segmentLength);
        }

        for (var i = start; i < end; i++)
        {
            ref var p = ref items[i];
            p.Completion.TrySetResult(new AuditAppendResult(first + (i - start), p.LeafHash));
        }
    }

    private void Fail(PendingQueue batch, Exception ex)
    {
        PendingQueue queued;
        lock (_gate)
        {
            _fault = ex;
            queued = _queue;
            _queue = new PendingQueue();
        }

        Log.Faulted(_logger, Directory, ex);
        var failure = new IOException($"The audit log at '{Directory}' failed to write or fsync; the append is not durable and the log is faulted (reopen it).", ex);
        foreach (var pending in (ReadOnlySpan<PendingQueue>)[batch, queued])
        {
            for (var i = 0; i < pending.Count; i++)
            {
                if (pending.Items[i].Completion.TrySetException(failure))
                {
                    _metrics.Failed(1);
                }
            }
        }

        // Appends that arrive after the fault are refused in AppendAsync; keep draining until disposal.
        lock (_gate)
        {
            while (!_stopping)
            {
                Monitor.Wait(_gate);
            }
        }
    }

    private void MaybeSealInBackground()
    {
        var size = _size;
        if (size - Volatile.Read(ref _sealedSize) < _options.SealInterval || Interlocked.CompareExchange(ref _sealing, 1, 0) != 0)
        {
            return;
        }

        var segment = _segmentLength;
        _sealTask = Task.Run(() =>
        {
            try
            {
                Seal(size, segment);
            }
            catch (IOException ex)
            {
                Log.SealFailed(_logger, Directory, ex);
            }
            finally
            {
                Volatile.Write(ref _sealing, 0);
            }
        });
    }

    /// <summary>One queued append; the record's canonical bytes are in the queue's shared buffer.</summary>
    private struct PendingAppend
    {
        public int RecordOffset;
        public int RecordLength;
        public IndexRow Row;
        public TaskCompletionSource<AuditAppendResult> Completion;
        public byte[] LeafHash;
    }

    /// <summary>Appends waiting for the writer: one array of entries and one byte buffer for all their records, reused from group to group (the writer swaps two queues).</summary>
    private sealed class PendingQueue
    {
        private readonly ArrayBufferWriter<byte> _bytes = new(256 << 10);

        public PendingAppend[] Items { get; private set; } = new PendingAppend[1024];

        public int Count { get; private set; }

        public ReadOnlySpan<byte> Record(int i) => _bytes.WrittenSpan.Slice(Items[i].RecordOffset, Items[i].RecordLength);

        public void Add(ReadOnlySpan<byte> record, IndexRow row, TaskCompletionSource<AuditAppendResult> completion)
        {
            if (Count == Items.Length)
            {
                var items = Items;
                Array.Resize(ref items, items.Length * 2);
                Items = items;
            }

            var offset = _bytes.WrittenCount;
            record.CopyTo(_bytes.GetSpan(record.Length));
            _bytes.Advance(record.Length);
            Items[Count++] = new PendingAppend { RecordOffset = offset, RecordLength = record.Length, Row = row, Completion = completion, LeafHash = [] };
        }

        public void Clear()
        {
            Items.AsSpan(0, Count).Clear();
            Count = 0;
            _bytes.ResetWrittenCount();
        }
    }
}
