using System.Text;
using System.Text.Json;
using Har.Audit.Merkle;
using Har.Testing;
using Npgsql;
using Prometheus;

namespace Har.Audit.Tests.Conformance;

/// <summary>
/// One suite, two storage backends: every test here runs against the file log (<see cref="FileAuditLogConformanceTests"/>)
/// and the PostgreSQL log (<see cref="PostgresAuditLogConformanceTests"/>), through the public <see cref="AuditLog"/> API.
/// </summary>
public abstract class AuditLogConformanceTests : IAsyncLifetime
{
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public abstract ValueTask InitializeAsync();

    public ValueTask DisposeAsync()
    {
        Cleanup();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    /// <summary>Removes this test's storage.</summary>
    protected virtual void Cleanup()
    {
    }

    /// <summary>Opens (or reopens) this test's log.</summary>
    protected abstract AuditLog Open(string? origin = null, string? verifierKey = null);

    /// <summary>Changes one byte of the stored record of entry <paramref name="index"/> behind the log's back.</summary>
    protected abstract Task TamperAsync(AuditLog log, long index);

    [Fact]
    public async Task AppendAsync_ThreeKinds_GetReturnsThemWithIndexChainAndLeafHash()
    {
        using var log = Open();
        AuditRecord[] records =
        [
            DeploymentRecord.Parse(Encoding.UTF8.GetBytes(Samples.ReferenceDeploymentJson)),
            RollbackRecord.Parse(Encoding.UTF8.GetBytes(Samples.RollbackJson)),
            AuditEvent.Parse(Encoding.UTF8.GetBytes(Samples.EventJson)),
        ];
        var acks = new List<AuditAppendResult>();
        foreach (var r in records)
        {
            acks.Add(await log.AppendAsync(r, Ct));
        }

        Assert.Equal([0L, 1L, 2L], acks.Select(a => a.Index));
        Assert.Equal(3, log.Count);
        var previous = new byte[32];
        for (var i = 0; i < records.Length; i++)
        {
            var entry = log.Get(i);
            Assert.Equal(records[i].ToCanonicalJson(), entry.Record.ToCanonicalJson());
            Assert.Equal(records[i].Kind, entry.Kind);
            Assert.Equal(previous, entry.PreviousHash.ToArray());
            Assert.Equal(MerkleProof.HashLeaf(entry.CanonicalJson.Span), entry.LeafHash.ToArray());
            Assert.Equal(acks[i].LeafHash.ToArray(), entry.LeafHash.ToArray());
            Assert.Equal(entry.CanonicalJson.ToArray(), CanonicalJson.Canonicalize(entry.CanonicalJson.Span));
            using var doc = JsonDocument.Parse(entry.CanonicalJson);
            Assert.Equal(i, doc.RootElement.GetProperty("index").GetInt64());
            previous = entry.LeafHash.ToArray();
        }

        Assert.Equal("deployment", log.Get(0).EventType);
        Assert.Equal("1DCNN_BiLSTM", log.Get(0).EntityId);
        Assert.Equal("oleh.pekh", log.Get(0).Actor);
        Assert.Equal("rollout-controller", log.Get(1).Actor);
        Assert.Throws<ArgumentOutOfRangeException>(() => log.Get(3));
        Assert.Throws<AuditRecordException>(() => { _ = log.AppendAsync(new AuditEvent { EventType = "", EntityType = "m", EntityId = "x", Severity = AuditSeverity.Info, ActionDetails = default, Actor = "a", Timestamp = Samples.T0 }, Ct); });
        Assert.Equal(3, log.Count);
    }

    [Fact]
    public async Task AppendAsync_ConcurrentAppenders_GetDistinctGaplessIndexesAndTheLogVerifies()
    {
        using var log = Open();
        var tasks = Enumerable.Range(0, 16).Select(t => Task.Run(async () =>
        {
            var acks = new List<(long Index, string Entity)>();
            for (var k = 0; k < 25; k++)
            {
                var e = Samples.Event((t * 100) + k, entity: $"t{t}-{k}");
                acks.Add(((await log.AppendAsync(e, Ct)).Index, e.EntityId));
            }

            return acks;
        }, Ct)).ToArray();
        var all = (await Task.WhenAll(tasks)).SelectMany(x => x).ToList();
        Assert.Equal(Enumerable.Range(0, 400).Select(i => (long)i), all.Select(a => a.Index).Order());
        foreach (var (index, entity) in all)
        {
            Assert.Equal(entity, log.Get(index).EntityId);
        }

        var result = log.Verify();
        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(400, result.EntriesVerified);
    }

    [Fact]
    public async Task Query_FiltersAndPages_ReturnTheMatchingEntriesInIndexOrder()
    {
        using var log = Open();
        for (var i = 0; i < 60; i++)
        {
            await log.AppendAsync(Samples.Event(i, eventType: i % 4 == 0 ? "model.promoted" : "test.event"), Ct);
        }

        await log.AppendAsync(RollbackRecord.Parse(Encoding.UTF8.GetBytes(Samples.RollbackJson)), Ct);

        List<long> All(AuditQuery q)
        {
            var seen = new List<long>();
            string? token = null;
            do
            {
                var page = log.Query(new AuditQuery { EventType = q.EventType, EntityType = q.EntityType, EntityId = q.EntityId, Actor = q.Actor, Kind = q.Kind, From = q.From, To = q.To, Severity = q.Severity, MinimumSeverity = q.MinimumSeverity, PageSize = q.PageSize, PageToken = token });
                Assert.InRange(page.Entries.Count, 0, q.PageSize);
                seen.AddRange(page.Entries.Select(e => e.Index));
                token = page.NextPageToken;
            }
            while (token is not null);
            return seen;
        }

        var evens = Enumerable.Range(0, 60).Where(i => i % 4 == 0).Select(i => (long)i).ToList();
        Assert.Equal(evens, All(new AuditQuery { EventType = "model.promoted", PageSize = 4 }));
        Assert.Equal(Enumerable.Range(0, 60).Where(i => i % 7 == 3).Select(i => (long)i), All(new AuditQuery { EntityType = "model", EntityId = "entity-3", PageSize = 3 }));
        Assert.Equal(Enumerable.Range(0, 60).Where(i => i % 3 == 1).Select(i => (long)i), All(new AuditQuery { Actor = "actor-1", PageSize = 7 }));
        Assert.Equal([60L], All(new AuditQuery { Kind = AuditRecordKind.Rollback }));
        Assert.Equal(Enumerable.Range(10, 10).Select(i => (long)i), All(new AuditQuery { Kind = AuditRecordKind.Event, From = Samples.T0.AddSeconds(10), To = Samples.T0.AddSeconds(20), PageSize = 1 }));
        Assert.Equal(Enumerable.Range(0, 61).Select(i => (long)i), All(new AuditQuery { PageSize = 1000 }));

        // Severity is read from the event itself (a rollback record has none, so it never matches a severity filter).
        Assert.Equal(Enumerable.Range(0, 60).Where(i => i % 6 == 2).Select(i => (long)i), All(new AuditQuery { Severity = (AuditSeverity)2, PageSize = 3 }));
        Assert.Equal(Enumerable.Range(0, 60).Where(i => i % 6 >= 4).Select(i => (long)i), All(new AuditQuery { MinimumSeverity = (AuditSeverity)4, PageSize = 7 }));
        Assert.Equal(Enumerable.Range(0, 60).Where(i => i % 4 == 0 && i % 6 == 0).Select(i => (long)i), All(new AuditQuery { EventType = "model.promoted", Severity = 0, PageSize = 1 }));
        Assert.Empty(log.Query(new AuditQuery { Actor = "nobody" }).Entries);
        Assert.Throws<FormatException>(() => log.Query(new AuditQuery { PageToken = "not-a-token" }));
    }

    [Fact]
    public async Task Proofs_ForEverySizeUpTo33_MatchAnIndependentTreeAndVerify()
    {
        using var log = Open();
        var reference = new MemoryMerkleTree();
        for (var i = 0; i < 33; i++)
        {
            var ack = await log.AppendAsync(Samples.Event(i), Ct);
            reference.AppendLeafHash(ack.LeafHash.Span);
        }

        Assert.Equal(MerkleHasher.EmptyRoot, log.GetRootHash(0).ToArray());
        for (long size = 1; size <= 33; size++)
        {
            Assert.Equal(reference.Root(size), log.GetRootHash(size).ToArray());
            foreach (var index in new[] { 0, size / 2, size - 1 }.Distinct())
            {
                var inclusion = log.GetInclusionProof(index, size);
                Assert.True(inclusion.Verify(), inclusion.ToString());
                Assert.Equal(reference.Root(size), inclusion.RootHash.ToArray());
                Assert.Equal(log.Get(index).LeafHash.ToArray(), inclusion.LeafHash.ToArray());
            }

            foreach (var from in new[] { 1, size / 2, size }.Where(f => f >= 1).Distinct())
            {
                var consistency = log.GetConsistencyProof(from, size);
                Assert.True(consistency.Verify(), consistency.ToString());
                Assert.Equal(reference.Root(from), consistency.FromRoot.ToArray());
            }
        }

        var wrong = log.GetInclusionProof(5, 33);
        Assert.False(MerkleProof.VerifyInclusion(6, 33, wrong.LeafHash.Span, wrong.Path, wrong.RootHash.Span));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.GetRootHash(34));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.GetInclusionProof(33));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.GetConsistencyProof(0));
    }

    [Fact]
    public async Task Checkpoints_SignedOverTheTree_ExportedProofsVerifyOfflineAndTheLogVerifiesWithThePinnedKey()
    {
        using var key = AuditSigningKey.Generate("audit.example.com/har");
        using var log = Open(origin: "audit.example.com/har", verifierKey: key.VerifierKey);
        Assert.Null(log.LatestCheckpoint);
        Assert.Throws<InvalidOperationException>(() => log.ExportProof(0));
        for (var i = 0; i < 10; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        var first = log.CreateCheckpoint(key);
        Assert.Equal(10, first.TreeSize);
        Assert.Equal("audit.example.com/har", first.Origin);
        Assert.Equal(log.GetRootHash(10).ToArray(), first.RootHash.ToArray());
        Assert.True(first.Verify(key.ToVerifierKey()));
        Assert.Equal(first.NoteText, log.LatestCheckpoint!.NoteText);

        for (var i = 10; i < 17; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => log.ExportProof(12));
        var second = log.CreateCheckpoint(key);
        Assert.Equal(17, second.TreeSize);
        Assert.True(log.GetConsistencyProof(first.TreeSize, second.TreeSize).Verify());
        var bundle = AuditProofBundle.Parse(log.ExportProof(12).ToJson());
        Assert.True(bundle.Verify(key.ToVerifierKey(), out var problem), problem);
        using var other = AuditSigningKey.Generate("audit.example.com/har");
        Assert.False(bundle.Verify(other.ToVerifierKey(), out _));

        var result = log.Verify();
        Assert.True(result.IsValid, result.ToString());
        Assert.True(result.VerifierKeyPinned);
        Assert.Equal(17, result.Checkpoint!.TreeSize);
        Assert.Equal(second.RootHash.ToArray(), result.RootHash.ToArray());
    }

    [Fact]
    public async Task Verify_OneByteOfAnEntryChanged_ReportsThatEntryAndNoCheckpointIsSignedOverIt()
    {
        using var key = AuditSigningKey.Generate("tamper.test");
        using var log = Open(origin: "tamper.test", verifierKey: key.VerifierKey);
        for (var i = 0; i < 12; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        log.CreateCheckpoint(key);
        for (var i = 12; i < 20; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        Assert.True(log.Verify().IsValid);
        await TamperAsync(log, 15);
        var result = log.Verify();
        Assert.False(result.IsValid);
        Assert.Equal(15, result.FirstBadIndex);
        var refused = Record.Exception(() => log.CreateCheckpoint(key));
        Assert.True(refused is InvalidDataException or AuditLogCorruptedException, refused?.ToString() ?? "a checkpoint was signed over a tampered entry");
        Assert.Equal(12, log.LatestCheckpoint!.TreeSize);
    }

    [Fact]
    public async Task Verify_AnEntryCoveredByTheCheckpointChanged_IsDetected()
    {
        using var key = AuditSigningKey.Generate("tamper.test");
        using var log = Open(origin: "tamper.test", verifierKey: key.VerifierKey);
        for (var i = 0; i < 8; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        log.CreateCheckpoint(key);
        await TamperAsync(log, 3);
        var result = log.Verify();
        Assert.False(result.IsValid);
        Assert.Equal(3, result.FirstBadIndex);
    }

    [Fact]
    public async Task ExportTo_NewFolder_IsAByteIdenticalFileLogThatVerifiesOfflineWithTheCheckpoint()
    {
        using var key = AuditSigningKey.Generate("export.test");
        using var log = Open(origin: "export.test");
        for (var i = 0; i < 15; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        log.CreateCheckpoint(key);
        for (var i = 15; i < 18; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        using var target = new TempDir();
        var folder = Path.Combine(target.Path, "export");
        Assert.Equal(18, log.ExportTo(folder));
        var result = AuditLog.Verify(folder, key.ToVerifierKey());
        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(18, result.EntriesVerified);
        Assert.Equal(15, result.Checkpoint!.TreeSize);
        Assert.Equal(log.GetRootHash(18).ToArray(), result.RootHash.ToArray());
        using (var exported = AuditLog.Open(new AuditLogOptions { Directory = folder, MetricsRegistry = new CollectorRegistry() }))
        {
            Assert.Equal("export.test", exported.Origin);
            Assert.Equal(log.Get(17).CanonicalJson.ToArray(), exported.Get(17).CanonicalJson.ToArray());
        }

        Assert.Throws<IOException>(() => log.ExportTo(folder));
    }

    [Fact]
    public async Task ExportTo_APrefix_HoldsExactlyThoseEntries_CheckpointCopiedOnlyWhenItFits_SignableForThatSize()
    {
        using var key = AuditSigningKey.Generate("export.test");
        using var log = Open(origin: "export.test");
        for (var i = 0; i < 10; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        log.CreateCheckpoint(key);
        for (var i = 10; i < 20; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        using var target = new TempDir();

        // A prefix beyond the checkpoint keeps it (it still fits), and the export signs on for its own size.
        var wide = Path.Combine(target.Path, "wide");
        Assert.Equal(14, log.ExportTo(wide, 14));
        using (var exported = AuditLog.Open(new AuditLogOptions { Directory = wide, MetricsRegistry = new CollectorRegistry() }))
        {
            Assert.Equal(14, exported.Count);
            Assert.Equal(10, exported.LatestCheckpoint!.TreeSize);
            Assert.Equal(14, exported.CreateCheckpoint(key).TreeSize);
            Assert.Equal(log.GetRootHash(14).ToArray(), exported.GetRootHash(14).ToArray());
        }

        var result = AuditLog.Verify(wide, key.ToVerifierKey());
        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(14, result.Checkpoint!.TreeSize);

        // A prefix shorter than the checkpoint cannot carry it.
        var narrow = Path.Combine(target.Path, "narrow");
        Assert.Equal(4, log.ExportTo(narrow, 4));
        Assert.Null(AuditLog.Verify(narrow, key.ToVerifierKey()).Checkpoint);
        Assert.Equal(0, log.ExportTo(Path.Combine(target.Path, "empty"), 0));

        Assert.Throws<ArgumentOutOfRangeException>(() => log.ExportTo(Path.Combine(target.Path, "beyond"), 21));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.ExportTo(Path.Combine(target.Path, "negative"), -1));
    }

    [Fact]
    public async Task Open_Reopened_KeepsEntriesAndOriginAndRefusesAnotherOrigin()
    {
        byte[] root;
        using (var log = Open(origin: "reopen.test"))
        {
            for (var i = 0; i < 5; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }

            root = log.GetRootHash(5).ToArray();
        }

        using (var log = Open())
        {
            Assert.Equal("reopen.test", log.Origin);
            Assert.Equal(5, log.Count);
            Assert.Equal(root, log.GetRootHash(5).ToArray());
            Assert.Equal(5, (await log.AppendAsync(Samples.Event(5), Ct)).Index);
            Assert.Equal(AuditLogState.Writable, log.State);
        }

        Assert.Throws<ArgumentException>(() => Open(origin: "another.origin"));
    }
}

/// <summary>The conformance suite on the embedded file log.</summary>
public sealed class FileAuditLogConformanceTests : AuditLogConformanceTests
{
    private readonly TempDir _dir = new();

    public override ValueTask InitializeAsync() => ValueTask.CompletedTask;

    protected override void Cleanup() => _dir.Dispose();

    protected override AuditLog Open(string? origin = null, string? verifierKey = null) =>
        AuditLog.Open(new AuditLogOptions { Directory = _dir.Path, Origin = origin, VerifierKey = verifierKey, MetricsRegistry = new CollectorRegistry() });

    protected override Task TamperAsync(AuditLog log, long index)
    {
        // Flip a letter inside the record of entry `index` (its frame's CRC no longer matches).
        var path = Path.Combine(_dir.Path, "entries.log");
        var bytes = File.ReadAllBytes(path);
        var at = bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes($"{{\"index\":{index},"));
        Assert.True(at > 0);
        var actor = bytes.AsSpan(at).IndexOf("\"actor\":\"actor-"u8) + at + 10;
        bytes[actor] ^= 0x01;
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        RandomAccess.Write(file, bytes.AsSpan(actor, 1), actor);
        return Task.CompletedTask;
    }
}

/// <summary>The conformance suite on the PostgreSQL log (a fresh database of the throwaway cluster per test).</summary>
public sealed class PostgresAuditLogConformanceTests(PostgresCluster cluster) : AuditLogConformanceTests
{
    private string _connectionString = string.Empty;

    public override async ValueTask InitializeAsync() => _connectionString = await cluster.CreateDatabaseAsync();

    protected override AuditLog Open(string? origin = null, string? verifierKey = null) =>
        AuditLog.Open(new AuditLogOptions { ConnectionString = _connectionString, Origin = origin, VerifierKey = verifierKey, MetricsRegistry = new CollectorRegistry() });

    protected override async Task TamperAsync(AuditLog log, long index)
    {
        // Flip a letter inside the stored record of entry `index`, as someone with UPDATE rights on the table could.
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand("UPDATE har_audit.entries SET payload = set_byte(payload, position('\"actor\":\"actor-'::bytea in payload) + 9, get_byte(payload, position('\"actor\":\"actor-'::bytea in payload) + 9) # 1) WHERE idx = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = index });
        Assert.Equal(1, await command.ExecuteNonQueryAsync(Ct));
    }
}
