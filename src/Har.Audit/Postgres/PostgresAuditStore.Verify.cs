using System.Data;
using Har.Audit.Merkle;
using Har.Audit.Storage;
using Npgsql;

namespace Har.Audit.Postgres;

internal sealed partial class PostgresAuditStore
{
    /// <summary>
    /// Signs a checkpoint of every committed entry, in one REPEATABLE READ snapshot: checks the log still matches the
    /// previous checkpoint and that every entry the new one adds verifies (entry well-formed, index, chain, stored leaf,
    /// query columns), then stores the note. Two replicas signing the same size store one note (the first).
    /// </summary>
    public SignedCheckpoint CreateCheckpoint(AuditSigningKey key)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return CreateCheckpointOnce(key);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.SerializationFailure && attempt < MaxCheckpointAttempts)
            {
                // Another replica stored a checkpoint in the same moment (replicas sign on their own schedules and each at
                // its start): this snapshot cannot see its row. A new snapshot does, and finds the log signed or signs the rest.
            }
        }
    }

    /// <summary>How many snapshots a checkpoint is tried in while other replicas keep signing at the same moment.</summary>
    private const int MaxCheckpointAttempts = 5;

    private SignedCheckpoint CreateCheckpointOnce(AuditSigningKey key)
    {
        using var connection = _source.OpenConnection();
        using var tx = connection.BeginTransaction(IsolationLevel.RepeatableRead);
        var size = ReadSize(connection, tx);
        var previous = ReadLatestCheckpoint(connection, tx)?.Checkpoint;
        if (previous is not null)
        {
            if (previous.TreeSize > size)
            {
                throw new InvalidDataException($"The previous checkpoint commits to {Messages.Entries(previous.TreeSize)} but the log holds {size}: entries were lost. Run verify.");
            }

            if (!StoredNodes.Run(connection, n => MerkleProofBuilder.RootHash(n, previous.TreeSize), tx).AsSpan().SequenceEqual(previous.RootHash.Span))
            {
                throw new InvalidDataException($"The log no longer matches its previous checkpoint at size {previous.TreeSize}: history was rewritten. Run verify.");
            }
        }

        var from = previous?.TreeSize ?? 0;
        var problem = Scan(connection, tx, from, size, null, null);
        if (problem is not null)
        {
            throw new InvalidDataException($"{problem.Message}; no checkpoint was signed. Run verify.");
        }

        var root = StoredNodes.Run(connection, n => MerkleProofBuilder.RootHash(n, size), tx);
        var checkpoint = SignedCheckpoint.Create(Origin, size, root, key);
        using (var insert = new NpgsqlCommand("INSERT INTO har_audit.checkpoints (tree_size, note, verifier_key, created) VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING", connection, tx))
        {
            insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = size });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = checkpoint.NoteText });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.VerifierKey });
            insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = _time.GetUtcNow() });
            if (insert.ExecuteNonQuery() == 0)
            {
                tx.Commit();
                return LatestCheckpoint is { TreeSize: var s } stored && s == size ? stored : checkpoint;
            }
        }

        tx.Commit();
        Log.Checkpointed(_logger, DisplayName, size, key.Name);
        Metrics?.Checkpoint(size);
        return checkpoint;
    }

    /// <summary>
    /// Verifies the whole log in one REPEATABLE READ snapshot, read-only: every entry (well-formed record, index without
    /// gaps, chain, stored leaf, query columns), every stored Merkle node recomputed from the entries, the head row, and
    /// every signed checkpoint's root, with the latest checkpoint's signature.
    /// </summary>
    public AuditVerificationResult Verify(AuditVerifierKey? pinnedKey)
    {
        using var connection = _source.OpenConnection();
        using var tx = connection.BeginTransaction(IsolationLevel.RepeatableRead);
        long headSize;
        byte[] headLast, headFrontier;
        string origin;
        using (var head = new NpgsqlCommand("SELECT size, last_leaf, frontier, origin FROM har_audit.head WHERE id = 1", connection, tx))
        using (var reader = head.ExecuteReader())
        {
            if (!reader.Read())
            {
                return new AuditVerificationResult { Problem = AuditVerificationProblem.Header, FirstBadIndex = 0, Message = "the log has no head row" };
            }

            (headSize, headLast, headFrontier, origin) = (reader.GetInt64(0), reader.GetFieldValue<byte[]>(1), reader.GetFieldValue<byte[]>(2), reader.GetString(3));
        }

        var checkpoints = new List<(SignedCheckpoint Checkpoint, string VerifierKey)>();
        string? checkpointProblem = null;
        using (var command = new NpgsqlCommand("SELECT note, verifier_key FROM har_audit.checkpoints ORDER BY tree_size", connection, tx))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                try
                {
                    checkpoints.Add((SignedCheckpoint.Parse(reader.GetString(0)), reader.GetString(1)));
                }
                catch (FormatException ex)
                {
                    checkpointProblem = ex.Message;
                }
            }
        }

        var latest = checkpoints.Count == 0 ? null : checkpoints[^1].Checkpoint;
        var roots = new Dictionary<long, byte[]>();
        foreach (var (c, _) in checkpoints)
        {
            roots[c.TreeSize] = c.TreeSize == 0 ? MerkleHasher.EmptyRoot : [];
        }

        var levels = new NodeLevels();
        var scan = Scan(connection, tx, 0, long.MaxValue, levels, roots);
        AuditVerificationResult Fail(AuditVerificationProblem problem, long? at, string message, long verified) => new()
        {
            Problem = problem,
            FirstBadIndex = at,
            Message = message,
            EntriesVerified = at ?? verified,
            Checkpoint = latest,
        };

        if (scan is not null)
        {
            return Fail(scan.Problem, scan.Index, scan.Message, scan.Index);
        }

        var n = levels.Count(0);
        if (headSize != n)
        {
            return Fail(AuditVerificationProblem.Index, Math.Min(n, headSize), $"the head row says {Messages.Entries(headSize)} but {n} {(n == 1 ? "is" : "are")} stored", Math.Min(n, headSize));
        }

        if ((n > 0 && !headLast.AsSpan().SequenceEqual(levels.Node(0, n - 1))) || (n == 0 && headLast.AsSpan().ContainsAnyExcept((byte)0)) || !headFrontier.AsSpan().SequenceEqual(levels.Frontier(n)))
        {
            return Fail(AuditVerificationProblem.StoredTree, n, $"the head row's last leaf or frontier differs from the one computed from the {Messages.Entries(n)}", n);
        }

        var nodeProblem = CheckNodes(connection, tx, levels, n);
        if (nodeProblem is not null)
        {
            return Fail(AuditVerificationProblem.StoredTree, nodeProblem.Value.Index, nodeProblem.Value.Message, nodeProblem.Value.Index);
        }

        var root = levels.Root(n);
        if (checkpointProblem is not null)
        {
            return Fail(AuditVerificationProblem.CheckpointSignature, null, $"a stored checkpoint is malformed: {checkpointProblem}", n);
        }

        if (latest is null)
        {
            return new AuditVerificationResult { EntriesVerified = n, RootHash = root, Message = $"{Messages.Entries(n)} verified in {DisplayName} (records, indexes without gaps, chain, stored leaves and Merkle nodes, query columns, head row); no signed checkpoint" };
        }

        foreach (var (c, _) in checkpoints)
        {
            if (!string.Equals(c.Origin, origin, StringComparison.Ordinal))
            {
                return Fail(AuditVerificationProblem.CheckpointOrigin, null, $"the checkpoint at size {c.TreeSize} names origin '{c.Origin}' but the log is '{origin}'", n);
            }

            if (c.TreeSize > n)
            {
                return Fail(AuditVerificationProblem.CheckpointSize, n, $"the signed checkpoint commits to {Messages.Entries(c.TreeSize)} but the log holds {n}: {Messages.Missing(n, c.TreeSize)}", n);
            }

            if (!roots[c.TreeSize].AsSpan().SequenceEqual(c.RootHash.Span))
            {
                return Fail(AuditVerificationProblem.CheckpointRoot, null, $"the Merkle root of the first {Messages.Entries(c.TreeSize)} differs from the root signed at that size", n);
            }
        }

        AuditVerifierKey? key = pinnedKey;
        if (key is null)
        {
            try
            {
                key = AuditVerifierKey.Parse(checkpoints[^1].VerifierKey);
            }
            catch (FormatException ex)
            {
                return Fail(AuditVerificationProblem.CheckpointSignature, null, $"the stored verifier key is malformed: {ex.Message}", n);
            }
        }

        if (!latest.Verify(key))
        {
            return Fail(AuditVerificationProblem.CheckpointSignature, null, $"the checkpoint carries no valid signature by {key}", n);
        }

        return new AuditVerificationResult
        {
            EntriesVerified = n,
            RootHash = root,
            Checkpoint = latest,
            VerifierKey = key.ToString(),
            VerifierKeyPinned = pinnedKey is not null,
            Message = $"{Messages.Entries(n)} verified in {DisplayName}; {(checkpoints.Count == 1 ? "the root at the checkpoint's size matches" : $"the roots at all {checkpoints.Count} checkpoints' sizes match")}, the latest ({latest.TreeSize}) signed by {key.Name}+{key.KeyId:x8}"
                + (pinnedKey is null ? " (key taken from the database, which proves less: pass the trusted verifier key, the verifierKey argument or AuditLogOptions.VerifierKey, to prove more)" : string.Empty),
        };
    }

    /// <summary>
    /// Reads entries [<paramref name="from"/>, <paramref name="to"/>) in order and checks each: no gap, a well-formed
    /// entry with its index, the chain, the stored leaf, the query columns. With <paramref name="levels"/> (from 0 only)
    /// it also collects the recomputed nodes of every level and the roots at the sizes in <paramref name="roots"/>.
    /// </summary>
    private static ScanProblem? Scan(NpgsqlConnection connection, NpgsqlTransaction tx, long from, long to, NodeLevels? levels, Dictionary<long, byte[]>? roots)
    {
        var previous = new byte[HashSize];
        if (from > 0)
        {
            using var prev = new NpgsqlCommand("SELECT leaf FROM har_audit.entries WHERE idx = $1", connection, tx);
            prev.Parameters.Add(new NpgsqlParameter<long> { TypedValue = from - 1 });
            (prev.ExecuteScalar() as byte[] ?? throw new InvalidDataException($"Entry {from - 1} is missing. Run verify.")).CopyTo(previous, 0);
        }

        using var command = new NpgsqlCommand("SELECT idx, payload, leaf, kind, ts, event_type, entity_type, entity_id, actor FROM har_audit.entries WHERE idx >= $1 AND idx < $2 ORDER BY idx", connection, tx);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = from });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = to });
        using var reader = command.ExecuteReader();
        var n = from;
        while (reader.Read())
        {
            var idx = reader.GetInt64(0);
            if (idx != n)
            {
                return new(AuditVerificationProblem.Index, n, $"entry {n}: missing (the next stored entry is {idx})");
            }

            var payload = reader.GetFieldValue<byte[]>(1);
            var entry = LogEnvelope.TryParse(payload, out var problem);
            if (entry is null)
            {
                return new(AuditVerificationProblem.Entry, n, $"entry {n}: {problem}");
            }

            if (entry.Index != n)
            {
                return new(AuditVerificationProblem.Index, n, $"entry {n}: carries index {entry.Index}");
            }

            if (!entry.PreviousHash.AsSpan().SequenceEqual(previous))
            {
                return new(AuditVerificationProblem.Chain, n, $"entry {n}: prev is not the leaf hash of entry {n - 1}");
            }

            var leaf = MerkleHasher.Leaf(payload);
            if (!leaf.AsSpan().SequenceEqual(reader.GetFieldValue<byte[]>(2)))
            {
                return new(AuditVerificationProblem.StoredTree, n, $"entry {n}: the stored leaf hash differs from the entry's hash");
            }

            var r = entry.Record;
            if (reader.GetInt16(3) != (short)r.Kind || reader.GetInt64(4) != r.Timestamp.UtcTicks || reader.GetString(5) != r.IndexEventType
                || reader.GetString(6) != r.IndexEntityType || reader.GetString(7) != r.IndexEntityId || reader.GetString(8) != r.IndexActor)
            {
                return new(AuditVerificationProblem.QueryIndex, n, $"entry {n}: its query columns do not match the entry");
            }

            leaf.CopyTo(previous, 0);
            n++;
            if (levels is not null)
            {
                levels.AddLeaf(leaf);
                if (roots is not null && roots.ContainsKey(n))
                {
                    roots[n] = levels.Root(n);
                }
            }
        }

        return to != long.MaxValue && n != to ? new(AuditVerificationProblem.Index, n, $"entry {n}: missing (the log holds {Messages.Entries(to)})") : null;
    }

    private static (long Index, string Message)? CheckNodes(NpgsqlConnection connection, NpgsqlTransaction tx, NodeLevels levels, long n)
    {
        using var command = new NpgsqlCommand("SELECT level, idx, hash FROM har_audit.nodes ORDER BY level, idx", connection, tx);
        using var reader = command.ExecuteReader();
        var level = 1;
        long expected = 0;
        bool LevelDone(out (long, string)? missing)
        {
            var count = n >> level;
            missing = expected < count ? (expected << level, $"entry {expected << level}: the stored Merkle node (level {level}, index {expected}) is missing") : null;
            return missing is null;
        }

        while (reader.Read())
        {
            int l = reader.GetInt16(0);
            var i = reader.GetInt64(1);
            while (l > level)
            {
                if (!LevelDone(out var missing))
                {
                    return missing;
                }

                level++;
                expected = 0;
            }

            if (i != expected || i >= (n >> level))
            {
                return i > expected ? (expected << level, $"entry {expected << level}: the stored Merkle node (level {level}, index {expected}) is missing")
                    : (i << level, $"entry {i << level}: a stored Merkle node (level {level}, index {i}) is not part of the tree of {Messages.Entries(n)}");
            }

            if (!reader.GetFieldValue<byte[]>(2).AsSpan().SequenceEqual(levels.Node(level, i)))
            {
                return (i << level, $"entry {i << level}: the stored Merkle node (level {level}, index {i}) differs from the one computed from the entries");
            }

            expected++;
        }

        for (; level < 63 && (n >> level) > 0; level++, expected = 0)
        {
            if (!LevelDone(out var missing))
            {
                return missing;
            }
        }

        return null;
    }

    /// <summary>Every complete-subtree node recomputed from the leaves, 32 bytes each in one growing array per level (about 64 bytes per entry in all).</summary>
    private sealed class NodeLevels
    {
        private readonly byte[][] _data = new byte[63][];
        private readonly long[] _count = new long[63];

        public long Count(int level) => _count[level];

        public ReadOnlySpan<byte> Node(int level, long index) => _data[level].AsSpan(checked((int)(index * HashSize)), HashSize);

        public void AddLeaf(byte[] leaf)
        {
            Span<byte> node = stackalloc byte[HashSize];
            leaf.CopyTo(node);
            for (var level = 0; ; level++)
            {
                Add(level, node);
                if ((_count[level] & 1) == 1)
                {
                    return;
                }

                MerkleHasher.Node(Node(level, _count[level] - 2), Node(level, _count[level] - 1), node);
            }
        }

        /// <summary>The root of the first <paramref name="n"/> leaves.</summary>
        public byte[] Root(long n)
        {
            if (n == 0)
            {
                return MerkleHasher.EmptyRoot;
            }

            byte[]? root = null;
            for (var level = 0; level < 63; level++)
            {
                if (((n >> level) & 1) == 1)
                {
                    var node = Node(level, (n >> level) - 1);
                    root = root is null ? node.ToArray() : MerkleHasher.Node(node, root);
                }
            }

            return root!;
        }

        /// <summary>The head row's frontier for <paramref name="n"/> leaves (see <see cref="Postgres.Frontier"/>).</summary>
        public byte[] Frontier(long n)
        {
            var border = new byte[]?[64];
            for (var level = 0; level < 63; level++)
            {
                if (((n >> level) & 1) == 1)
                {
                    border[level] = Node(level, (n >> level) - 1).ToArray();
                }
            }

            return Postgres.Frontier.Encode(n, border);
        }

        private void Add(int level, ReadOnlySpan<byte> node)
        {
            var data = _data[level] ??= new byte[HashSize * 1024];
            var at = checked((int)(_count[level] * HashSize));
            if (at + HashSize > data.Length)
            {
                Array.Resize(ref _data[level], checked(data.Length * 2));
                data = _data[level];
            }

            node.CopyTo(data.AsSpan(at));
            _count[level]++;
        }
    }

    private sealed record ScanProblem(AuditVerificationProblem Problem, long Index, string Message);
}
