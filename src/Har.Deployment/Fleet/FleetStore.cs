using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace Har.Deployment;

/// <summary>The rollout state's store: <c>rollout.json</c> in one process, or PostgreSQL shared by a fleet.</summary>
internal interface IRolloutStateStore
{
    /// <summary>Gets where the state lives (for messages and diagnostics).</summary>
    string StatePath { get; }

    /// <summary>Reads the state, or <see langword="null"/> when there has been no rollout.</summary>
    RolloutState? Load();

    /// <summary>Writes <paramref name="state"/>, whose revision is one more than the stored one's.</summary>
    /// <exception cref="RolloutStateConflictException">Another writer changed the state first (shared stores only); nothing was written.</exception>
    void Save(RolloutState state);

    /// <summary>Keeps a finished rollout's final state before a new rollout replaces it.</summary>
    void Archive(RolloutState state);

    /// <summary>Reads the final state of the archived rollout <paramref name="rolloutId"/>, or <see langword="null"/> when there is none.</summary>
    RolloutState? LoadArchived(string rolloutId);
}

/// <summary>A compare-and-set on the shared rollout state lost the race: the state was not written; re-read it.</summary>
internal sealed class RolloutStateConflictException(string message) : Exception(message);

/// <summary>
/// The control plane of a fleet in PostgreSQL (schema <c>har_fleet</c>): the rollout state replaced by compare-and-set on
/// its revision (and a <c>NOTIFY har_fleet</c> in the same transaction, so every replica hears of it at commit), the
/// registry's <c>current</c> pointer with its own revision, and the controller lease (a row with holder, term and expiry,
/// judged on the database's clock so replicas' clocks never matter).
/// </summary>
internal sealed partial class FleetStore : IRolloutStateStore, IDisposable
{
    /// <summary>The channel every state change is announced on (payload: the new revision).</summary>
    public const string Channel = "har_fleet";

    private readonly NpgsqlDataSource _source;

    private FleetStore(NpgsqlDataSource source, string display, string holder)
    {
        _source = source;
        StatePath = display + "#har_fleet.rollout";
        Display = display;
        Holder = holder;
    }

    /// <summary>Gets this replica's name in the lease and in written rows (host, process id and a random suffix).</summary>
    public string Holder { get; }

    /// <summary>Gets <c>postgresql://host/database</c> (no credentials).</summary>
    public string Display { get; }

    public string StatePath { get; }

    /// <summary>Connects, creates or migrates the schema, and refuses a schema newer than the code.</summary>
    public static FleetStore Open(string connectionString)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"RolloutControllerOptions.ConnectionString is not a valid Npgsql connection string ({ex.Message}); expected e.g. 'Host=db;Database=har;Username=har;Password=...'.", ex);
        }

        var database = builder.Database ?? builder.Username ?? "postgres";
        var display = $"postgresql://{builder.Host}/{database}";
        var source = NpgsqlDataSource.Create(builder);
        try
        {
            FleetSchema.Migrate(source, database);
        }
        catch (NpgsqlException ex)
        {
            source.Dispose();
            throw new IOException($"The rollout control plane in {display} cannot be opened: {ex.Message.TrimEnd().TrimEnd('.')}. Check that PostgreSQL is reachable and the connection string (RolloutControllerOptions.ConnectionString) is right.", ex);
        }
        catch
        {
            source.Dispose();
            throw;
        }

        var holder = string.Create(CultureInfo.InvariantCulture, $"{Environment.MachineName}/{Environment.ProcessId}/{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}");
        return new FleetStore(source, display, holder);
    }

    /// <summary>
    /// Connects to a fleet's database to read it (the command line's read commands): nothing is created or migrated (a
    /// newer tool must not move the fleet's schema ahead of its replicas), and a database without the fleet's schema, or
    /// with one newer than the code, is refused with a clear error.
    /// </summary>
    public static FleetStore OpenExisting(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var database = builder.Database ?? builder.Username ?? "postgres";
        var display = $"postgresql://{builder.Host}/{database}";
        var source = NpgsqlDataSource.Create(builder);
        try
        {
            var version = FleetSchema.ReadVersion(source);
            if (version == 0)
            {
                throw new InvalidOperationException($"{display} holds no fleet state (no har_fleet schema): no replica with this connection string has started yet.");
            }

            if (version > FleetSchema.CodeVersion)
            {
                throw new InvalidOperationException($"The control-plane schema (har_fleet) in {display} is at version {version}, newer than this Har.Deployment understands (up to version {FleetSchema.CodeVersion}); use the fleet's own version of the tool.");
            }

            return new FleetStore(source, display, $"{Environment.MachineName}/{Environment.ProcessId}/reader") { SchemaVersion = version };
        }
        catch (NpgsqlException ex)
        {
            source.Dispose();
            throw new IOException($"{display} cannot be read: {ex.Message} Check that PostgreSQL is reachable and the connection string is right.", ex);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Gets the schema version found by <see cref="OpenExisting"/> (the code's version when the store migrated it).</summary>
    public int SchemaVersion { get; private init; } = FleetSchema.CodeVersion;

    /// <summary>Reads the controller lease: its holder, term and expiry, and whether it is still valid on the database's clock; <see langword="null"/> when no replica ever led.</summary>
    public (string Holder, long Term, DateTimeOffset ExpiresAt, bool Valid)? ReadLease() => Guard<(string, long, DateTimeOffset, bool)?>(() =>
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("SELECT holder, term, expires_at, expires_at > now() FROM har_fleet.leader WHERE id = 1", connection);
        using var reader = command.ExecuteReader();
        return reader.Read() ? (reader.GetString(0), reader.GetInt64(1), reader.GetFieldValue<DateTimeOffset>(2), reader.GetBoolean(3)) : null;
    });

    /// <summary>Opens a dedicated connection (the LISTEN connection of the follower loop).</summary>
    public ValueTask<NpgsqlConnection> OpenConnectionAsync(CancellationToken ct) => _source.OpenConnectionAsync(ct);

    public RolloutState? Load() => Guard(LoadCore);

    /// <summary>Replaces the state when the stored revision is the one before <paramref name="state"/>'s (or there is none); announces it.</summary>
    public void Save(RolloutState state) => Guard(() => SaveCore(state));

    public void Archive(RolloutState state) => Guard(() => ArchiveCore(state));

    /// <inheritdoc />
    public RolloutState? LoadArchived(string rolloutId) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("SELECT state::text FROM har_fleet.rollout_history WHERE rollout_id = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = rolloutId });
        return command.ExecuteScalar() is string json ? JsonSerializer.Deserialize<RolloutState>(json, RolloutStateStore.Json) : null;
    });

    /// <summary>Reads the state's revision (0 when there is none) and the current pointer in one round trip: what a follower polls.</summary>
    public (long Revision, string? Current, long CurrentRevision) ReadHead() => Guard(ReadHeadCore);

    /// <summary>
    /// Moves the current pointer from revision <paramref name="expectedRevision"/> (0: no pointer yet) to <paramref name="version"/>.
    /// Returns whether it was written; when it was not, another replica moved it first.
    /// </summary>
    /// <summary>
    /// Moves the shared current pointer from <paramref name="expectedRevision"/>; with <paramref name="rolloutRevision"/>, only
    /// while the rollout state is at that revision (its row is locked meanwhile, so no state write slips in between).
    /// </summary>
    public bool TryWriteCurrent(string version, long expectedRevision, long? rolloutRevision = null) => Guard(() => TryWriteCurrentCore(version, expectedRevision, rolloutRevision));

    /// <summary>
    /// Takes or renews the controller lease for <paramref name="duration"/> (on the database's clock). Returns the term
    /// held, or <see langword="null"/> when another replica holds an unexpired lease. A lease taken anew (free, expired, or
    /// this replica's own that expired) gets the next term.
    /// </summary>
    public long? TryAcquireLease(TimeSpan duration) => Guard(() => TryAcquireLeaseCore(duration));

    /// <summary>Gives the lease up (a clean shutdown), so another replica takes over at its next attempt instead of after the expiry.</summary>
    public void ReleaseLease() => Guard(ReleaseLeaseCore);

    /// <summary>
    /// Renews this replica's heartbeat until <paramref name="ttl"/> from now (on the database's clock); rows of replicas
    /// silent for an hour are removed on the way. Returns the database's clock at the write.
    /// </summary>
    public DateTimeOffset Heartbeat(TimeSpan ttl) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand(
            """
            INSERT INTO har_fleet.replicas AS r (replica, started_at, seen_at, expires_at) VALUES ($1, now(), now(), now() + make_interval(secs => $2))
            ON CONFLICT (replica) DO UPDATE SET seen_at = EXCLUDED.seen_at, expires_at = EXCLUDED.expires_at
            RETURNING seen_at
            """,
            connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
        command.Parameters.Add(new NpgsqlParameter<double> { TypedValue = ttl.TotalSeconds });
        var seen = command.ExecuteScalar() is DateTime at ? new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc)) : DateTimeOffset.MinValue;
        using var prune = new NpgsqlCommand("DELETE FROM har_fleet.replicas WHERE expires_at < now() - interval '1 hour'", connection);
        prune.ExecuteNonQuery();
        return seen;
    });

    /// <summary>Removes this replica's heartbeat (a clean shutdown): it stops counting as live at once.</summary>
    public void Leave() => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("DELETE FROM har_fleet.replicas WHERE replica = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
        command.ExecuteNonQuery();
    });

    /// <summary>Counts the replicas whose heartbeat has not expired (on the database's clock).</summary>
    public int CountLiveReplicas() => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("SELECT count(*) FROM har_fleet.replicas WHERE expires_at > now()", connection);
        return Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    });

    /// <summary>Ships a replica's observations of rollout <paramref name="rolloutId"/> to the leader.</summary>
    public void WriteObservations(string rolloutId, ObservationDelta delta) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("INSERT INTO har_fleet.observations (replica, rollout_id, payload, written_at) VALUES ($1, $2, $3, now())", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = rolloutId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(delta, RolloutStateStore.Json), NpgsqlDbType = NpgsqlDbType.Jsonb });
        command.ExecuteNonQuery();
    });

    /// <summary>Forwards feedback labels this replica received to the others (each joins them to the windows it holds); rows older than an hour are pruned.</summary>
    public void WriteLabels(IReadOnlyList<ForwardedLabel> labels) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using (var prune = new NpgsqlCommand("DELETE FROM har_fleet.feedback_labels WHERE written_at < now() - interval '1 hour'", connection))
        {
            prune.ExecuteNonQuery();
        }

        // Rows must become visible in the order of their ids (readers read on from the last id they saw): two writers
        // that took ids 10 and 11 and committed 11 first lost row 10 to every reader that read in between.
        using var tx = connection.BeginTransaction();
        LockWriters(connection, tx, FeedbackLabelsLockKey);
        using var command = new NpgsqlCommand("INSERT INTO har_fleet.feedback_labels (replica, payload, written_at) VALUES ($1, $2, now())", connection, tx);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(labels, RolloutStateStore.Json), NpgsqlDbType = NpgsqlDbType.Jsonb });
        command.ExecuteNonQuery();
        tx.Commit();
    });

    /// <summary>
    /// Serialises the writers of a table that readers read incrementally by id (a transaction-scoped advisory lock):
    /// a writer takes its ids while it holds the lock and releases it at commit, so rows become visible in the order of
    /// their ids, and a reader that has read up to an id never misses a row committed later with a smaller one.
    /// </summary>
    internal static void LockWriters(NpgsqlConnection connection, NpgsqlTransaction tx, long key)
    {
        using var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, tx);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = key });
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// The labels other replicas forwarded after row <paramref name="after"/> (and the last row id seen; the first call,
    /// with −1, skips what is already there and only returns that id).
    /// </summary>
    public (long Last, List<ForwardedLabel> Labels) ReadLabels(long after) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        var labels = new List<ForwardedLabel>();
        if (after < 0)
        {
            using var last = new NpgsqlCommand("SELECT coalesce(max(id), 0) FROM har_fleet.feedback_labels", connection);
            return (Convert.ToInt64(last.ExecuteScalar(), CultureInfo.InvariantCulture), labels);
        }

        using var command = new NpgsqlCommand("SELECT id, replica, payload::text FROM har_fleet.feedback_labels WHERE id > $1 ORDER BY id", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = after });
        using var reader = command.ExecuteReader();
        var seen = after;
        while (reader.Read())
        {
            seen = reader.GetInt64(0);
            if (reader.GetString(1) != Holder && JsonSerializer.Deserialize<List<ForwardedLabel>>(reader.GetString(2), RolloutStateStore.Json) is { } rows)
            {
                labels.AddRange(rows);
            }
        }

        return (seen, labels);
    });

    /// <summary>Takes (deletes and returns) every replica's shipped observations of rollout <paramref name="rolloutId"/>; those of other rollouts are dropped.</summary>
    public List<ObservationDelta> TakeObservations(string rolloutId) => Guard(() =>
    {
        var taken = new List<ObservationDelta>();
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("DELETE FROM har_fleet.observations RETURNING rollout_id, payload::text", connection);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            if (reader.GetString(0) == rolloutId && JsonSerializer.Deserialize<ObservationDelta>(reader.GetString(1), RolloutStateStore.Json) is { } delta)
            {
                taken.Add(delta);
            }
        }

        return taken;
    });

    private RolloutState? LoadCore()
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("SELECT state::text FROM har_fleet.rollout WHERE id = 1", connection);
        if (command.ExecuteScalar() is not string json)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<RolloutState>(json, RolloutStateStore.Json)
                ?? throw new InvalidDataException($"{StatePath} holds null; expected a rollout state object.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{StatePath} is not a valid rollout state ({ex.Message}); only Har.Deployment writes it, so this means it was edited by hand.", ex);
        }
    }

    private void SaveCore(RolloutState state)
    {
        var expected = state.Revision - 1;
        using var connection = _source.OpenConnection();
        using var tx = connection.BeginTransaction();
        BoundIdleTransaction(connection, tx);
        using (var write = new NpgsqlCommand(
            """
            INSERT INTO har_fleet.rollout AS r (id, revision, rollout_id, phase, state, written_by, written_at)
            VALUES (1, $1, $2, $3, $4, $5, now())
            ON CONFLICT (id) DO UPDATE SET revision = EXCLUDED.revision, rollout_id = EXCLUDED.rollout_id, phase = EXCLUDED.phase,
                state = EXCLUDED.state, written_by = EXCLUDED.written_by, written_at = EXCLUDED.written_at
            WHERE r.revision = $6
            """,
            connection,
            tx))
        {
            write.Parameters.Add(new NpgsqlParameter<long> { TypedValue = state.Revision });
            write.Parameters.Add(new NpgsqlParameter<string> { TypedValue = state.RolloutId });
            write.Parameters.Add(new NpgsqlParameter<string> { TypedValue = state.Phase.ToString() });
            write.Parameters.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(state, RolloutStateStore.Json), NpgsqlDbType = NpgsqlDbType.Jsonb });
            write.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
            write.Parameters.Add(new NpgsqlParameter<long> { TypedValue = expected });
            if (write.ExecuteNonQuery() != 1)
            {
                tx.Rollback();
                throw new RolloutStateConflictException($"The rollout state in {StatePath} is no longer at revision {expected}: another replica changed it first, so revision {state.Revision} of rollout {state.RolloutId} was not written.");
            }
        }

        Notify(connection, tx, state.Revision);
        tx.Commit();
    }

    private void ArchiveCore(RolloutState state)
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand(
            """
            INSERT INTO har_fleet.rollout_history (rollout_id, revision, phase, state, archived_at) VALUES ($1, $2, $3, $4, now())
            ON CONFLICT (rollout_id) DO UPDATE SET revision = EXCLUDED.revision, phase = EXCLUDED.phase, state = EXCLUDED.state, archived_at = EXCLUDED.archived_at
            WHERE har_fleet.rollout_history.revision <= EXCLUDED.revision
            """,
            connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = state.RolloutId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = state.Revision });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = state.Phase.ToString() });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(state, RolloutStateStore.Json), NpgsqlDbType = NpgsqlDbType.Jsonb });
        command.ExecuteNonQuery();
    }

    private (long Revision, string? Current, long CurrentRevision) ReadHeadCore()
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand(
            "SELECT (SELECT revision FROM har_fleet.rollout WHERE id = 1), c.version, c.revision FROM (SELECT 1) AS one LEFT JOIN har_fleet.registry_current c ON c.id = 1",
            connection);
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.IsDBNull(0) ? 0 : reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.IsDBNull(2) ? 0 : reader.GetInt64(2));
    }

    private bool TryWriteCurrentCore(string version, long expectedRevision, long? rolloutRevision)
    {
        using var connection = _source.OpenConnection();
        using var tx = connection.BeginTransaction();
        BoundIdleTransaction(connection, tx);
        if (rolloutRevision is { } expectedState)
        {
            using var state = new NpgsqlCommand("SELECT revision FROM har_fleet.rollout WHERE id = 1 FOR SHARE", connection, tx);
            if (state.ExecuteScalar() is not long current || current != expectedState)
            {
                tx.Rollback();
                return false;
            }
        }

        using (var command = new NpgsqlCommand(
            """
            INSERT INTO har_fleet.registry_current AS c (id, version, revision, written_by, written_at) VALUES (1, $1, 1, $2, now())
            ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, revision = c.revision + 1, written_by = EXCLUDED.written_by, written_at = EXCLUDED.written_at
            WHERE c.revision = $3
            """,
            connection,
            tx))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = version });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = expectedRevision });
            if (command.ExecuteNonQuery() != 1)
            {
                tx.Rollback();
                return false;
            }
        }

        Notify(connection, tx, -1);
        tx.Commit();
        return true;
    }

    private long? TryAcquireLeaseCore(TimeSpan duration)
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand(
            """
            INSERT INTO har_fleet.leader AS l (id, holder, term, acquired_at, expires_at) VALUES (1, $1, 1, now(), now() + make_interval(secs => $2))
            ON CONFLICT (id) DO UPDATE SET
                term = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.term ELSE l.term + 1 END,
                acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.acquired_at ELSE now() END,
                holder = EXCLUDED.holder,
                expires_at = EXCLUDED.expires_at
            WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
            RETURNING term
            """,
            connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
        command.Parameters.Add(new NpgsqlParameter<double> { TypedValue = duration.TotalSeconds });
        return command.ExecuteScalar() is long term ? term : null;
    }

    private void ReleaseLeaseCore()
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("UPDATE har_fleet.leader SET expires_at = now() WHERE id = 1 AND holder = $1 AND expires_at > now()", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
        command.ExecuteNonQuery();
    }

    public void Dispose() => _source.Dispose();

    /// <summary>
    /// Ends the transaction on the server if its client goes quiet inside it for 15 s, releasing its row locks. Found from
    /// outside: a replica frozen (SIGSTOP) inside a write held its lock, and every other replica's writes waited behind it;
    /// the frozen writer's commit then fails, so nothing it did is acknowledged.
    /// </summary>
    internal static void BoundIdleTransaction(NpgsqlConnection connection, NpgsqlTransaction tx)
    {
        using var set = new NpgsqlCommand("SET LOCAL idle_in_transaction_session_timeout = '15s'", connection, tx);
        set.ExecuteNonQuery();
    }

    /// <summary>An unreachable database is an I/O failure (hosts answer 503 and retry); nothing else is translated.</summary>
    private T Guard<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (NpgsqlException ex)
        {
            throw new IOException($"The rollout control plane in {Display} cannot be reached: {ex.Message} Nothing was changed by this call; it is retried once PostgreSQL answers again.", ex);
        }
    }

    private void Guard(Action action) => Guard(() =>
    {
        action();
        return true;
    });

    private static void Notify(NpgsqlConnection connection, NpgsqlTransaction tx, long revision)
    {
        using var notify = new NpgsqlCommand("SELECT pg_notify('" + Channel + "', $1)", connection, tx);
        notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = revision.ToString(CultureInfo.InvariantCulture) });
        notify.ExecuteNonQuery();
    }
}
