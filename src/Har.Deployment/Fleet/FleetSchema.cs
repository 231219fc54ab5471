using System.Globalization;
using Npgsql;

namespace Har.Deployment;

/// <summary>
/// The control plane's tables in schema <c>har_fleet</c>, created and migrated by the package: the rollout state (one row,
/// replaced by compare-and-set on its revision), finished rollouts, the registry's <c>current</c> pointer, the
/// controller lease, the observations every replica ships to the leader and the registered models' files (model bytes
/// stored once per SHA-256, each version's card and deployment record), replica heartbeats, the feedback labels replicas forward to each other, the windows they labelled, and each device's drift state. Applied migrations are recorded in <c>har_fleet.schema_migrations</c>; opening a controller applies
/// the missing ones under a transaction-scoped advisory lock (replicas starting together migrate once) and refuses a
/// database whose schema is newer than the code.
/// </summary>
internal static class FleetSchema
{
    /// <summary>Serialises migrations across processes (pg_advisory_xact_lock key: "HarFleet" in ASCII).</summary>
    private const long MigrationLockKey = 0x486172466C656574;

    /// <summary>The migrations, in order. Never edit a shipped one: add the next version.</summary>
    private static readonly (int Version, string Description, string Sql)[] Migrations =
    [
        (1, "control plane: rollout state (compare-and-set on revision), rollout history, registry current pointer, controller lease", """
            CREATE TABLE har_fleet.rollout (
                id smallint PRIMARY KEY CHECK (id = 1),
                revision bigint NOT NULL CHECK (revision >= 0),
                rollout_id text NOT NULL,
                phase text NOT NULL,
                state jsonb NOT NULL,
                written_by text NOT NULL,
                written_at timestamptz NOT NULL);
            CREATE TABLE har_fleet.rollout_history (
                rollout_id text PRIMARY KEY,
                revision bigint NOT NULL,
                phase text NOT NULL,
                state jsonb NOT NULL,
                archived_at timestamptz NOT NULL);
            CREATE TABLE har_fleet.registry_current (
                id smallint PRIMARY KEY CHECK (id = 1),
                version text NOT NULL,
                revision bigint NOT NULL CHECK (revision >= 1),
                written_by text NOT NULL,
                written_at timestamptz NOT NULL);
            CREATE TABLE har_fleet.leader (
                id smallint PRIMARY KEY CHECK (id = 1),
                holder text NOT NULL,
                term bigint NOT NULL CHECK (term >= 1),
                acquired_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL);
            """),
        (2, "per-interval observations shipped by every replica, summed by the leader's analysis", """
            CREATE TABLE har_fleet.observations (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                replica text NOT NULL,
                rollout_id text NOT NULL,
                payload jsonb NOT NULL,
                written_at timestamptz NOT NULL);
            """),
        (3, "model files shared by the fleet: content-addressed model bytes (SHA-256) and each registered version's card and deployment record", """
            CREATE TABLE har_fleet.model_files (
                sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
                bytes bytea NOT NULL,
                size bigint NOT NULL CHECK (size >= 0),
                stored_at timestamptz NOT NULL);
            CREATE TABLE har_fleet.models (
                version text PRIMARY KEY,
                model_sha256 text NOT NULL REFERENCES har_fleet.model_files (sha256),
                config bytea NOT NULL,
                record bytea NOT NULL,
                registry_id text NOT NULL,
                written_by text NOT NULL,
                written_at timestamptz NOT NULL);
            """),
        (4, "replica heartbeats: every replica renews its row with its lease attempt, so the leader counts the live replicas", """
            CREATE TABLE har_fleet.replicas (
                replica text PRIMARY KEY,
                started_at timestamptz NOT NULL,
                seen_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL);
            """),
        (5, "feedback labels forwarded between replicas: a label joins the windows of its stream where they are held, whichever replica received it", """
            CREATE TABLE har_fleet.feedback_labels (
                id bigserial PRIMARY KEY,
                replica text NOT NULL,
                payload jsonb NOT NULL,
                written_at timestamptz NOT NULL);
            """),
        (6, "labelled windows every replica writes (the true activity and each version's answer, by name), so the leader's accuracy gate survives a failover; the newest are kept", """
            CREATE TABLE har_fleet.labelled_windows (
                id bigserial PRIMARY KEY,
                replica text NOT NULL,
                payload jsonb NOT NULL,
                written_at timestamptz NOT NULL);
            """),
        (7, "each labelled window once: a write retried after its reply was lost (it had committed) adds nothing", """
            ALTER TABLE har_fleet.labelled_windows ADD COLUMN window_id text;
            CREATE UNIQUE INDEX labelled_windows_window_id ON har_fleet.labelled_windows (window_id);
            """),
        (8, "each device's drift state, shared by the replicas, so that it follows a device the proxy moves to another replica; rows not saved for the retention period are pruned", """
            CREATE TABLE har_fleet.drift_devices (
                device_id text PRIMARY KEY,
                profile_hash text NOT NULL,
                saved_at timestamptz NOT NULL,
                replica text NOT NULL,
                state bytea NOT NULL);
            CREATE INDEX drift_devices_saved_at ON har_fleet.drift_devices (saved_at);
            """),
        (9, "the newest evidence of a device's drift state wins, not the last save: each row records when the device's newest frame in it arrived", """
            -- A replica not yet upgraded (a rolling upgrade) inserts without the column: its rows lose to any upgraded save.
            ALTER TABLE har_fleet.drift_devices ADD COLUMN observed_at timestamptz NOT NULL DEFAULT '1970-01-01 00:00:00+00';
            UPDATE har_fleet.drift_devices SET observed_at = saved_at;
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
        Execute(connection, tx, "CREATE SCHEMA IF NOT EXISTS har_fleet; CREATE TABLE IF NOT EXISTS har_fleet.schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
        int current;
        using (var read = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM har_fleet.schema_migrations", connection, tx))
        {
            current = Convert.ToInt32(read.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        if (current > CodeVersion)
        {
            throw new InvalidOperationException(
                $"The control-plane schema (har_fleet) in database '{database}' is at version {current}, newer than this Har.Deployment ({typeof(FleetSchema).Assembly.GetName().Version}) understands (up to version {CodeVersion}): "
                + "a newer Har.Deployment migrated it. Upgrade this host's Har.Deployment package (every replica of a fleet runs the same version); schemas are never downgraded.");
        }

        foreach (var (version, description, sql) in Migrations)
        {
            if (version <= current)
            {
                continue;
            }

            Execute(connection, tx, sql);
            using var record = new NpgsqlCommand("INSERT INTO har_fleet.schema_migrations (version, description) VALUES ($1, $2)", connection, tx);
            record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = version });
            record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = description });
            record.ExecuteNonQuery();
        }

        tx.Commit();
    }

    /// <summary>Reads the applied schema version without changing anything (0 when the schema does not exist).</summary>
    public static int ReadVersion(NpgsqlDataSource source)
    {
        using var connection = source.OpenConnection();
        using var exists = new NpgsqlCommand("SELECT to_regclass('har_fleet.schema_migrations') IS NOT NULL", connection);
        if (exists.ExecuteScalar() is not true)
        {
            return 0;
        }

        using var read = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM har_fleet.schema_migrations", connection);
        return Convert.ToInt32(read.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static void Execute(NpgsqlConnection connection, NpgsqlTransaction tx, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection, tx);
        command.ExecuteNonQuery();
    }
}
