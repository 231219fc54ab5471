using Har.Drift;
using Har.Testing;
using Npgsql;

namespace Har.Deployment.Tests.Fleet;

/// <summary>Each device's drift state in a real PostgreSQL (<c>har_fleet.drift_devices</c>), shared by a fleet's replicas.</summary>
public sealed class FleetDriftStateStoreTests(PostgresCluster cluster)
{
    private const string Profile = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

    [Fact]
    public async Task SaveLoad_RoundTrip_AnUpsertOverwrites_AndABatchedLoadReturnsOnlyThePresentDevices()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using var a = new FleetDriftStateStore(connectionString);
        using var b = new FleetDriftStateStore(connectionString);
        var savedAt = new DateTimeOffset(2026, 12, 6, 10, 0, 0, 123, TimeSpan.Zero) + TimeSpan.FromDays(365); // not pruned
        var records = Enumerable.Range(0, 150).Select(i => Record($"device-{i}", savedAt, (byte)i, 1000 + i)).ToList();
        a.Save(records);

        // More devices than one statement takes, some never stored: each present one exactly as saved, the others left out.
        var ids = Enumerable.Range(0, 150).Where(i => i % 2 == 0).Select(i => $"device-{i}").Concat(["absent-1", "absent-2"]).ToList();
        var loaded = b.Load(ids).ToDictionary(r => r.DeviceId);
        Assert.Equal(75, loaded.Count);
        foreach (var i in Enumerable.Range(0, 150).Where(i => i % 2 == 0))
        {
            var (expected, actual) = (records[i], loaded[$"device-{i}"]);
            Assert.Equal((expected.ProfileHash, expected.SavedAt), (actual.ProfileHash, actual.SavedAt));
            Assert.Equal(expected.State.ToArray(), actual.State.ToArray());
        }

        // Another replica saves device-4 later, with newer evidence: it replaces the row.
        var newer = Record("device-4", savedAt + TimeSpan.FromMinutes(1), 0xAB, 10);
        b.Save([newer]);
        var back = Assert.Single(a.Load(["device-4"]));
        Assert.Equal(newer.State.ToArray(), back.State.ToArray());
        Assert.Equal(newer.SavedAt, back.SavedAt);
        Assert.Empty(a.Load(["absent-1"]));
        Assert.Empty(a.Load([]));

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var count = new NpgsqlCommand("SELECT count(*), count(DISTINCT replica) FROM har_fleet.drift_devices", connection);
        await using var reader = await count.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        Assert.True(await reader.ReadAsync(TestContext.Current.CancellationToken));
        Assert.Equal((150L, 2L), (reader.GetInt64(0), reader.GetInt64(1)));
    }

    [Fact]
    public async Task Save_ARecordWithOlderEvidenceThanTheRow_IsRefused_WhicheverReplicaSavesLast()
    {
        // The proxy moves a device from replica A to replica B at 10:00. B looks it up, scores it and saves its newer
        // minutes at 10:05. A evicts the idle device at 10:10 and saves it once more: its last frame arrived at 10:00.
        // Before, that save replaced B's row (the last writer won), and B's minutes and alarm were gone from the store.
        var connectionString = await cluster.CreateDatabaseAsync();
        using var a = new FleetDriftStateStore(connectionString);
        using var b = new FleetDriftStateStore(connectionString);
        var moved = new DateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-30).UtcTicks / TimeSpan.TicksPerSecond * TimeSpan.TicksPerSecond, TimeSpan.Zero); // PostgreSQL keeps microseconds
        a.Save([Record("device", moved - TimeSpan.FromMinutes(3), 1, 100, observedAt: moved - TimeSpan.FromMinutes(3))]);
        var newer = Record("device", moved + TimeSpan.FromMinutes(5), 2, 100, observedAt: moved + TimeSpan.FromMinutes(5));
        b.Save([newer]);

        var eviction = Record("device", moved + TimeSpan.FromMinutes(10), 3, 100, observedAt: moved);
        a.Save([eviction, Record("other", moved + TimeSpan.FromMinutes(10), 4, 100, observedAt: moved)]); // one statement
        var held = Assert.Single(b.Load(["device"]));
        Assert.Equal(newer.State.ToArray(), held.State.ToArray());
        Assert.Equal((newer.SavedAt, newer.LastObservedAt), (held.SavedAt, held.LastObservedAt));
        Assert.Equal(1, a.Superseded);
        Assert.Single(b.Load(["other"])); // the batch's other device was stored

        // The device comes back to A and streams: A's newer frames replace the row again.
        var back = Record("device", moved + TimeSpan.FromMinutes(20), 5, 100, observedAt: moved + TimeSpan.FromMinutes(19));
        a.Save([back]);
        Assert.Equal(back.State.ToArray(), Assert.Single(b.Load(["device"])).State.ToArray());
        Assert.Equal(1, a.Superseded);
    }

    [Fact]
    public async Task Save_RowsNotSavedForTheRetention_ArePruned_AtMostHourlyByAStore()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using var store = new FleetDriftStateStore(connectionString, retention: TimeSpan.FromDays(7));
        var now = DateTimeOffset.UtcNow;

        // The first save prunes: the device last saved 8 days ago is gone, the one saved 6 days ago stays.
        store.Save([Record("gone", now - TimeSpan.FromDays(8), 1, 10), Record("kept", now - TimeSpan.FromDays(6), 2, 10)]);
        Assert.Equal(["kept"], store.Load(["gone", "kept"]).Select(r => r.DeviceId));

        // Within the hour, saves do not prune again; an explicit pruning does.
        store.Save([Record("old", now - TimeSpan.FromDays(30), 3, 10)]);
        Assert.Single(store.Load(["old"]));
        Assert.Equal(1, store.Prune());
        Assert.Empty(store.Load(["old"]));
        Assert.Single(store.Load(["kept"]));
    }

    [Fact]
    public async Task Open_DatabaseAtVersion7_IsMigratedToTheNewest_KeepingWhatItHeld()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using (var replica = FleetStore.Open(connectionString))
        {
            Assert.True(replica.TryWriteCurrent("1.0.0", 0));
        }

        // Back to the schema of the previous release (version 7), as a fleet upgraded from it finds its database.
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var downgrade = new NpgsqlCommand("DROP TABLE har_fleet.drift_devices; DELETE FROM har_fleet.schema_migrations WHERE version >= 8", connection);
            await downgrade.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        using (var reader = FleetStore.OpenExisting(connectionString))
        {
            Assert.Equal(7, reader.SchemaVersion);
        }

        using var store = new FleetDriftStateStore(connectionString);
        store.Save([Record("d", DateTimeOffset.UtcNow, 7, 100)]);

        Assert.Single(store.Load(["d"]));
        using var after = FleetStore.OpenExisting(connectionString);
        Assert.Equal(FleetSchema.CodeVersion, after.SchemaVersion);
        Assert.Equal("1.0.0", after.ReadHead().Current);
    }

    [Fact]
    public async Task Open_DatabaseAtVersion8_RowsTakeTheirSaveAsTheirEvidenceTime()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var savedAt = DateTimeOffset.UtcNow.AddMinutes(-10);
        using (var old = new FleetDriftStateStore(connectionString))
        {
            old.Save([Record("d", savedAt, 8, 100)]);
        }

        // Back to version 8 (the previous release), with its row, as a fleet upgraded from it finds its database.
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var downgrade = new NpgsqlCommand("ALTER TABLE har_fleet.drift_devices DROP COLUMN observed_at; DELETE FROM har_fleet.schema_migrations WHERE version >= 9", connection);
            await downgrade.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        using var store = new FleetDriftStateStore(connectionString);
        var row = Assert.Single(store.Load(["d"]));
        Assert.Equal(savedAt.UtcTicks / 10, row.LastObservedAt.UtcTicks / 10); // PostgreSQL keeps microseconds
        store.Save([Record("d", savedAt + TimeSpan.FromMinutes(5), 9, 100, observedAt: savedAt - TimeSpan.FromMinutes(1))]);
        Assert.Equal(8, Assert.Single(store.Load(["d"])).State.Span[0]); // older evidence than the migrated row: kept
        using var after = FleetStore.OpenExisting(connectionString);
        Assert.Equal(FleetSchema.CodeVersion, after.SchemaVersion);

        // A replica not yet upgraded (a rolling upgrade) still saves with the statement of version 8, which names no
        // evidence time: it is stored, and an upgraded replica's next save of the device replaces it.
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var previous = new NpgsqlCommand(
                """
                INSERT INTO har_fleet.drift_devices (device_id, profile_hash, saved_at, replica, state)
                SELECT d, p, s, $4, b FROM unnest($1, $2, $3, $5) AS t (d, p, s, b)
                ON CONFLICT (device_id) DO UPDATE SET profile_hash = EXCLUDED.profile_hash, saved_at = EXCLUDED.saved_at, replica = EXCLUDED.replica, state = EXCLUDED.state
                """,
                connection);
            previous.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = ["old-replica-device"] });
            previous.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [Profile] });
            previous.Parameters.Add(new NpgsqlParameter<DateTime[]> { TypedValue = [DateTime.UtcNow] });
            previous.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "replica-of-the-release-before" });
            previous.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = [[1, 2, 3]] });
            Assert.Equal(1, await previous.ExecuteNonQueryAsync(TestContext.Current.CancellationToken));
        }

        Assert.Equal([1, 2, 3], Assert.Single(store.Load(["old-replica-device"])).State.ToArray());
        store.Save([Record("old-replica-device", savedAt, 10, 4)]);
        Assert.Equal(10, Assert.Single(store.Load(["old-replica-device"])).State.Span[0]);
    }

    [Fact]
    public void Constructor_NotAConnectionString_IsRefusedAtOnce_NotAtTheMonitorsFirstTick()
    {
        // A monitor counts a store's exception as a failed lookup and tries again at its next tick: a connection string that
        // can never work must fail where it is given, with what was expected.
        var ex = Assert.Throws<ArgumentException>(() => new FleetDriftStateStore("Hots=db;Port=five"));
        Assert.Equal("connectionString", ex.ParamName);
        Assert.Contains("not a valid Npgsql connection string", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Load_PostgresUnreachable_ThrowsIOException_AndWorksOnceItAnswers()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Port = 1, Timeout = 2 };
        using var unreachable = new FleetDriftStateStore(builder.ConnectionString);
        Assert.Throws<IOException>(() => unreachable.Load(["d"]));

        using var reachable = new FleetDriftStateStore(connectionString);
        Assert.Empty(reachable.Load(["d"]));
    }

    private static DriftStateRecord Record(string device, DateTimeOffset savedAt, byte fill, int length, DateTimeOffset? observedAt = null) =>
        new(device, Profile, savedAt, Enumerable.Repeat(fill, length).ToArray(), observedAt);
}
