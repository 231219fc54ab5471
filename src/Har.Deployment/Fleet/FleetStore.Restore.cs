using System.Globalization;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace Har.Deployment;

/// <summary>Restoring a backup into a fleet's database: the registry's files and pointer and the rollout state, into a database that holds none.</summary>
internal sealed partial class FleetStore
{
    /// <summary>Describes what the database holds of a registry or rollout (e.g. <c>2 registered versions, a current pointer (1.0.0)</c>), or <see langword="null"/> when it holds nothing.</summary>
    public string? DescribeContents() => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        return DescribeContents(connection, null);
    });

    /// <summary>
    /// Writes a verified backup's registry (each version's model bytes, card and record; the current pointer), rollout
    /// state (the active one and the finished ones) and labelled windows in one transaction, after checking again, inside
    /// it, that the database holds no registry or rollout.
    /// </summary>
    /// <exception cref="InvalidOperationException">The database holds a registry or rollout; nothing was written.</exception>
    public void Restore(IReadOnlyList<SharedModelFiles> models, string? current, RolloutState? state, IReadOnlyList<RolloutState> history, IReadOnlyList<ShippedLabel> labelled) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var tx = connection.BeginTransaction();
        using (var lockTables = new NpgsqlCommand("LOCK TABLE har_fleet.models, har_fleet.registry_current, har_fleet.rollout, har_fleet.rollout_history IN EXCLUSIVE MODE", connection, tx))
        {
            lockTables.ExecuteNonQuery();
        }

        if (DescribeContents(connection, tx) is { } found)
        {
            throw new InvalidOperationException($"{Display} already holds {found}; a backup is restored into a database without a registry or rollout only. Restore into a new, empty database.");
        }

        foreach (var model in models)
        {
            using var blob = new NpgsqlCommand("INSERT INTO har_fleet.model_files (sha256, bytes, size, stored_at) VALUES ($1, $2, $3, now()) ON CONFLICT (sha256) DO UPDATE SET bytes = EXCLUDED.bytes, size = EXCLUDED.size, stored_at = EXCLUDED.stored_at", connection, tx);
            blob.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model.ModelSha256 });
            blob.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = model.Model });
            blob.Parameters.Add(new NpgsqlParameter<long> { TypedValue = model.Model.LongLength });
            blob.ExecuteNonQuery();
            using var row = new NpgsqlCommand("INSERT INTO har_fleet.models (version, model_sha256, config, record, registry_id, written_by, written_at) VALUES ($1, $2, $3, $4, $5, $6, now())", connection, tx);
            row.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model.Version });
            row.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model.ModelSha256 });
            row.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = model.Config });
            row.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = model.Record });
            row.Parameters.Add(new NpgsqlParameter<string> { TypedValue = model.RegistryId });
            row.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
            row.ExecuteNonQuery();
        }

        if (current is not null)
        {
            using var pointer = new NpgsqlCommand("INSERT INTO har_fleet.registry_current (id, version, revision, written_by, written_at) VALUES (1, $1, 1, $2, now())", connection, tx);
            pointer.Parameters.Add(new NpgsqlParameter<string> { TypedValue = current });
            pointer.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
            pointer.ExecuteNonQuery();
        }

        if (state is not null)
        {
            using var write = new NpgsqlCommand("INSERT INTO har_fleet.rollout (id, revision, rollout_id, phase, state, written_by, written_at) VALUES (1, $1, $2, $3, $4, $5, now())", connection, tx);
            write.Parameters.Add(new NpgsqlParameter<long> { TypedValue = state.Revision });
            write.Parameters.Add(new NpgsqlParameter<string> { TypedValue = state.RolloutId });
            write.Parameters.Add(new NpgsqlParameter<string> { TypedValue = state.Phase.ToString() });
            write.Parameters.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(state, RolloutStateStore.Json), NpgsqlDbType = NpgsqlDbType.Jsonb });
            write.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
            write.ExecuteNonQuery();
        }

        foreach (var finished in history)
        {
            using var archive = new NpgsqlCommand("INSERT INTO har_fleet.rollout_history (rollout_id, revision, phase, state, archived_at) VALUES ($1, $2, $3, $4, now())", connection, tx);
            archive.Parameters.Add(new NpgsqlParameter<string> { TypedValue = finished.RolloutId });
            archive.Parameters.Add(new NpgsqlParameter<long> { TypedValue = finished.Revision });
            archive.Parameters.Add(new NpgsqlParameter<string> { TypedValue = finished.Phase.ToString() });
            archive.Parameters.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(finished, RolloutStateStore.Json), NpgsqlDbType = NpgsqlDbType.Jsonb });
            archive.ExecuteNonQuery();
        }

        if (labelled.Count > 0)
        {
            // An id each (a journal of an earlier release may lack them), so a replica's own later rows never collide.
            InsertLabelledWindows(connection, tx, [.. labelled.Select(w => w.Id is null ? w with { Id = Guid.NewGuid().ToString("N") } : w)]);
        }

        Notify(connection, tx, state?.Revision ?? -1);
        tx.Commit();
    });

    private static string? DescribeContents(NpgsqlConnection connection, NpgsqlTransaction? tx)
    {
        using var command = new NpgsqlCommand(
            "SELECT (SELECT count(*) FROM har_fleet.models), (SELECT version FROM har_fleet.registry_current WHERE id = 1), (SELECT rollout_id FROM har_fleet.rollout WHERE id = 1), (SELECT count(*) FROM har_fleet.rollout_history)",
            connection,
            tx);
        using var reader = command.ExecuteReader();
        reader.Read();
        var parts = new List<string>();
        if (reader.GetInt64(0) is > 0 and var versions)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{versions} registered version(s)"));
        }

        if (!reader.IsDBNull(1))
        {
            parts.Add($"a current pointer ({reader.GetString(1)})");
        }

        if (!reader.IsDBNull(2))
        {
            parts.Add($"a rollout state (rollout {reader.GetString(2)})");
        }

        if (reader.GetInt64(3) is > 0 and var finished)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{finished} finished rollout(s)"));
        }

        return parts.Count == 0 ? null : string.Join(", ", parts);
    }
}
