using System.Runtime.InteropServices;
using Har.Drift;
using Npgsql;
using NpgsqlTypes;

namespace Har.Deployment;

/// <summary>
/// Each device's drift state (<c>har_fleet.drift_devices</c>, one row a device): every replica upserts the devices it
/// monitors and reads those that are new to it, so a device's alarm and history follow it to whichever replica the
/// proxy sends it.
/// </summary>
internal sealed partial class FleetStore
{
    /// <summary>The advisory lock of the pruning of drift state rows ("HarDrift" in ASCII): one replica prunes at a time.</summary>
    private const long DriftPruneLockKey = 0x4861724472696674;

    /// <summary>The most devices written or read in one statement (a full history is about 250 KB).</summary>
    private const int DriftBatch = 64;

    /// <summary>Reads the stored drift state of the given devices (those without a row are left out).</summary>
    public List<DriftStateRecord> LoadDriftDevices(IReadOnlyList<string> deviceIds) => Guard(() =>
    {
        var records = new List<DriftStateRecord>();
        using var connection = _source.OpenConnection();
        for (var start = 0; start < deviceIds.Count; start += DriftBatch)
        {
            var ids = new string[Math.Min(DriftBatch, deviceIds.Count - start)];
            for (var i = 0; i < ids.Length; i++)
            {
                ids[i] = deviceIds[start + i];
            }

            using var command = new NpgsqlCommand("SELECT device_id, profile_hash, saved_at, state, observed_at FROM har_fleet.drift_devices WHERE device_id = ANY($1)", connection);
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = ids });
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                records.Add(new DriftStateRecord(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2), reader.GetFieldValue<byte[]>(3), reader.GetFieldValue<DateTimeOffset>(4)));
            }
        }

        return records;
    });

    /// <summary>
    /// Upserts drift state rows, in statements of <see cref="DriftBatch"/> devices; a row whose evidence is newer than the
    /// record's (its <c>observed_at</c> later than the record's <see cref="DriftStateRecord.LastObservedAt"/>) is kept.
    /// Before, the last writer won: a replica evicting a device the proxy had moved away minutes earlier saved its old
    /// state over the newer one the device's new replica had saved.
    /// </summary>
    /// <returns>The records not stored because the row held newer evidence.</returns>
    public int SaveDriftDevices(IReadOnlyList<DriftStateRecord> records) => Guard(() =>
    {
        // One row a device per statement (ON CONFLICT DO UPDATE cannot touch a row twice): the newest record of a device.
        var latest = new Dictionary<string, DriftStateRecord>(StringComparer.Ordinal);
        foreach (var record in records)
        {
            if (!latest.TryGetValue(record.DeviceId, out var held) || held.LastObservedAt <= record.LastObservedAt)
            {
                latest[record.DeviceId] = record;
            }
        }

        var rows = latest.Values.ToArray();
        var kept = records.Count - rows.Length;
        using var connection = _source.OpenConnection();
        for (var start = 0; start < rows.Length; start += DriftBatch)
        {
            var n = Math.Min(DriftBatch, rows.Length - start);
            var (ids, profiles, savedAt, observedAt, states) = (new string[n], new string[n], new DateTime[n], new DateTime[n], new byte[n][]);
            for (var i = 0; i < n; i++)
            {
                var r = rows[start + i];
                (ids[i], profiles[i], savedAt[i], observedAt[i], states[i]) = (r.DeviceId, r.ProfileHash, r.SavedAt.UtcDateTime, r.LastObservedAt.UtcDateTime, WholeArray(r.State));
            }

            using var command = new NpgsqlCommand(
                """
                INSERT INTO har_fleet.drift_devices AS d (device_id, profile_hash, saved_at, replica, state, observed_at)
                SELECT t.d, t.p, t.s, $4, t.b, t.o FROM unnest($1, $2, $3, $5, $6) AS t (d, p, s, b, o)
                ON CONFLICT (device_id) DO UPDATE SET profile_hash = EXCLUDED.profile_hash, saved_at = EXCLUDED.saved_at, replica = EXCLUDED.replica, state = EXCLUDED.state, observed_at = EXCLUDED.observed_at
                WHERE d.observed_at <= EXCLUDED.observed_at
                """,
                connection);
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = ids, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = profiles, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter<DateTime[]> { TypedValue = savedAt, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
            command.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = states, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            command.Parameters.Add(new NpgsqlParameter<DateTime[]> { TypedValue = observedAt, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            kept += n - command.ExecuteNonQuery();
        }

        return kept;
    });

    /// <summary>The array behind <paramref name="bytes"/> when it is all of it (the monitor's records are), else a copy.</summary>
    private static byte[] WholeArray(ReadOnlyMemory<byte> bytes) =>
        MemoryMarshal.TryGetArray(bytes, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length ? segment.Array : bytes.ToArray();

    /// <summary>
    /// Deletes the drift state rows not saved for <paramref name="retention"/> (on the database's clock), unless another
    /// replica is pruning now; returns the rows deleted.
    /// </summary>
    public int PruneDriftDevices(TimeSpan retention) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var tx = connection.BeginTransaction();
        using (var lockCommand = new NpgsqlCommand("SELECT pg_try_advisory_xact_lock($1)", connection, tx))
        {
            lockCommand.Parameters.Add(new NpgsqlParameter<long> { TypedValue = DriftPruneLockKey });
            if (lockCommand.ExecuteScalar() is not true)
            {
                return 0;
            }
        }

        using var prune = new NpgsqlCommand("DELETE FROM har_fleet.drift_devices WHERE saved_at < now() - make_interval(secs => $1)", connection, tx);
        prune.Parameters.Add(new NpgsqlParameter<double> { TypedValue = retention.TotalSeconds });
        var deleted = prune.ExecuteNonQuery();
        tx.Commit();
        return deleted;
    });
}
