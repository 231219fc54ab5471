using System.Globalization;
using System.Text;
using Har.Audit.Merkle;
using Har.Audit.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Har.Audit.Postgres;

internal sealed partial class PostgresAuditStore
{
    /// <summary>
    /// Runs a read (or a checkpoint) of the log, turning "PostgreSQL cannot be reached" (connection refused or broken, server
    /// shutting down or starting) into <see cref="AuditLogUnavailableException"/>, as an unreadable disk is for the file log:
    /// callers that handle an unavailable log (503 with Retry-After, health checks, background scans) handle this one too,
    /// instead of a database exception ending the host. SQL errors that are not about reachability pass unchanged.
    /// </summary>
    public T Reading<T>(Func<PostgresAuditStore, T> read)
    {
        try
        {
            return read(this);
        }
        catch (NpgsqlException ex) when (IsUnreachable(ex))
        {
            throw new AuditLogUnavailableException($"The audit log in {DisplayName} cannot be read now: {ex.Message} It is read again as soon as PostgreSQL answers.", ex);
        }
    }

    /// <summary>Whether <paramref name="ex"/> means the server could not be reached or went away (not a bad statement).</summary>
    internal static bool IsUnreachable(NpgsqlException ex) =>
        ex is not PostgresException pg || ex.IsTransient || pg.SqlState.StartsWith("08", StringComparison.Ordinal) || pg.SqlState.StartsWith("57P", StringComparison.Ordinal);

    /// <summary>Gets the committed tree size (every process's appends).</summary>
    public long Count
    {
        get
        {
            using var connection = _source.OpenConnection();
            return ReadSize(connection, null);
        }
    }

    public SignedCheckpoint? LatestCheckpoint
    {
        get
        {
            using var connection = _source.OpenConnection();
            return ReadLatestCheckpoint(connection, null)?.Checkpoint;
        }
    }

    public (SignedCheckpoint Checkpoint, string VerifierKey)? LatestCheckpointWithKey()
    {
        using var connection = _source.OpenConnection();
        return ReadLatestCheckpoint(connection, null);
    }

    public AuditEntry Get(long index)
    {
        using var connection = _source.OpenConnection();
        var size = ReadSize(connection, null);
        if (index < 0 || index >= size)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Entry index must be in [0, {size}).");
        }

        using var command = new NpgsqlCommand("SELECT payload FROM har_audit.entries WHERE idx = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = index });
        var payload = command.ExecuteScalar() as byte[]
            ?? throw new AuditLogCorruptedException($"Entry {index} is missing from {DisplayName} although the log holds {Messages.Entries(size)}. Verify the log (AuditLog.Verify(), or `har audit verify`) to find every damaged entry.", index, -1);
        return ToEntry(index, payload);
    }

    public AuditPage Query(AuditQuery query)
    {
        long start = 0;
        if (query.PageToken is not null && (!long.TryParse(query.PageToken, NumberStyles.None, CultureInfo.InvariantCulture, out start) || start < 0))
        {
            throw new FormatException($"Page token '{query.PageToken}' is not one this log issued; pass null for the first page or the previous page's NextPageToken.");
        }

        using var connection = _source.OpenConnection();
        var count = ReadSize(connection, null);
        var sql = new StringBuilder("SELECT idx, payload FROM har_audit.entries WHERE idx >= $1 AND idx < $2");
        using var command = new NpgsqlCommand { Connection = connection };
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = start });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = count });
        void Filter<T>(string column, T? value, string op = "=")
        {
            if (value is not null)
            {
                command.Parameters.Add(new NpgsqlParameter<T> { TypedValue = value });
                sql.Append(CultureInfo.InvariantCulture, $" AND {column} {op} ${command.Parameters.Count}");
            }
        }

        Filter("event_type", query.EventType);
        Filter("entity_type", query.EntityType);
        Filter("entity_id", query.EntityId);
        Filter("actor", query.Actor);
        if (query.Kind is { } kind)
        {
            Filter<short?>("kind", (short)kind);
        }

        if (query.From is { } from)
        {
            Filter<long?>("ts", from.UtcTicks, ">=");
        }

        if (query.To is { } to)
        {
            Filter<long?>("ts", to.UtcTicks, "<");
        }

        // Severity lives in the payload (audit events only), not in a column: when it filters, rows are read in
        // batches and matched here until the page is full, as the file log does.
        var bySeverity = query.Severity is not null || query.MinimumSeverity is not null;
        var batch = bySeverity ? Math.Max(query.PageSize, 256) : query.PageSize;
        sql.Append(CultureInfo.InvariantCulture, $" ORDER BY idx LIMIT {batch}");
        command.CommandText = sql.ToString();
        var results = new List<AuditEntry>(Math.Min(query.PageSize, 64));
        var next = count;
        var cursor = start;
        while (true)
        {
            command.Parameters[0].Value = cursor;
            var read = 0;
            var last = cursor - 1;
            using (var reader = command.ExecuteReader())
            {
                while (reader.Read())
                {
                    read++;
                    var entry = ToEntry(reader.GetInt64(0), reader.GetFieldValue<byte[]>(1));
                    last = entry.Index;
                    if (results.Count < query.PageSize && AuditLog.SeverityMatches(entry.Record, query))
                    {
                        results.Add(entry);
                        if (results.Count == query.PageSize)
                        {
                            next = entry.Index + 1;
                            break;
                        }
                    }
                }
            }

            if (results.Count == query.PageSize || read < batch)
            {
                break;
            }

            cursor = last + 1;
        }

        return new AuditPage(results, next < count ? next.ToString(CultureInfo.InvariantCulture) : null);
    }

    public byte[] GetRootHash(long treeSize)
    {
        using var connection = _source.OpenConnection();
        CheckSize(connection, treeSize, nameof(treeSize));
        return StoredNodes.Run(connection, nodes => MerkleProofBuilder.RootHash(nodes, treeSize));
    }

    public InclusionProof GetInclusionProof(long index, long? treeSize)
    {
        using var connection = _source.OpenConnection();
        var size = treeSize ?? ReadSize(connection, null);
        CheckSize(connection, size, nameof(treeSize));
        if (index < 0 || index >= size)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Entry index must be in [0, {size}) for a tree of {Messages.Entries(size)}.");
        }

        return StoredNodes.Run(connection, nodes =>
        {
            var leaf = new byte[HashSize];
            nodes.ReadNode(0, index, leaf);
            return new InclusionProof(index, size, leaf, MerkleProofBuilder.RootHash(nodes, size), MerkleProofBuilder.Inclusion(nodes, index, size));
        });
    }

    public ConsistencyProof GetConsistencyProof(long fromSize, long? toSize)
    {
        using var connection = _source.OpenConnection();
        var size = toSize ?? ReadSize(connection, null);
        CheckSize(connection, size, nameof(toSize));
        if (fromSize < 1 || fromSize > size)
        {
            throw new ArgumentOutOfRangeException(nameof(fromSize), fromSize, $"The older size must be in [1, {size}]; every tree extends the empty tree, so a proof from size 0 proves nothing.");
        }

        return StoredNodes.Run(connection, nodes => new ConsistencyProof(
            fromSize, size, MerkleProofBuilder.RootHash(nodes, fromSize), MerkleProofBuilder.RootHash(nodes, size), MerkleProofBuilder.Consistency(nodes, fromSize, size)));
    }

    public AuditProofBundle ExportProof(long index)
    {
        using var connection = _source.OpenConnection();
        var checkpoint = ReadLatestCheckpoint(connection, null)?.Checkpoint
            ?? throw new InvalidOperationException("The log has no signed checkpoint yet; create one (CreateCheckpoint, or `har audit checkpoint`) before exporting proofs.");
        if (index < 0 || index >= checkpoint.TreeSize)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Entry {index} is not covered by the latest signed checkpoint (size {checkpoint.TreeSize}); create a newer checkpoint first.");
        }

        var (root, path) = StoredNodes.Run(connection, nodes => (MerkleProofBuilder.RootHash(nodes, checkpoint.TreeSize), MerkleProofBuilder.Inclusion(nodes, index, checkpoint.TreeSize)));
        if (!root.AsSpan().SequenceEqual(checkpoint.RootHash.Span))
        {
            throw new InvalidDataException($"The log does not match its signed checkpoint at size {checkpoint.TreeSize}. Run verify.");
        }

        return new AuditProofBundle(Get(index).Payload, index, path, checkpoint);
    }

    internal AuditEntry ToEntry(long index, byte[] payload)
    {
        var parsed = LogEnvelope.TryParse(payload, out var problem)
            ?? throw new AuditLogCorruptedException($"Entry {index} in {DisplayName} is damaged: {problem}. Verify the log (AuditLog.Verify(), or `har audit verify`) to find every damaged entry.", index, -1);
        if (parsed.Index != index)
        {
            throw new AuditLogCorruptedException($"Entry {index} in {DisplayName} is damaged: the row says index {parsed.Index}. Verify the log (AuditLog.Verify(), or `har audit verify`) to find every damaged entry.", index, -1);
        }

        return new AuditEntry(index, parsed.Record, parsed.PreviousHash, payload, MerkleHasher.Leaf(payload));
    }

    internal static long ReadSize(NpgsqlConnection connection, NpgsqlTransaction? tx)
    {
        using var command = new NpgsqlCommand("SELECT size FROM har_audit.head WHERE id = 1", connection, tx);
        return command.ExecuteScalar() is long size ? size : 0;
    }

    internal static (SignedCheckpoint Checkpoint, string VerifierKey)? ReadLatestCheckpoint(NpgsqlConnection connection, NpgsqlTransaction? tx)
    {
        using var command = new NpgsqlCommand("SELECT note, verifier_key FROM har_audit.checkpoints ORDER BY tree_size DESC LIMIT 1", connection, tx);
        using var reader = command.ExecuteReader();
        return reader.Read() ? (SignedCheckpoint.Parse(reader.GetString(0)), reader.GetString(1)) : null;
    }

    private static void CheckSize(NpgsqlConnection connection, long size, string name)
    {
        var count = ReadSize(connection, null);
        if (size < 0 || size > count)
        {
            throw new ArgumentOutOfRangeException(name, size, $"Tree size must be in [0, {count}] (the log holds {Messages.Entries(count)}).");
        }
    }

    /// <summary>
    /// Proofs over the stored nodes in two round trips whatever the tree size: the proof is computed once with a
    /// recording source (which nodes it reads depends only on the sizes, never on hash values), those nodes are
    /// fetched in one query, and the proof is computed again from them.
    /// </summary>
    internal sealed class StoredNodes : INodeSource
    {
        private readonly Dictionary<(int Level, long Index), byte[]> _nodes = [];
        private bool _recording = true;

        public static T Run<T>(NpgsqlConnection connection, Func<INodeSource, T> compute, NpgsqlTransaction? tx = null)
        {
            var source = new StoredNodes();
            compute(source);
            source.Fetch(connection, tx);
            source._recording = false;
            return compute(source);
        }

        public void ReadNode(int level, long index, Span<byte> destination)
        {
            if (_recording)
            {
                _nodes[(level, index)] = [];
                destination.Clear();
                return;
            }

            if (!_nodes.TryGetValue((level, index), out var hash) || hash.Length != HashSize)
            {
                throw new AuditLogCorruptedException($"The stored Merkle node (level {level}, index {index}) is missing or malformed. Verify the log (AuditLog.Verify(), or `har audit verify`) to find every damaged entry.", index << level, -1);
            }

            hash.CopyTo(destination);
        }

        private void Fetch(NpgsqlConnection connection, NpgsqlTransaction? tx)
        {
            var leaves = new List<long>();
            var levels = new List<short>();
            var indexes = new List<long>();
            foreach (var (level, index) in _nodes.Keys)
            {
                if (level == 0)
                {
                    leaves.Add(index);
                }
                else
                {
                    levels.Add((short)level);
                    indexes.Add(index);
                }
            }

            using var command = new NpgsqlCommand(
                "SELECT 0::smallint, idx, leaf FROM har_audit.entries WHERE idx = ANY($1) UNION ALL "
                + "SELECT n.level, n.idx, n.hash FROM har_audit.nodes n JOIN unnest($2, $3) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx",
                connection,
                tx);
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. leaves], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            command.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = [.. levels], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Smallint });
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. indexes], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                _nodes[(reader.GetInt16(0), reader.GetInt64(1))] = reader.GetFieldValue<byte[]>(2);
            }
        }
    }
}
