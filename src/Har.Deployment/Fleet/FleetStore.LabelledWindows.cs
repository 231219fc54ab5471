using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace Har.Deployment;

/// <summary>
/// The windows the fleet's replicas labelled (<c>har_fleet.labelled_windows</c>, one row a window: the true activity and
/// each version's answer, by name): every replica writes those it labels, the leader reads the others' by row id into its
/// feedback store, so its accuracy gate judges the whole fleet's labels and a new leader finds them all at takeover.
/// </summary>
internal sealed partial class FleetStore
{
    /// <summary>The advisory lock of the writers of labelled windows (<see cref="LockWriters"/>; "HarLabel" in ASCII).</summary>
    private const long LabelledWindowsLockKey = 0x4861724C6162656C;

    /// <summary>The advisory lock of the writers of forwarded feedback labels (<see cref="LockWriters"/>; "HarFeedb" in ASCII).</summary>
    internal const long FeedbackLabelsLockKey = 0x4861724665656462;

    /// <summary>Gets where the fleet's labelled windows live (for messages).</summary>
    public string LabelledWindowsPath => Display + "#har_fleet.labelled_windows";

    /// <summary>
    /// Writes windows this replica labelled, in order, and prunes the table to its newest <paramref name="keep"/> rows in
    /// the same transaction (the feedback store's own bound: an older window would no longer be read by any gate).
    /// </summary>
    public void WriteLabelledWindows(IReadOnlyList<ShippedLabel> windows, int keep)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keep, 1);
        Guard(() =>
        {
            using var connection = _source.OpenConnection();
            using var tx = connection.BeginTransaction();
            LockWriters(connection, tx, LabelledWindowsLockKey);

            InsertLabelledWindows(connection, tx, windows);

            using (var prune = new NpgsqlCommand("DELETE FROM har_fleet.labelled_windows WHERE id < (SELECT id FROM har_fleet.labelled_windows ORDER BY id DESC OFFSET $1 LIMIT 1)", connection, tx))
            {
                prune.Parameters.Add(new NpgsqlParameter<long> { TypedValue = keep - 1 });
                prune.ExecuteNonQuery();
            }

            tx.Commit();
        });
    }

    /// <summary>Inserts windows as this replica's rows, in order; a window whose id the table holds already is stored once.</summary>
    private void InsertLabelledWindows(NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyList<ShippedLabel> windows)
    {
        using var insert = new NpgsqlCommand(
            """
            INSERT INTO har_fleet.labelled_windows (replica, payload, written_at, window_id)
            SELECT $1, w.payload, now(), w.payload->>'Id' FROM jsonb_array_elements($2) WITH ORDINALITY AS w (payload, n) ORDER BY w.n
            ON CONFLICT (window_id) DO NOTHING
            """,
            connection,
            tx);
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Holder });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(windows, RolloutStateStore.Json), NpgsqlDbType = NpgsqlDbType.Jsonb });
        insert.ExecuteNonQuery();
    }

    /// <summary>
    /// Reads the labelled windows after row <paramref name="after"/> (0: every row kept) that replicas other than those in
    /// <paramref name="except"/> wrote; returns the last row id read and the rows that did not parse (edited by hand), skipped.
    /// </summary>
    public (long Last, List<ShippedLabel> Windows, int Skipped) ReadLabelledWindows(long after, IReadOnlyCollection<string> except) => Guard(() =>
    {
        using var connection = _source.OpenConnection();
        using var command = new NpgsqlCommand("SELECT id, replica, payload::text FROM har_fleet.labelled_windows WHERE id > $1 ORDER BY id", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = after });
        using var reader = command.ExecuteReader();
        var windows = new List<ShippedLabel>();
        var (seen, skipped) = (after, 0);
        while (reader.Read())
        {
            seen = reader.GetInt64(0);
            if (except.Contains(reader.GetString(1)))
            {
                continue;
            }

            try
            {
                if (JsonSerializer.Deserialize<ShippedLabel>(reader.GetString(2), RolloutStateStore.Json) is { Truth: not null, Predictions: not null } window)
                {
                    windows.Add(window);
                    continue;
                }
            }
            catch (JsonException)
            {
                // counted below
            }

            skipped++;
        }

        return (seen, windows, skipped);
    });
}
