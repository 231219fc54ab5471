using System.Globalization;
using Har.Audit.Merkle;
using Har.Audit.Storage;

namespace Har.Audit;

public sealed partial class AuditLog
{
    /// <summary>Reads entry <paramref name="index"/>, checking its CRC and index.</summary>
    /// <param name="index">The entry index.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="AuditLogCorruptedException">The stored entry is damaged (its CRC, framing or index does not check).</exception>
    /// <exception cref="ObjectDisposedException">The log was disposed.</exception>
    public AuditEntry Get(long index)
    {
        ThrowIfDisposed();
        if (_pg is not null)
        {
            return _pg.Reading(s => s.Get(index));
        }

        var count = Count;
        if (index < 0 || index >= count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Entry index must be in [0, {count}).");
        }

        return ReadEntry(index, _index.Read(index));
    }

    /// <summary>Queries the log by event type, entity, actor, record type, severity and time range, one page at a time, in index order.</summary>
    /// <param name="query">The filters and page.</param>
    /// <returns>The page.</returns>
    /// <exception cref="ObjectDisposedException">The log was disposed.</exception>
    public AuditPage Query(AuditQuery query)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(query.PageSize, 1, nameof(query));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(query.PageSize, 1000, nameof(query));
        long start = 0;
        if (query.PageToken is not null && (!long.TryParse(query.PageToken, NumberStyles.None, CultureInfo.InvariantCulture, out start) || start < 0))
        {
            throw new FormatException($"Page token '{query.PageToken}' is not one this log issued; pass null for the first page or the previous page's NextPageToken.");
        }

        if (_pg is not null)
        {
            return _pg.Reading(s => s.Query(query));
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
                    && (query.EntityId is null || entry.EntityId == query.EntityId) && (query.Actor is null || entry.Actor == query.Actor)
                    && SeverityMatches(entry.Record, query))
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

    internal static bool SeverityMatches(AuditRecord record, AuditQuery query) =>
        (query.Severity is null && query.MinimumSeverity is null)
        || (record is AuditEvent e && (query.Severity is not { } exact || e.Severity == exact) && (query.MinimumSeverity is not { } minimum || e.Severity >= minimum));

    /// <summary>The RFC 9162 root hash of the first <paramref name="treeSize"/> entries.</summary>
    /// <param name="treeSize">The tree size (0 to <see cref="Count"/>).</param>
    /// <returns>The 32-byte root.</returns>
    internal ReadOnlyMemory<byte> GetRootHash(long treeSize)
    {
        if (_pg is not null)
        {
            return _pg.Reading(s => s.GetRootHash(treeSize));
        }

        CheckSize(treeSize, nameof(treeSize));
        return MerkleProofBuilder.RootHash(_nodes, treeSize);
    }

    /// <summary>
    /// An inclusion proof for entry <paramref name="index"/> in the tree of <paramref name="treeSize"/> entries (default: all).
    /// Not public: a bare proof does not bind the tree size to a signed root; users take <see cref="ExportProof"/>, which
    /// bundles the path with the signed checkpoint (the CLI's <c>har audit prove --index</c> prints the bare proof).
    /// </summary>
    /// <param name="index">The entry index.</param>
    /// <param name="treeSize">The tree size; <see langword="null"/> for <see cref="Count"/>.</param>
    /// <returns>The proof.</returns>
    internal InclusionProof GetInclusionProof(long index, long? treeSize = null)
    {
        if (_pg is not null)
        {
            return _pg.Reading(s => s.GetInclusionProof(index, treeSize));
        }

        var size = treeSize ?? Count;
        CheckSize(size, nameof(treeSize));
        if (index < 0 || index >= size)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Entry index must be in [0, {size}) for a tree of {Messages.Entries(size)}.");
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
    /// <exception cref="ObjectDisposedException">The log was disposed.</exception>
    public ConsistencyProof GetConsistencyProof(long fromSize, long? toSize = null)
    {
        ThrowIfDisposed();
        if (_pg is not null)
        {
            return _pg.Reading(s => s.GetConsistencyProof(fromSize, toSize));
        }

        var size = toSize ?? Count;
        CheckSize(size, nameof(toSize));
        if (fromSize < 1 || fromSize > size)
        {
            throw new ArgumentOutOfRangeException(nameof(fromSize), fromSize, $"The older size must be in [1, {size}]; every tree extends the empty tree, so a proof from size 0 proves nothing.");
        }

        var path = MerkleProofBuilder.Consistency(_nodes, fromSize, size);
        return new ConsistencyProof(fromSize, size, MerkleProofBuilder.RootHash(_nodes, fromSize), MerkleProofBuilder.RootHash(_nodes, size), path);
    }

    /// <summary>A self-contained proof that entry <paramref name="index"/> is covered by the latest signed checkpoint; verifies offline with <see cref="AuditProofBundle.Verify"/>.</summary>
    /// <param name="index">The entry index.</param>
    /// <returns>The bundle.</returns>
    /// <exception cref="InvalidOperationException">There is no signed checkpoint yet.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The entry is newer than the latest checkpoint.</exception>
    /// <exception cref="InvalidDataException">The log does not match the checkpoint, or (a read-only view of a damaged log) holds fewer entries than it signs.</exception>
    /// <exception cref="ObjectDisposedException">The log was disposed.</exception>
    public AuditProofBundle ExportProof(long index)
    {
        ThrowIfDisposed();
        if (_pg is not null)
        {
            return _pg.Reading(s => s.ExportProof(index));
        }

        var checkpoint = LatestCheckpoint ?? throw new InvalidOperationException("The log has no signed checkpoint yet; create one (CreateCheckpoint, or `har audit checkpoint`) before exporting proofs.");
        if (index < 0 || index >= checkpoint.TreeSize)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Entry {index} is not covered by the latest signed checkpoint (size {checkpoint.TreeSize}); create a newer checkpoint first.");
        }

        var count = Count;
        if (checkpoint.TreeSize > count)
        {
            // A read-only view that stopped at damage below the checkpoint: its tree cannot produce the signed root.
            throw new InvalidDataException($"The latest signed checkpoint commits to {Messages.Entries(checkpoint.TreeSize)} but only {count} {(count == 1 ? "is" : "are")} readable ({ReadOnlyStopReason ?? "entries are missing"}); no proof against it can be made. Verify the log (AuditLog.Verify(), or `har audit verify`) to find every damaged entry.");
        }

        if (!MerkleProofBuilder.RootHash(_nodes, checkpoint.TreeSize).AsSpan().SequenceEqual(checkpoint.RootHash.Span))
        {
            throw new InvalidDataException($"The log does not match its signed checkpoint at size {checkpoint.TreeSize}. Run verify.");
        }

        var entry = Get(index);
        return new AuditProofBundle(entry.Payload, index, MerkleProofBuilder.Inclusion(_nodes, index, checkpoint.TreeSize), checkpoint);
    }
}
