using System.Globalization;
using Npgsql;

namespace Har.Audit.Postgres;

/// <summary>
/// The audit log's tables in schema <c>har_audit</c>, created and migrated by the package. Applied migrations are
/// recorded in <c>har_audit.schema_migrations</c>; opening a log applies the missing ones under a transaction-scoped
/// advisory lock (so replicas starting together migrate once) and refuses a database whose schema is newer than the code.
/// </summary>
internal static class PostgresSchema
{
    public const string Name = "har_audit";

    /// <summary>Serialises migrations across processes (pg_advisory_xact_lock key: "HarAudit" in ASCII).</summary>
    private const long MigrationLockKey = 0x4861724175646974;

    /// <summary>The migrations, in order. Never edit a shipped one: add the next version.</summary>
    private static readonly (int Version, string Description, string Sql)[] Migrations =
    [
        (1, "audit log: head row (the sequencer), entries, Merkle nodes, signed checkpoints", """
            CREATE TABLE har_audit.head (
                id smallint PRIMARY KEY CHECK (id = 1),
                origin text NOT NULL,
                size bigint NOT NULL CHECK (size >= 0),
                last_leaf bytea NOT NULL CHECK (length(last_leaf) = 32),
                frontier bytea NOT NULL,
                created timestamptz NOT NULL);
            CREATE TABLE har_audit.entries (
                idx bigint PRIMARY KEY CHECK (idx >= 0),
                payload bytea NOT NULL,
                leaf bytea NOT NULL,
                kind smallint NOT NULL,
                ts bigint NOT NULL,
                event_type text NOT NULL,
                entity_type text NOT NULL,
                entity_id text NOT NULL,
                actor text NOT NULL);
            CREATE INDEX entries_event_type ON har_audit.entries (event_type, idx);
            CREATE INDEX entries_entity ON har_audit.entries (entity_type, entity_id, idx);
            CREATE INDEX entries_ts ON har_audit.entries (ts, idx);
            CREATE TABLE har_audit.nodes (
                level smallint NOT NULL CHECK (level BETWEEN 1 AND 62),
                idx bigint NOT NULL CHECK (idx >= 0),
                hash bytea NOT NULL,
                PRIMARY KEY (level, idx));
            CREATE TABLE har_audit.checkpoints (
                tree_size bigint PRIMARY KEY,
                note text NOT NULL,
                verifier_key text NOT NULL,
                created timestamptz NOT NULL);
            """),
    ];

    /// <summary>Gets the newest schema version this code knows.</summary>
    public static int CodeVersion => Migrations[^1].Version;

    /// <summary>Applies the missing migrations; throws when the database's schema is newer than <see cref="CodeVersion"/>.</summary>
    public static void Migrate(NpgsqlDataSource source, string database)
    {
        using var connection = source.OpenConnection();
        using var tx = connection.BeginTransaction();
        Execute(connection, tx, "SELECT pg_advisory_xact_lock(" + MigrationLockKey.ToString(CultureInfo.InvariantCulture) + ")");
        Execute(connection, tx, "CREATE SCHEMA IF NOT EXISTS har_audit; CREATE TABLE IF NOT EXISTS har_audit.schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
        var current = AppliedVersion(connection, tx);
        ThrowIfNewer(current, database);
        foreach (var (version, description, sql) in Migrations)
        {
            if (version <= current)
            {
                continue;
            }

            Execute(connection, tx, sql);
            using var record = new NpgsqlCommand("INSERT INTO har_audit.schema_migrations (version, description) VALUES ($1, $2)", connection, tx);
            record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
            record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = description });
            record.ExecuteNonQuery();
        }

        tx.Commit();
    }

    /// <summary>Checks, without changing anything, that the database holds a Har audit log this code can read.</summary>
    public static void CheckReadable(NpgsqlConnection connection, string database)
    {
        using (var exists = new NpgsqlCommand("SELECT to_regclass('har_audit.schema_migrations') IS NOT NULL AND to_regclass('har_audit.head') IS NOT NULL", connection))
        {
            if (exists.ExecuteScalar() is not true)
            {
                throw new InvalidDataException($"Database '{database}' holds no Har audit log (schema har_audit is missing): check the connection string, or open the log once with AuditLogOptions.ConnectionString to create it.");
            }
        }

        ThrowIfNewer(AppliedVersion(connection, null), database);
    }

    private static int AppliedVersion(NpgsqlConnection connection, NpgsqlTransaction? tx)
    {
        using var command = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM har_audit.schema_migrations", connection, tx);
        return Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static void ThrowIfNewer(int current, string database)
    {
        if (current > CodeVersion)
        {
            throw new InvalidOperationException(
                $"The audit schema in database '{database}' is at version {current}, newer than this Har.Audit ({typeof(PostgresSchema).Assembly.GetName().Version}) understands (up to version {CodeVersion}): "
                + "a newer Har.Audit migrated it. Upgrade this host's Har.Audit package; schemas are never downgraded.");
        }
    }

    private static void Execute(NpgsqlConnection connection, NpgsqlTransaction tx, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection, tx);
        command.ExecuteNonQuery();
    }
}
