using System.Globalization;
using Har.Audit.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Har.Audit;

public sealed partial class AuditLog
{
    private const string ReadOnlyRefusal = "it was opened read-only (AuditLog.OpenReadOnly): it reads a snapshot and never writes; appends, checkpoints and repairs are made by the process that owns the log (AuditLog.Open)";

    /// <summary>Read-only open: see <see cref="OpenReadOnly"/>. No lock, writer thread, metrics or seal; nothing is created or written.</summary>
    private AuditLog(string directory)
    {
        _options = new AuditLogOptions { Directory = directory, EnableMetrics = false };
        _logger = NullLogger.Instance;
        _time = TimeProvider.System;
        _readOnly = true;
        _state = (int)AuditLogState.Unavailable;
        _lock = null!;
        _writer = null!;
        _metrics = null!;
        Directory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        if (!System.IO.Directory.Exists(Directory))
        {
            throw new DirectoryNotFoundException($"No audit log at '{Directory}': the folder does not exist (a read-only open creates nothing).");
        }

        var segmentPath = Path.Combine(Directory, SegmentFile);
        if (!File.Exists(segmentPath))
        {
            throw new InvalidDataException($"'{Directory}' holds no Har audit log: {SegmentFile} is missing (a read-only open creates nothing).");
        }

        var metaPath = Path.Combine(Directory, MetaFile);
        Origin = File.Exists(metaPath) ? RequireMetaOrigin(metaPath) : throw new InvalidDataException($"'{Directory}' holds {SegmentFile} but not {MetaFile}; refusing to guess the log's origin.");

        // The checkpoint first, then (in Recover) the seal, then the segment's length: a writer signs only sealed entries,
        // and seals only written ones, so on a healthy log the view covers the checkpoint.
        try
        {
            _checkpointNote = File.ReadAllText(Path.Combine(Directory, CheckpointFile), System.Text.Encoding.UTF8);
        }
        catch (FileNotFoundException)
        {
            _checkpointNote = null;
        }

        // A share mode that does not conflict with the owner's (on Unix .NET takes a shared flock for both).
        _segment = File.OpenHandle(segmentPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        try
        {
            CheckHeader(_segment, segmentPath, RandomAccess.GetLength(_segment));
            _nodes = new NodeStore(Path.Combine(Directory, TreeDirectory), readOnly: true);
            _index = new EntryIndex(Path.Combine(Directory, IndexFile), readOnly: true);
            Recovery = Recover(null);
        }
        catch
        {
            _segment.Dispose();
            _nodes?.Dispose();
            _index?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Gets, for a log opened with <see cref="OpenReadOnly"/>, why the view ends before the end of the segment or below
    /// the latest signed checkpoint: the entry and segment offset it stopped at and why (a torn or unfinished last write,
    /// a damaged entry, missing entries); <see langword="null"/> when the view holds every complete entry, and for a log
    /// opened for writing (which drops a torn tail, or refuses to open).
    /// </summary>
    /// <value>The reason, one sentence, or <see langword="null"/>.</value>
    /// <remarks>A log another process is appending to often ends in a group still being written: that is not damage. <see cref="Verify()"/> tells.</remarks>
    public string? ReadOnlyStopReason => Recovery.StopReason;

    /// <summary>
    /// Opens the file log in <paramref name="directory"/> for reading only, while another process may own it and append:
    /// the view is a consistent snapshot of the entries present when it is opened, up to the last complete, valid frame.
    /// Nothing in the folder is created, locked, written, truncated, renamed or deleted, whatever state the log is in.
    /// </summary>
    /// <remarks>
    /// <para>
    /// The entries up to the last recovery seal are read with their stored Merkle nodes and query index once the seal's root
    /// checks out; the entries after it are re-scanned (framing, CRC-32C, index, chain, schema) and their nodes and index rows
    /// computed in memory (about 100 bytes an entry), because an owner's unsealed derived files may be partial. Where the view
    /// stops short (a torn tail, a damaged entry, the owner's group in flight) is in <see cref="ReadOnlyStopReason"/>; the
    /// view never throws <see cref="AuditLogCorruptedException"/> for damage it can step around, and reads past it are out of range.
    /// </para>
    /// <para>
    /// <see cref="Count"/>, <see cref="Get"/>, <see cref="Query"/>, <see cref="GetConsistencyProof"/>,
    /// <see cref="ExportProof"/>, <see cref="LatestCheckpoint"/> and <see cref="ExportTo"/> work on the snapshot (open
    /// again to see newer entries); <see cref="Verify()"/> verifies the folder as it is now. <see cref="AppendAsync"/> and
    /// <see cref="CreateCheckpoint"/> throw <see cref="InvalidOperationException"/>, and <see cref="State"/> is
    /// <see cref="AuditLogState.Unavailable"/>. Any number of views, in any processes, may be open beside the owner.
    /// </para>
    /// <para>
    /// A method of its own rather than an <see cref="AuditLogOptions"/> flag: the options configure the owner (group commit,
    /// seals, retries, signing, metrics, the checkpoint signer that <c>AddHarAudit</c> runs), none of which a reader has. A log in
    /// PostgreSQL has no single owner: every process opens it with <see cref="Open(AuditLogOptions, Microsoft.Extensions.Logging.ILogger?, TimeProvider?)"/>, and
    /// <see cref="VerifyDatabase"/> reads it without writing.
    /// </para>
    /// </remarks>
    /// <param name="directory">The log directory.</param>
    /// <returns>The read-only view; dispose it to close its files.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">The folder holds no Har audit log (<c>entries.log</c> or <c>log.json</c> is missing or not one).</exception>
    public static AuditLog OpenReadOnly(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        return new AuditLog(directory);
    }

    private void ThrowIfReadOnly()
    {
        if (_readOnly)
        {
            throw new InvalidOperationException($"The audit log at '{Directory}' cannot be changed: {ReadOnlyRefusal}.");
        }
    }

    /// <summary>What a read-only open found: the entries it holds, and where and why it stopped short, without changing anything.</summary>
    private AuditRecoveryReport ReadOnlyReport(long sealedSize, long offset, long segmentLength, string? reason, long anchored, bool rebuilt)
    {
        _segmentLength = offset;
        string? stop = null;
        if (reason is not null)
        {
            var (validAfter, firstValidAfter) = LogEnvelope.CountValidFrames(_segment, offset + 1, segmentLength);
            stop = string.Create(CultureInfo.InvariantCulture, $"the audit log at '{Directory}' is readable up to entry {_size}: at segment offset {offset} ({Messages.Bytes(segmentLength - offset)} not read) {reason}")
                + (validAfter > 0
                    ? string.Create(CultureInfo.InvariantCulture, $"; {Messages.Count(validAfter, "valid frame follows", "valid frames follow")} it (the first at offset {firstValidAfter}), so an entry is damaged")
                    : "; nothing valid follows it (a torn or unfinished last write)");
        }

        if (_size < anchored)
        {
            stop = (stop ?? string.Create(CultureInfo.InvariantCulture, $"the audit log at '{Directory}' is readable up to entry {_size}, the end of its segment"))
                + string.Create(CultureInfo.InvariantCulture, $"; its latest signed checkpoint or recovery seal covers {Messages.Entries(anchored)}, so {Messages.Range(_size, anchored)} missing or damaged");
        }

        return new AuditRecoveryReport
        {
            SealedEntries = sealedSize,
            ScannedEntries = _size - sealedSize,
            Entries = _size,
            RebuiltFromStart = rebuilt,
            StoppedAtOffset = stop is null ? null : offset,
            StopReason = stop,
        };
    }
}
