using System.Buffers;
using System.Collections.Concurrent;
using Har.Audit.Merkle;
using Har.Audit.Storage;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Har.Audit.Postgres;

/// <summary>
/// The audit log in PostgreSQL: the same entries (canonical JSON payload with index, kind, chain hash and record),
/// leaf hashes and RFC 9162 complete-subtree nodes as the file log, written by any number of processes. One row,
/// <c>har_audit.head</c>, is the sequencer: every append transaction locks it (<c>SELECT … FOR UPDATE</c>), reads the
/// tree size, the last leaf and the right frontier of the tree, inserts its entries and the nodes they complete with
/// COPY, advances the head and commits; appends are acknowledged only after the commit. Concurrent appenders in one
/// process share one transaction (group commit): a dedicated writer thread takes everything queued meanwhile.
/// </summary>
internal sealed partial class PostgresAuditStore : IDisposable
{
    private const int HashSize = MerkleHasher.HashSize;

    private readonly NpgsqlDataSource _source;
    private readonly AuditLogOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly BlockingCollection<Pending> _queue = new(new ConcurrentQueue<Pending>());
    private readonly Thread _writer;
    private readonly ArrayBufferWriter<byte> _frames = new(1 << 20);
    private readonly object _gate = new();
    private int _state;
    private Exception? _fault;
    private ITimer? _retryTimer;
    private bool _disposed;

    private PostgresAuditStore(NpgsqlDataSource source, AuditLogOptions options, ILogger logger, TimeProvider time, string display, string database)
    {
        _source = source;
        _options = options;
        _logger = logger;
        _time = time;
        DisplayName = display;
        Database = database;
        Origin = string.Empty;
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "har-audit-pg-writer" };
    }

    /// <summary>Gets a name for messages: <c>postgresql://host/database</c> (never the password).</summary>
    public string DisplayName { get; }

    /// <summary>Gets the database name.</summary>
    public string Database { get; }

    /// <summary>Gets the log's origin, fixed when the head row was created.</summary>
    public string Origin { get; private set; }

    /// <summary>Gets or sets the metrics the writer reports to (set by the owning <see cref="AuditLog"/> once it exists).</summary>
    public AuditMetrics? Metrics { get; set; }

    public AuditLogState State => (AuditLogState)Volatile.Read(ref _state);

    public string UnavailableReason => _fault?.Message ?? "no failure recorded";

    /// <summary>Opens (creating or migrating the schema as needed) the log in the database of <see cref="AuditLogOptions.ConnectionString"/>.</summary>
    public static PostgresAuditStore Open(AuditLogOptions options, ILogger logger, TimeProvider time)
    {
        var (source, display, database) = CreateSource(options.ConnectionString!);
        PostgresAuditStore? store = null;
        try
        {
            PostgresSchema.Migrate(source, database);
            store = new PostgresAuditStore(source, options, logger, time, display, database);
            store.Origin = store.LoadOrCreateHead(options.Origin);
            store._writer.Start();
            return store;
        }
        catch (NpgsqlException ex)
        {
            source.Dispose();
            throw new AuditLogUnavailableException($"The audit log in {display} cannot be opened: {Messages.Sentence(ex.Message)} Check that PostgreSQL is reachable and that AuditLogOptions.ConnectionString names the right host, database and credentials.", ex);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Opens a reader on an existing log without creating or migrating anything (verification).</summary>
    public static PostgresAuditStore OpenExisting(string connectionString)
    {
        var (source, display, database) = CreateSource(connectionString);
        try
        {
            using (var connection = source.OpenConnection())
            {
                PostgresSchema.CheckReadable(connection, database);
            }

            var store = new PostgresAuditStore(source, new AuditLogOptions(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, TimeProvider.System, display, database);
            using var conn = source.OpenConnection();
            using var command = new NpgsqlCommand("SELECT origin FROM har_audit.head WHERE id = 1", conn);
            store.Origin = command.ExecuteScalar() as string ?? throw new InvalidDataException($"Database '{database}' has the Har audit schema but no log head row: nothing was ever opened there.");
            return store;
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    private static (NpgsqlDataSource Source, string Display, string Database) CreateSource(string connectionString)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"AuditLogOptions.ConnectionString is not a valid Npgsql connection string ({ex.Message}); expected e.g. 'Host=db;Database=har;Username=har;Password=...'.", ex);
        }

        var database = builder.Database ?? builder.Username ?? "postgres";
        var display = $"postgresql://{builder.Host}/{database}";
        return (NpgsqlDataSource.Create(builder), display, database);
    }

    /// <summary>Queues a validated record; the task completes after the transaction holding it commits. A <paramref name="once"/> record is appended only when no entry holds the same canonical record (checked inside that transaction).</summary>
    public Task<AuditAppendResult> Enqueue(byte[] canonicalRecord, AuditRecord record, bool once = false)
    {
        var completion = new TaskCompletionSource<AuditAppendResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, typeof(AuditLog));
            if (_state != (int)AuditLogState.Writable)
            {
                throw new AuditLogUnavailableException(
                    $"The audit log in {DisplayName} cannot write now ({UnavailableReason}); the append was refused before anything was queued. It retries every {_options.RetryInterval.TotalSeconds:0.#} s and accepts appends again once PostgreSQL answers.",
                    _fault);
            }

            _queue.Add(new Pending(canonicalRecord, record, completion, once));
        }

        return completion.Task;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _queue.CompleteAdding();
        }

        if (_writer.IsAlive)
        {
            _writer.Join();
        }

        _retryTimer?.Dispose();
        _queue.Dispose();
        _source.Dispose();
    }

    private string LoadOrCreateHead(string? requestedOrigin)
    {
        var created = requestedOrigin ?? "har.audit/" + Database;
        if (SignedCheckpoint.OriginProblem(created) is { } problem)
        {
            throw new ArgumentException(problem);
        }

        using var connection = _source.OpenConnection();
        using (var insert = new NpgsqlCommand("INSERT INTO har_audit.head (id, origin, size, last_leaf, frontier, created) VALUES (1, $1, 0, $2, ''::bytea, $3) ON CONFLICT (id) DO NOTHING", connection))
        {
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = created });
            insert.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = new byte[HashSize] });
            insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = _time.GetUtcNow() });
            insert.ExecuteNonQuery();
        }

        using var select = new NpgsqlCommand("SELECT origin FROM har_audit.head WHERE id = 1", connection);
        var origin = (string)select.ExecuteScalar()!;
        if (requestedOrigin is not null && !string.Equals(requestedOrigin, origin, StringComparison.Ordinal))
        {
            throw new ArgumentException($"The audit log in {DisplayName} has origin '{origin}'; the options ask for '{requestedOrigin}'. The origin is fixed when a log is created.");
        }

        return origin;
    }

    private void WriterLoop()
    {
        var batch = new List<Pending>(1024);
        while (true)
        {
            batch.Clear();
            if (!_queue.TryTake(out var first, Timeout.Infinite))
            {
                return; // completed and drained
            }

            batch.Add(first);
            while (batch.Count < _options.MaxGroupCommitRecords && _queue.TryTake(out var next))
            {
                batch.Add(next);
            }

            try
            {
                var t0 = _time.GetTimestamp();
                var (results, written, size) = Commit(batch);
                var seconds = _time.GetElapsedTime(t0).TotalSeconds;
                Metrics?.Committed(written, seconds, size, 0);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Completion.TrySetResult(results[i]);
                }
            }
            catch (Exception ex)
            {
                // Whatever went wrong, the transaction did not commit (or its outcome is unknown): not acknowledged.
                Fail(batch, ex);
            }
        }
    }

    /// <summary>One transaction: lock the head, sequence and hash the batch, insert entries and nodes, advance the head, commit.</summary>
    private (AuditAppendResult[] Results, int Written, long Size) Commit(List<Pending> batch)
    {
        using var connection = _source.OpenConnection();
        using var tx = connection.BeginTransaction();

        // The head row's lock is every replica's: a client that goes quiet inside the transaction for 15 s (a frozen or
        // partitioned process) has it ended by the server, so the others' appends wait at most that long, not for good.
        // Its own commit then fails: nothing it did is acknowledged. Found from outside: one replica frozen (SIGSTOP)
        // inside an append left every replica's appends waiting, and /ready said the log was writable.
        using (var bound = new NpgsqlCommand("SET LOCAL idle_in_transaction_session_timeout = '15s'", connection, tx))
        {
            bound.ExecuteNonQuery();
        }

        var result = Sequence(connection, tx, batch);
        tx.Commit();
        return result;
    }

    /// <summary>
    /// Within <paramref name="tx"/>: locks the head, drops the once-appends whose record is already there (or earlier in
    /// the batch), sequences and hashes the rest, inserts their entries and nodes and advances the head (the caller commits).
    /// </summary>
    private (AuditAppendResult[] Results, int Written, long Size) Sequence(NpgsqlConnection connection, NpgsqlTransaction tx, List<Pending> all)
    {
        long size;
        var last = new byte[HashSize];
        byte[] frontier;
        using (var head = new NpgsqlCommand("SELECT size, last_leaf, frontier FROM har_audit.head WHERE id = 1 FOR UPDATE", connection, tx))
        using (var reader = head.ExecuteReader())
        {
            if (!reader.Read())
            {
                throw new InvalidDataException($"The audit log in {DisplayName} has no head row: the har_audit schema was tampered with.");
            }

            size = reader.GetInt64(0);
            reader.GetFieldValue<byte[]>(1).CopyTo(last, 0);
            frontier = reader.GetFieldValue<byte[]>(2);
        }

        // With the head locked, no other appender can add the record between this check and the commit.
        var results = new AuditAppendResult[all.Count];
        var batch = all;
        var positions = (List<int>?)null;
        List<(int Position, int Of)>? sameInBatch = null; // a once-append of a record earlier in the batch: that one's entry
        if (all.Exists(p => p.Once))
        {
            batch = new List<Pending>(all.Count);
            positions = new List<int>(all.Count);
            for (var i = 0; i < all.Count; i++)
            {
                if (all[i].Once)
                {
                    var earlier = batch.FindIndex(p => p.Once && p.Canonical.AsSpan().SequenceEqual(all[i].Canonical));
                    if (earlier >= 0)
                    {
                        (sameInBatch ??= []).Add((i, earlier));
                        continue;
                    }

                    if (FindIdentical(connection, tx, all[i]) is { } found)
                    {
                        results[i] = found;
                        continue;
                    }
                }

                positions.Add(i);
                batch.Add(all[i]);
            }
        }

        if (batch.Count == 0)
        {
            return (results, 0, size); // every record was there already: nothing to write, the head is unchanged
        }

        var border = Frontier.Decode(size, frontier);
        _frames.ResetWrittenCount();
        var payloads = new (int Start, int Length)[batch.Count];
        var leaves = new byte[batch.Count][];
        var nodes = new List<(short Level, long Index, byte[] Hash)>(batch.Count);
        for (var i = 0; i < batch.Count; i++)
        {
            var index = size + i;
            payloads[i] = LogEnvelope.WriteFrame(_frames, index, batch[i].Record.Kind, last, batch[i].Canonical);
            var leaf = MerkleHasher.Leaf(_frames.WrittenSpan.Slice(payloads[i].Start, payloads[i].Length));
            leaves[i] = leaf;
            last = leaf;
            Frontier.Append(border, index, leaf, nodes);
        }

        var written = _frames.WrittenMemory;
        if (batch.Count == 1)
        {
            InsertOne(connection, tx, size, written.Slice(payloads[0].Start, payloads[0].Length), leaves[0], batch[0].Record, nodes);
        }
        else
        {
            using (var copy = connection.BeginBinaryImport("COPY har_audit.entries (idx, payload, leaf, kind, ts, event_type, entity_type, entity_id, actor) FROM STDIN (FORMAT BINARY)"))
            {
                for (var i = 0; i < batch.Count; i++)
                {
                    var r = batch[i].Record;
                    copy.StartRow();
                    copy.Write(size + i, NpgsqlDbType.Bigint);
                    copy.Write(written.Slice(payloads[i].Start, payloads[i].Length), NpgsqlDbType.Bytea);
                    copy.Write(leaves[i], NpgsqlDbType.Bytea);
                    copy.Write((short)r.Kind, NpgsqlDbType.Smallint);
                    copy.Write(r.Timestamp.UtcTicks, NpgsqlDbType.Bigint);
                    copy.Write(r.IndexEventType, NpgsqlDbType.Text);
                    copy.Write(r.IndexEntityType, NpgsqlDbType.Text);
                    copy.Write(r.IndexEntityId, NpgsqlDbType.Text);
                    copy.Write(r.IndexActor, NpgsqlDbType.Text);
                }

                copy.Complete();
            }

            if (nodes.Count > 0)
            {
                using var copy = connection.BeginBinaryImport("COPY har_audit.nodes (level, idx, hash) FROM STDIN (FORMAT BINARY)");
                foreach (var (level, index, hash) in nodes)
                {
                    copy.StartRow();
                    copy.Write(level, NpgsqlDbType.Smallint);
                    copy.Write(index, NpgsqlDbType.Bigint);
                    copy.Write(hash, NpgsqlDbType.Bytea);
                }

                copy.Complete();
            }
        }

        var newSize = size + batch.Count;
        using (var advance = new NpgsqlCommand("UPDATE har_audit.head SET size = $1, last_leaf = $2, frontier = $3 WHERE id = 1", connection, tx))
        {
            advance.Parameters.Add(new NpgsqlParameter<long> { TypedValue = newSize });
            advance.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = last });
            advance.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = Frontier.Encode(newSize, border) });
            advance.ExecuteNonQuery();
        }

        for (var j = 0; j < batch.Count; j++)
        {
            results[positions?[j] ?? j] = new AuditAppendResult(size + j, leaves[j]);
        }

        if (sameInBatch is not null)
        {
            foreach (var (position, of) in sameInBatch)
            {
                var first = results[positions![of]];
                results[position] = new AuditAppendResult(first.Index, first.LeafHash, alreadyPresent: true);
            }
        }

        return (results, batch.Count, newSize);
    }

    /// <summary>Within the transaction holding the head: the entry whose record is the pending one's, byte for byte, if any.</summary>
    private static AuditAppendResult? FindIdentical(NpgsqlConnection connection, NpgsqlTransaction tx, Pending pending)
    {
        var r = pending.Record;
        using var command = new NpgsqlCommand(
            "SELECT idx, leaf, payload FROM har_audit.entries WHERE entity_type = $1 AND entity_id = $2 AND event_type = $3 AND ts = $4 AND kind = $5 AND actor = $6 ORDER BY idx",
            connection,
            tx);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = r.IndexEntityType });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = r.IndexEntityId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = r.IndexEventType });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = r.Timestamp.UtcTicks });
        command.Parameters.Add(new NpgsqlParameter<short> { TypedValue = (short)r.Kind });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = r.IndexActor });
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var payload = reader.GetFieldValue<byte[]>(2);
            if (LogEnvelope.RecordBytes(payload).SequenceEqual(pending.Canonical))
            {
                return new AuditAppendResult(reader.GetInt64(0), reader.GetFieldValue<byte[]>(1), alreadyPresent: true);
            }
        }

        return null;
    }

    /// <summary>A batch of one (group commit off, or a quiet log): plain INSERTs, cheaper than COPY for one row.</summary>
    private static void InsertOne(NpgsqlConnection connection, NpgsqlTransaction tx, long index, ReadOnlyMemory<byte> payload, byte[] leaf, AuditRecord r, List<(short Level, long Index, byte[] Hash)> nodes)
    {
        using var batch = new NpgsqlBatch(connection, tx);
        var entry = new NpgsqlBatchCommand("INSERT INTO har_audit.entries (idx, payload, leaf, kind, ts, event_type, entity_type, entity_id, actor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
        entry.Parameters.Add(new NpgsqlParameter<long> { TypedValue = index });
        entry.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>> { TypedValue = payload, NpgsqlDbType = NpgsqlDbType.Bytea });
        entry.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = leaf });
        entry.Parameters.Add(new NpgsqlParameter<short> { TypedValue = (short)r.Kind });
        entry.Parameters.Add(new NpgsqlParameter<long> { TypedValue = r.Timestamp.UtcTicks });
        entry.Parameters.Add(new NpgsqlParameter<string> { TypedValue = r.IndexEventType });
        entry.Parameters.Add(new NpgsqlParameter<string> { TypedValue = r.IndexEntityType });
        entry.Parameters.Add(new NpgsqlParameter<string> { TypedValue = r.IndexEntityId });
        entry.Parameters.Add(new NpgsqlParameter<string> { TypedValue = r.IndexActor });
        batch.BatchCommands.Add(entry);
        foreach (var (level, idx, hash) in nodes)
        {
            var node = new NpgsqlBatchCommand("INSERT INTO har_audit.nodes (level, idx, hash) VALUES ($1, $2, $3)");
            node.Parameters.Add(new NpgsqlParameter<short> { TypedValue = level });
            node.Parameters.Add(new NpgsqlParameter<long> { TypedValue = idx });
            node.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = hash });
            batch.BatchCommands.Add(node);
        }

        batch.ExecuteNonQuery();
    }

    /// <summary>Fails a batch (not acknowledged: its transaction did not commit, or its outcome is unknown). A lost connection makes the log unavailable until a probe query succeeds.</summary>
    private void Fail(List<Pending> batch, Exception ex)
    {
        // Connection lost, server shutting down (57P..), out of disk or memory (53...), I/O error (58...): unavailable until a probe answers.
        var connectionLost = ex is NpgsqlException { IsTransient: true } || (ex is NpgsqlException and not PostgresException) || ex is IOException or TimeoutException
            || (ex is PostgresException pg && (pg.SqlState.StartsWith("08", StringComparison.Ordinal) || pg.SqlState.StartsWith("53", StringComparison.Ordinal) || pg.SqlState.StartsWith("57", StringComparison.Ordinal) || pg.SqlState.StartsWith("58", StringComparison.Ordinal)));
        var failure = new AuditLogUnavailableException($"The audit log in {DisplayName} could not commit this append ({ex.Message}); it was not acknowledged.", ex);
        if (connectionLost)
        {
            lock (_gate)
            {
                _fault = ex;
                Volatile.Write(ref _state, (int)AuditLogState.Unavailable);
                // The first probe soon: a connection the server ended (a restart, an idle transaction ended, an administrator)
                // is often the only thing wrong, and the database answers at once (found from outside: a replica whose frozen
                // transaction the server had ended refused appends for 5 s after it resumed). Then every RetryInterval.
                _retryTimer ??= _time.CreateTimer(static s => ((PostgresAuditStore)s!).Probe(), this, FirstProbe(_options.RetryInterval), _options.RetryInterval);
            }

            _source.Clear(); // pooled connections to a restarted server are dead: never hand them out again
            Metrics?.Writable(false);
            Log.DatabaseUnavailable(_logger, DisplayName, _options.RetryInterval.TotalSeconds, ex);
        }

        foreach (var pending in batch)
        {
            if (pending.Completion.TrySetException(failure))
            {
                Metrics?.Failed(1);
            }
        }
    }

    /// <summary>When the first probe after a lost connection runs: 200 ms, or the retry interval when that is shorter.</summary>
    internal static TimeSpan FirstProbe(TimeSpan retryInterval) => retryInterval < TimeSpan.FromMilliseconds(200) ? retryInterval : TimeSpan.FromMilliseconds(200);

    private void Probe()
    {
        try
        {
            using var connection = _source.OpenConnection();
            using var command = new NpgsqlCommand("SELECT size FROM har_audit.head WHERE id = 1", connection);
            command.ExecuteScalar();
        }
        catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
        {
            Log.StillUnavailable(_logger, DisplayName, ex.Message);
            return;
        }

        lock (_gate)
        {
            _retryTimer?.Dispose();
            _retryTimer = null;
            _fault = null;
            Volatile.Write(ref _state, (int)AuditLogState.Writable);
        }

        Metrics?.Writable(true);
        Log.Writable(_logger, DisplayName);
    }

    private readonly record struct Pending(byte[] Canonical, AuditRecord Record, TaskCompletionSource<AuditAppendResult> Completion, bool Once = false);
}
