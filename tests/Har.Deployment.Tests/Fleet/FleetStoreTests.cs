using Har.Deployment.Tests.Support;
using Har.Testing;
using Npgsql;

namespace Har.Deployment.Tests.Fleet;

/// <summary>The fleet's shared control-plane state in a real PostgreSQL: compare-and-set, migrations, the lease, the current pointer.</summary>
public sealed class FleetStoreTests(PostgresCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Save_StaleRevision_IsRefusedAndNeverOverwrites()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using var a = FleetStore.Open(connectionString);
        using var b = FleetStore.Open(connectionString);
        Assert.Null(a.Load());

        a.Save(State(revision: 1, message: "a1"));
        var conflict = Assert.Throws<RolloutStateConflictException>(() => b.Save(State(revision: 1, message: "b1")));
        Assert.Contains("revision 0", conflict.Message, StringComparison.Ordinal);
        Assert.Equal("a1", b.Load()!.Message);

        // b re-reads and writes on top of what it read; a, now stale, is refused in turn.
        var read = b.Load()!;
        read.Revision++;
        read.Message = "b2";
        b.Save(read);
        Assert.Throws<RolloutStateConflictException>(() => a.Save(State(revision: 2, message: "a2")));
        var stored = a.Load()!;
        Assert.Equal(("b2", 2L), (stored.Message, stored.Revision));
        Assert.Equal(2, a.ReadHead().Revision);
    }

    [Fact]
    public async Task Save_ConcurrentWritersOfTheSameRevision_ExactlyOneWins()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var stores = Enumerable.Range(0, 6).Select(_ => FleetStore.Open(connectionString)).ToList();
        try
        {
            stores[0].Save(State(revision: 1, message: "start"));
            var outcomes = await Task.WhenAll(stores.Select((s, i) => Task.Run(() =>
            {
                try
                {
                    s.Save(State(revision: 2, message: $"writer {i}"));
                    return true;
                }
                catch (RolloutStateConflictException)
                {
                    return false;
                }
            })));
            Assert.Equal(1, outcomes.Count(o => o));
            Assert.Equal($"writer {Array.IndexOf(outcomes, true)}", stores[0].Load()!.Message);
        }
        finally
        {
            stores.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task Open_ConcurrentReplicas_MigrateOnce_SchemaNewerThanCode_RefusedWithClearError()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var opened = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => FleetStore.Open(connectionString))));
        foreach (var store in opened)
        {
            store.Dispose();
        }

        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var count = new NpgsqlCommand("SELECT count(*) FROM har_fleet.schema_migrations", connection);
            Assert.Equal((long)FleetSchema.CodeVersion, (long)(await count.ExecuteScalarAsync())!);
            await using var newer = new NpgsqlCommand($"INSERT INTO har_fleet.schema_migrations (version, description) VALUES ({FleetSchema.CodeVersion + 1}, 'from a newer Har')", connection);
            await newer.ExecuteNonQueryAsync();
        }

        var error = Assert.Throws<InvalidOperationException>(() => FleetStore.Open(connectionString));
        Assert.Contains($"at version {FleetSchema.CodeVersion + 1}, newer than this Har.Deployment", error.Message, StringComparison.Ordinal);
        Assert.Contains("Upgrade", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lease_HeldByOne_OthersRefusedUntilReleased_NextTermForTheTaker()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using var a = FleetStore.Open(connectionString);
        using var b = FleetStore.Open(connectionString);
        var duration = TimeSpan.FromMinutes(5);

        Assert.Equal(1, a.TryAcquireLease(duration));
        Assert.Null(b.TryAcquireLease(duration));
        Assert.Equal(1, a.TryAcquireLease(duration)); // a renewal keeps the term
        b.ReleaseLease(); // not b's to release
        Assert.Null(b.TryAcquireLease(duration));

        a.ReleaseLease();
        Assert.Equal(2, b.TryAcquireLease(duration));
        Assert.Null(a.TryAcquireLease(duration));
    }

    [Fact]
    public async Task Lease_Expired_TakenOverWithTheNextTerm()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using var a = FleetStore.Open(connectionString);
        using var b = FleetStore.Open(connectionString);
        Assert.Equal(1, a.TryAcquireLease(TimeSpan.FromMinutes(5)));

        // The holder died: its expiry passes on the database's clock (set back here instead of waiting for it).
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var expire = new NpgsqlCommand("UPDATE har_fleet.leader SET expires_at = now() - interval '1 second'", connection);
            await expire.ExecuteNonQueryAsync();
        }

        Assert.Equal(2, b.TryAcquireLease(TimeSpan.FromMinutes(5)));
        Assert.Null(a.TryAcquireLease(TimeSpan.FromMinutes(5)));
    }

    [Fact]
    public async Task CurrentPointer_CompareAndSet_StaleWriterRefused_SharedRegistryReadsTheDatabase()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using var store = FleetStore.Open(connectionString);
        Assert.True(store.TryWriteCurrent("1.0.0", 0));
        Assert.False(store.TryWriteCurrent("1.1.0", 0)); // stale: the pointer is at revision 1
        Assert.True(store.TryWriteCurrent("1.1.0", 1));
        Assert.Equal(("1.1.0", 2L), (store.ReadHead().Current, store.ReadHead().CurrentRevision));

        // A registry attached to the database reads its pointer, not its file's, and writes there.
        using var registry = new TestRegistry(registerCandidate: true);
        Assert.Equal("1.0.0", registry.Registry.CurrentVersion);
        registry.Registry.UseSharedCurrent(store);
        Assert.Equal("1.1.0", registry.Registry.CurrentVersion);
        registry.Registry.SetCurrent("1.0.0");
        Assert.Equal(("1.0.0", 3L), (store.ReadHead().Current, store.ReadHead().CurrentRevision));
        Assert.Equal("1.0.0", registry.Registry.ReadCurrentFile()); // the file was not the one written
    }

    [Fact]
    public async Task CurrentPointer_WriterOfAnOlderRolloutRevision_RefusedEvenWithTheNewestPointerRevision()
    {
        // Found from outside: a leader paused (SIGSTOP) while promoting resumed after another replica had finished the
        // promotion and an operator had rolled it back; it re-read the pointer's newest revision, so its compare-and-set
        // passed, and it set the pointer to the rolled-back version behind the rollout's back.
        var connectionString = await cluster.CreateDatabaseAsync();
        using var stale = FleetStore.Open(connectionString);
        using var other = FleetStore.Open(connectionString);
        Assert.True(other.TryWriteCurrent("1.0.0", 0));
        stale.Save(State(revision: 1, message: "promoting"));          // the stale leader's state: promoting at revision 1
        other.Save(State(revision: 2, message: "promoted"));           // the other replica took it further
        Assert.True(other.TryWriteCurrent("1.1.0", 1, rolloutRevision: 2));
        other.Save(State(revision: 3, message: "rolled back"));
        Assert.True(other.TryWriteCurrent("1.0.0", 2, rolloutRevision: 3));

        Assert.False(stale.TryWriteCurrent("1.1.0", 3, rolloutRevision: 1)); // the pointer's newest revision, an old rollout revision
        Assert.Equal(("1.0.0", 3L), (stale.ReadHead().Current, stale.ReadHead().CurrentRevision));

        // Through the registry: a conflict, not a candidate failure, and nothing moved.
        using var registry = new TestRegistry(registerCandidate: true);
        registry.Registry.UseSharedCurrent(stale);
        var conflict = Assert.Throws<RolloutStateConflictException>(() => registry.Registry.SetCurrent("1.1.0", rolloutRevision: 1));
        Assert.Contains("moved from revision 1 to 3 on another replica", conflict.Message, StringComparison.Ordinal);
        Assert.Equal("1.0.0", registry.Registry.CurrentVersion);
        registry.Registry.SetCurrent("1.1.0", rolloutRevision: 3);
        Assert.Equal("1.1.0", stale.ReadHead().Current);
    }

    [Fact]
    public async Task StateWrite_ClientQuietInsideItsTransaction_IsEndedByTheServer_AndTheOthersProceed()
    {
        // Found from outside: a replica frozen inside a write kept its row lock, and every other replica waited behind it.
        var connectionString = await cluster.CreateDatabaseAsync();
        using var store = FleetStore.Open(connectionString);
        store.Save(State(revision: 1, message: "a1"));
        await using var frozen = new NpgsqlConnection(connectionString);
        await frozen.OpenAsync(Ct);
        await using var tx = await frozen.BeginTransactionAsync(Ct);
        FleetStore.BoundIdleTransaction(frozen, tx);
        await using (var hold = new NpgsqlCommand("SELECT revision FROM har_fleet.rollout WHERE id = 1 FOR UPDATE", frozen, tx))
        {
            await hold.ExecuteScalarAsync(Ct);
        }

        // The lock is held: a writer that will not wait is refused.
        await using (var probe = new NpgsqlConnection(connectionString))
        {
            await probe.OpenAsync(Ct);
            await using var nowait = new NpgsqlCommand("SELECT revision FROM har_fleet.rollout WHERE id = 1 FOR UPDATE NOWAIT", probe);
            var busy = await Assert.ThrowsAsync<PostgresException>(async () => await nowait.ExecuteScalarAsync(Ct));
            Assert.Equal(PostgresErrorCodes.LockNotAvailable, busy.SqlState);
        }

        // The holder now says nothing: the server ends its transaction after 15 s, and the next writer gets through.
        await Task.Run(() => store.Save(State(revision: 2, message: "a2")), Ct);
        Assert.Equal(2, store.ReadHead().Revision);
        await Assert.ThrowsAnyAsync<Exception>(async () => await tx.CommitAsync(Ct)); // the quiet holder's work is not acknowledged
    }

    [Fact]
    public async Task Heartbeat_ReturnsTheDatabasesClockAtTheWrite()
    {
        // The replica compares it with its own clock (har_fleet_clock_offset_seconds, and a warning past 2 s).
        var connectionString = await cluster.CreateDatabaseAsync();
        using var store = FleetStore.Open(connectionString);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var now = new NpgsqlCommand("SELECT clock_timestamp()", connection);
        var before = (DateTime)(await now.ExecuteScalarAsync(Ct))!;

        var seen = store.Heartbeat(TimeSpan.FromMinutes(5));

        var after = (DateTime)(await now.ExecuteScalarAsync(Ct))!;
        Assert.InRange(seen.UtcDateTime, before.ToUniversalTime(), after.ToUniversalTime());
        Assert.Equal(TimeSpan.Zero, seen.Offset);
    }

    [Fact]
    public async Task CountLiveReplicas_CountsUnexpiredHeartbeatsOnce_ExpiredAndLeftOnesAreNot()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using var a = FleetStore.Open(connectionString);
        using var b = FleetStore.Open(connectionString);
        using var c = FleetStore.Open(connectionString);
        Assert.Equal(0, a.CountLiveReplicas());

        a.Heartbeat(TimeSpan.FromMinutes(5));
        a.Heartbeat(TimeSpan.FromMinutes(5)); // renewed, not counted twice
        b.Heartbeat(TimeSpan.FromMinutes(5));
        c.Heartbeat(TimeSpan.Zero); // expired at once (on the database's clock): a replica that stopped renewing
        Assert.Equal(2, c.CountLiveReplicas());

        c.Heartbeat(TimeSpan.FromMinutes(5));
        Assert.Equal(3, a.CountLiveReplicas());
        b.Leave();
        Assert.Equal(2, a.CountLiveReplicas());
    }

    [Fact]
    public async Task CurrentPointer_EmptyDatabase_FirstReplicaBringsItsFilePointer()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using var store = FleetStore.Open(connectionString);
        using var registry = new TestRegistry(registerCandidate: true);
        registry.Registry.UseSharedCurrent(store);
        Assert.Equal(("1.0.0", 1L), (store.ReadHead().Current, store.ReadHead().CurrentRevision));
    }

    [Fact]
    public async Task LabelledWindows_TwoReplicasWrite_TheLeaderReadsEachOnceButNotItsOwn_PrunedToTheNewest()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using var a = FleetStore.Open(connectionString);
        using var b = FleetStore.Open(connectionString);
        using var leader = FleetStore.Open(connectionString);
        string[] own = [leader.Holder];

        a.WriteLabelledWindows([Window("a1"), Window("a2")], keep: 100);
        leader.WriteLabelledWindows([Window("own")], keep: 100);
        b.WriteLabelledWindows([Window("b1")], keep: 100);
        var (last, windows, skipped) = leader.ReadLabelledWindows(0, own);
        Assert.Equal(["a1", "a2", "b1"], Names(windows));
        Assert.Equal(0, skipped);
        Assert.Empty(leader.ReadLabelledWindows(last, own).Windows);

        // Incrementally by row id: only what was written since.
        b.WriteLabelledWindows([Window("b2")], keep: 100);
        (last, windows, _) = leader.ReadLabelledWindows(last, own);
        Assert.Equal(["b2"], Names(windows));

        // A row edited by hand is skipped and counted, and read past.
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var edit = new NpgsqlCommand("INSERT INTO har_fleet.labelled_windows (replica, payload, written_at) VALUES ('someone', '{\"truth\": 5}', now())", connection);
            await edit.ExecuteNonQueryAsync();
        }

        (last, windows, skipped) = leader.ReadLabelledWindows(last, own);
        Assert.Equal((0, 1), (windows.Count, skipped));

        // Each write keeps the table's newest rows (whoever wrote them): here 4 of the 9.
        a.WriteLabelledWindows([Window("a3"), Window("a4"), Window("a5")], keep: 4);
        Assert.Equal(["a3", "a4", "a5"], Names(leader.ReadLabelledWindows(last, own).Windows));
        (_, windows, skipped) = b.ReadLabelledWindows(0, []);
        Assert.Equal(["a3", "a4", "a5"], Names(windows));
        Assert.Equal(1, skipped);
    }

    [Fact]
    public async Task LabelledWindows_WrittenConcurrently_AnIncrementalReaderReadsEveryRowOnce()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var writers = Enumerable.Range(0, 4).Select(_ => FleetStore.Open(connectionString)).ToList();
        using var reader = FleetStore.Open(connectionString);
        try
        {
            var writing = Task.WhenAll(writers.Select((w, i) => Task.Run(() =>
            {
                for (var batch = 0; batch < 40; batch++)
                {
                    w.WriteLabelledWindows([.. Enumerable.Range(0, 1 + (batch % 5)).Select(k => Window($"{i}-{batch}-{k}"))], keep: 100_000);
                }
            })));

            // Rows commit in the order of their ids, so reading on from the last id read never skips one committed later.
            var read = new List<string>();
            long last = 0;
            bool done;
            do
            {
                done = writing.IsCompleted;
                var (next, windows, _) = reader.ReadLabelledWindows(last, []);
                last = next;
                read.AddRange(Names(windows));
            }
            while (!done);

            await writing;
            Assert.Equal(4 * 8 * (1 + 2 + 3 + 4 + 5), read.Count);
            Assert.Equal(read.Count, read.Distinct().Count());
        }
        finally
        {
            writers.ForEach(w => w.Dispose());
        }
    }

    [Fact]
    public async Task LabelledWindows_AWriteRetriedAfterItsReplyWasLost_StoresEachWindowOnce()
    {
        // A write that committed but whose reply was lost is retried at the next round with the same windows: they
        // counted twice in the leader's accuracy gate. Windows written by a replica of an earlier release carry no id.
        var connectionString = await cluster.CreateDatabaseAsync();
        using var writer = FleetStore.Open(connectionString);
        using var reader = FleetStore.Open(connectionString);
        List<ShippedLabel> windows = [Window("a") with { Id = "w-1" }, Window("b") with { Id = "w-2" }];

        writer.WriteLabelledWindows(windows, keep: 100);
        writer.WriteLabelledWindows(windows, keep: 100); // the retry
        writer.WriteLabelledWindows([Window("c") with { Id = "w-3" }, Window("old"), Window("old")], keep: 100);

        var (_, read, skipped) = reader.ReadLabelledWindows(0, []);
        Assert.Equal(0, skipped);
        Assert.Equal(["a", "b", "c", "old", "old"], Names(read));
        Assert.Equal(["w-1", "w-2", "w-3", null, null], read.Select(w => w.Id));
    }

    [Fact]
    public async Task ForwardedLabels_AWriterCommittingLaterWithASmallerId_IsNotSkippedByTheReader()
    {
        // Two replicas forwarding labels at once: the one that took the smaller id committed after the other, and a
        // reader that read in between (up to the larger id) never saw the smaller one. The in-flight writer is played by
        // a transaction of this test that inserts a row as WriteLabels does and holds it uncommitted.
        var connectionString = await cluster.CreateDatabaseAsync();
        using var late = FleetStore.Open(connectionString);
        using var reader = FleetStore.Open(connectionString);
        var (last, _) = reader.ReadLabels(-1);

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var inFlight = await connection.BeginTransactionAsync(Ct);
        await using (var lockWriters = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({FleetStore.FeedbackLabelsLockKey})", connection, inFlight))
        {
            await lockWriters.ExecuteNonQueryAsync(Ct);
        }

        await using (var insert = new NpgsqlCommand("""INSERT INTO har_fleet.feedback_labels (replica, payload, written_at) VALUES ('in-flight', '[{"StreamId":"s","Activity":"WALKING","StartFrame":0,"EndFrame":200}]', now())""", connection, inFlight))
        {
            await insert.ExecuteNonQueryAsync(Ct);
        }

        var writing = Task.Run(() => late.WriteLabels([new ForwardedLabel("s", "SITTING", 200, 400, null, null)]), Ct);
        await Task.WhenAny(writing, Task.Delay(TimeSpan.FromSeconds(5), Ct));
        var read = new List<string>();
        (last, var labels) = reader.ReadLabels(last);
        read.AddRange(labels.Select(l => l.Activity));

        await inFlight.CommitAsync(Ct);
        await writing;
        (_, labels) = reader.ReadLabels(last);
        read.AddRange(labels.Select(l => l.Activity));

        Assert.Equal(["WALKING", "SITTING"], read);
    }

    private static ShippedLabel Window(string version) => new("WALKING", [new ShippedPrediction(version, "SITTING")]);

    private static List<string> Names(List<ShippedLabel> windows) => [.. windows.Select(w => w.Predictions[0].Version)];

    private static RolloutState State(long revision, string message) => new()
    {
        RolloutId = "rollout-cas",
        Strategy = "canary",
        Champion = "1.0.0",
        Candidate = "1.1.0",
        StartedBy = "tester",
        Revision = revision,
        Message = message,
    };
}
