using System.Buffers;
using System.Globalization;
using Har.Audit.Merkle;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Har.Audit.Postgres;

internal sealed partial class PostgresAuditStore
{
    private const int ImportChunk = 1000;

    /// <summary>
    /// Writes a verified log into an empty database in one transaction: the head row with <paramref name="origin"/>, every
    /// entry (re-sequenced exactly as an append would, each leaf compared with the source's), the Merkle nodes, and the
    /// signed checkpoint (its root compared with the stored tree's). Nothing is committed unless all of it matches; a
    /// database that holds any part of a log is refused before anything is written.
    /// </summary>
    public static long Import(string connectionString, string origin, IEnumerable<AuditEntry> entries, SignedCheckpoint checkpoint, string verifierKey, TimeProvider time)
    {
        var (source, display, database) = CreateSource(connectionString);
        PostgresAuditStore? store = null;
        try
        {
            PostgresSchema.Migrate(source, database);
            store = new PostgresAuditStore(source, new AuditLogOptions { ConnectionString = connectionString }, NullLogger.Instance, time, display, database) { Origin = origin };
            return store.ImportCore(entries, checkpoint, verifierKey);
        }
        catch (NpgsqlException ex) when (IsUnreachable(ex))
        {
            throw new AuditLogUnavailableException($"The audit log could not be imported into {display}: {ex.Message} Nothing was committed; check that PostgreSQL is reachable and retry.", ex);
        }
        finally
        {
            // The store (its writer thread never started) owns the data source once it exists.
            if (store is null)
            {
                source.Dispose();
            }
            else
            {
                store.Dispose();
            }
        }
    }

    private long ImportCore(IEnumerable<AuditEntry> entries, SignedCheckpoint checkpoint, string verifierKey)
    {
        using var connection = _source.OpenConnection();
        using var tx = connection.BeginTransaction();

        // The head row is the sequencer: inserting it in this transaction makes any other opener wait for the outcome.
        using (var head = new NpgsqlCommand("INSERT INTO har_audit.head (id, origin, size, last_leaf, frontier, created) VALUES (1, $1, 0, $2, ''::bytea, $3) ON CONFLICT (id) DO NOTHING", connection, tx))
        {
            head.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Origin });
            head.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = new byte[HashSize] });
            head.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = _time.GetUtcNow() });
            if (head.ExecuteNonQuery() != 1)
            {
                using var existing = new NpgsqlCommand("SELECT origin, size FROM har_audit.head WHERE id = 1", connection, tx);
                using var reader = existing.ExecuteReader();
                var found = reader.Read() ? string.Create(CultureInfo.InvariantCulture, $"a log of {Messages.Entries(reader.GetInt64(1))} with origin '{reader.GetString(0)}'") : "a log head row";
                throw new InvalidOperationException($"{DisplayName} already holds {found}; a log is imported into a database without one only, so nothing there is overwritten or mixed. Restore into a new, empty database.");
            }
        }

        using (var leftovers = new NpgsqlCommand("SELECT (SELECT count(*) FROM har_audit.entries), (SELECT count(*) FROM har_audit.nodes), (SELECT count(*) FROM har_audit.checkpoints)", connection, tx))
        using (var reader = leftovers.ExecuteReader())
        {
            reader.Read();
            if (reader.GetInt64(0) + reader.GetInt64(1) + reader.GetInt64(2) > 0)
            {
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"{DisplayName} has no log head row but holds {Messages.Entries(reader.GetInt64(0))}, {Messages.Count(reader.GetInt64(1), "Merkle node", "Merkle nodes")} and {Messages.Count(reader.GetInt64(2), "checkpoint", "checkpoints")} of a log; expected none. Restore into a new, empty database."));
            }
        }

        var buffer = new ArrayBufferWriter<byte>(1024);
        var batch = new List<Pending>(ImportChunk);
        var expected = new List<AuditEntry>(ImportChunk);
        long imported = 0;
        foreach (var entry in entries)
        {
            buffer.ResetWrittenCount();
            entry.Record.WriteValidated(buffer);
            batch.Add(new Pending(buffer.WrittenSpan.ToArray(), entry.Record, null!)); // nobody awaits an import's entries: the transaction commits all or none
            expected.Add(entry);
            if (batch.Count == ImportChunk)
            {
                imported += Flush(connection, tx, batch, expected);
            }
        }

        imported += Flush(connection, tx, batch, expected);
        if (checkpoint.TreeSize > imported)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"The checkpoint commits to {Messages.Entries(checkpoint.TreeSize)} but only {imported} {(imported == 1 ? "was" : "were")} imported; nothing was committed."));
        }

        var root = StoredNodes.Run(connection, n => MerkleProofBuilder.RootHash(n, checkpoint.TreeSize), tx);
        if (!root.AsSpan().SequenceEqual(checkpoint.RootHash.Span) || checkpoint.Origin != Origin)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"The imported tree's root at size {checkpoint.TreeSize} ({Convert.ToHexStringLower(root)}, origin '{Origin}') is not the checkpoint's ({Convert.ToHexStringLower(checkpoint.RootHash.Span)}, origin '{checkpoint.Origin}'); nothing was committed."));
        }

        using (var insert = new NpgsqlCommand("INSERT INTO har_audit.checkpoints (tree_size, note, verifier_key, created) VALUES ($1, $2, $3, $4)", connection, tx))
        {
            insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = checkpoint.TreeSize });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = checkpoint.NoteText });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = verifierKey });
            insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = _time.GetUtcNow() });
            insert.ExecuteNonQuery();
        }

        tx.Commit();
        return imported;
    }

    /// <summary>Sequences a chunk in the import's transaction and checks that each entry got its source's index and leaf hash.</summary>
    private int Flush(NpgsqlConnection connection, NpgsqlTransaction tx, List<Pending> batch, List<AuditEntry> expected)
    {
        if (batch.Count == 0)
        {
            return 0;
        }

        var (results, _, _) = Sequence(connection, tx, batch);
        for (var i = 0; i < batch.Count; i++)
        {
            if (results[i].Index != expected[i].Index || !results[i].LeafHash.Span.SequenceEqual(expected[i].LeafHashBytes))
            {
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"Entry {expected[i].Index} does not reproduce its leaf hash when imported (got index {results[i].Index}, leaf {Convert.ToHexStringLower(results[i].LeafHash.Span)}); the source log is damaged: run verify. Nothing was committed."));
            }
        }

        var count = batch.Count;
        batch.Clear();
        expected.Clear();
        return count;
    }
}
