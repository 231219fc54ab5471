using Npgsql;
using NpgsqlTypes;

namespace Har.Deployment;

/// <summary>A registered version's files as the fleet's database holds them (nothing in it is trusted before it is checked against the audit log).</summary>
/// <param name="Version">The version.</param>
/// <param name="ModelSha256">The SHA-256 the row claims for the model bytes (its key in <c>har_fleet.model_files</c>).</param>
/// <param name="Model">The model bytes.</param>
/// <param name="Config">The card (<c>config.json</c>).</param>
/// <param name="Record">The deployment record (<c>deployment_record.json</c>).</param>
/// <param name="RegistryId">The registry folder that published it.</param>
internal sealed record SharedModelFiles(string Version, string ModelSha256, byte[] Model, byte[] Config, byte[] Record, string RegistryId);

/// <summary>The registered models' files in <c>har_fleet.models</c> and <c>har_fleet.model_files</c> (model bytes stored once per SHA-256).</summary>
internal sealed partial class FleetStore
{
    /// <summary>Gets the registered versions the database holds (unordered).</summary>
    public List<string> ListModelVersions() => Guard(() =>
    {
        var versions = new List<string>();
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("SELECT version FROM har_fleet.models", connection);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            versions.Add(reader.GetString(0));
        }

        return versions;
    });

    /// <summary>Lists the stored versions without their model bytes: version, model SHA-256, stored size, deployment record, and when it was stored.</summary>
    public List<(string Version, string Sha256, long Size, byte[] Record, DateTimeOffset WrittenAt)> ListModels() => Guard(() =>
    {
        var models = new List<(string, string, long, byte[], DateTimeOffset)>();
        if (SchemaVersion < 3)
        {
            return models;
        }

        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("SELECT m.version, m.model_sha256, f.size, m.record, m.written_at FROM har_fleet.models m JOIN har_fleet.model_files f ON f.sha256 = m.model_sha256", connection);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            models.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetFieldValue<byte[]>(3), reader.GetFieldValue<DateTimeOffset>(4)));
        }

        return models;
    });

    /// <summary>Gets the model SHA-256 the database holds for <paramref name="version"/>, or <see langword="null"/> when it holds none.</summary>
    public string? ReadModelSha256(string version) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("SELECT model_sha256 FROM har_fleet.models WHERE version = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = version });
        return command.ExecuteScalar() as string;
    });

    /// <summary>Reads a version's files, or <see langword="null"/> when the database holds none.</summary>
    public SharedModelFiles? ReadModel(string version) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand(
            "SELECT m.model_sha256, f.bytes, m.config, m.record, m.registry_id FROM har_fleet.models m JOIN har_fleet.model_files f ON f.sha256 = m.model_sha256 WHERE m.version = $1",
            connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = version });
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            return null;
        }

        return new SharedModelFiles(version, reader.GetString(0), reader.GetFieldValue<byte[]>(1), reader.GetFieldValue<byte[]>(2), reader.GetFieldValue<byte[]>(3), reader.GetString(4));
    });

    /// <summary>
    /// Stores a version's files unless the database holds the version already. Returns the model SHA-256 the database holds
    /// for the version afterwards: <paramref name="sha256"/> when these files were stored now or earlier, another one when a
    /// different model was registered under this version first (versions are immutable: nothing was overwritten).
    /// </summary>
    public string PublishModel(string version, string sha256, ReadOnlyMemory<byte> model, byte[] config, byte[] record, string registryId) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var tx = connection.BeginTransaction();
        using (var existing = new NpgsqlCommand("SELECT model_sha256 FROM har_fleet.models WHERE version = $1", connection, tx))
        {
            existing.Parameters.Add(new NpgsqlParameter<string> { TypedValue = version });
            if (existing.ExecuteScalar() is string held)
            {
                tx.Rollback();
                return held;
            }
        }

        // Content-addressed: a blob already stored under this hash is kept, unless its bytes are not the hash's (edited): then
        // these verified bytes replace them.
        using (var blob = new NpgsqlCommand(
            """
            INSERT INTO har_fleet.model_files AS f (sha256, bytes, size, stored_at) VALUES ($1, $2, $3, now())
            ON CONFLICT (sha256) DO UPDATE SET bytes = EXCLUDED.bytes, size = EXCLUDED.size, stored_at = EXCLUDED.stored_at
            WHERE sha256(f.bytes) <> sha256(EXCLUDED.bytes)
            """,
            connection,
            tx))
        {
            blob.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sha256 });
            blob.Parameters.Add(new NpgsqlParameter { Value = model, NpgsqlDbType = NpgsqlDbType.Bytea });
            blob.Parameters.Add(new NpgsqlParameter<long> { TypedValue = model.Length });
            blob.ExecuteNonQuery();
        }

        using (var row = new NpgsqlCommand(
            """
            INSERT INTO har_fleet.models (version, model_sha256, config, record, registry_id, written_by, written_at) VALUES ($1, $2, $3, $4, $5, $6, now())
            ON CONFLICT (version) DO NOTHING
            RETURNING model_sha256
            """,
            connection,
            tx))
        {
            row.Parameters.Add(new NpgsqlParameter<string> { TypedValue = version });
            row.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sha256 });
            row.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = config });
            row.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = record });
            row.Parameters.Add(new NpgsqlParameter<string> { TypedValue = registryId });
            row.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
            if (row.ExecuteScalar() is null)
            {
                // Another replica stored the version between the check and the insert.
                tx.Rollback();
                return ReadModelSha256(version) ?? sha256;
            }
        }

        tx.Commit();
        return sha256;
    });

    /// <summary>Removes a version this registry stored but could not finish registering (its audit registration was withdrawn).</summary>
    public void WithdrawModel(string version, string sha256, string registryId) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("DELETE FROM har_fleet.models WHERE version = $1 AND model_sha256 = $2 AND registry_id = $3", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = version });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sha256 });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = registryId });
        command.ExecuteNonQuery();
    });
}
