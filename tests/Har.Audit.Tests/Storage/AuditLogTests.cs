using System.Text;
using System.Text.Json;
using Har.Audit.Merkle;
using Prometheus;

namespace Har.Audit.Tests.Storage;

public sealed class AuditLogTests
{
    private static AuditLog OpenLog(string dir, int sealInterval = 262_144, CollectorRegistry? registry = null, string? vkey = null) =>
        AuditLog.Open(new AuditLogOptions { Directory = dir, SealInterval = sealInterval, MetricsRegistry = registry ?? new CollectorRegistry(), VerifierKey = vkey });

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AppendAsync_64ConcurrentAppenders_DistinctIndexesAndSharedFsyncs()
    {
        using var dir = new TempDir();
        var registry = new CollectorRegistry();
        using var log = OpenLog(dir.Path, registry: registry);
        var tasks = Enumerable.Range(0, 64).Select(t => Task.Run(async () =>
        {
            var indexes = new List<long>();
            for (var k = 0; k < 40; k++)
            {
                indexes.Add((await log.AppendAsync(Samples.Event((t * 100) + k), Ct)).Index);
            }

            return indexes;
        }, Ct)).ToArray();
        var all = (await Task.WhenAll(tasks)).SelectMany(x => x).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 64 * 40).Select(i => (long)i), all);

        var metrics = await Export(registry);
        Assert.Contains("har_audit_appends_total 2560", metrics, StringComparison.Ordinal);
        var fsyncs = MetricValue(metrics, "har_audit_fsync_duration_seconds_count");
        Assert.InRange(fsyncs, 1, 2559); // group commit: fewer fsyncs than appends
        Assert.Equal(2560, MetricValue(metrics, "har_audit_log_entries"));
        Assert.True(log.Verify().IsValid);
    }

    [Fact]
    public async Task AppendOnceAsync_SameRecordsFromManyCallersAndAfterReopen_EachIsWrittenOnce()
    {
        using var dir = new TempDir();
        var expected = new Dictionary<int, long>();
        using (var log = OpenLog(dir.Path))
        {
            await log.AppendAsync(Samples.Event(1000), Ct);
            var tasks = Enumerable.Range(0, 16).Select(t => Task.Run(async () =>
            {
                var results = new List<(int Record, AuditAppendResult Result)>();
                foreach (var k in Enumerable.Range(0, 30).OrderBy(k => (k * 7919) + t))
                {
                    results.Add((k, await log.AppendOnceAsync(Samples.Event(k), Ct)));
                }

                return results;
            }, Ct)).ToArray();
            var all = (await Task.WhenAll(tasks)).SelectMany(x => x).ToList();
            Assert.Equal(31, log.Count);
            foreach (var group in all.GroupBy(a => a.Record))
            {
                var index = Assert.Single(group.Select(g => g.Result.Index).Distinct());
                Assert.Single(group, g => !g.Result.AlreadyPresent);
                Assert.All(group, g => Assert.Equal(log.Get(index).LeafHash.ToArray(), g.Result.LeafHash.ToArray()));
                expected[group.Key] = index;
            }

            // A plain append of the same record is a second entry (AppendAsync never deduplicates), and a record that
            // differs in its actor only is another record.
            Assert.Equal(31, (await log.AppendAsync(Samples.Event(4), Ct)).Index);
            Assert.False((await log.AppendOnceAsync(Samples.Event(4, actor: "someone-else"), Ct)).AlreadyPresent);
        }

        // Another process's instance, later: found in the file, not in memory.
        using var reopened = OpenLog(dir.Path);
        var again = await reopened.AppendOnceAsync(Samples.Event(17), Ct);
        Assert.True(again.AlreadyPresent);
        Assert.Equal(expected[17], again.Index);
        Assert.Equal(33, reopened.Count);
        Assert.True(reopened.Verify().IsValid);
        using var view = AuditLog.OpenReadOnly(dir.Path);
        await Assert.ThrowsAsync<InvalidOperationException>(() => view.AppendOnceAsync(Samples.Event(1), Ct));
    }

    [Fact]
    public async Task Open_AfterDispose_KeepsEverythingWithoutRescan()
    {
        using var dir = new TempDir();
        byte[] root;
        using (var log = OpenLog(dir.Path))
        {
            for (var i = 0; i < 25; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }

            root = log.GetRootHash(25).ToArray();
        }

        using var reopened = OpenLog(dir.Path);
        Assert.Equal(25, reopened.Count);
        Assert.Equal(25, reopened.Recovery.SealedEntries);
        Assert.Equal(0, reopened.Recovery.ScannedEntries);
        Assert.False(reopened.Recovery.TailTruncated);
        Assert.Equal(root, reopened.GetRootHash(25).ToArray());
        Assert.Equal(26, (await reopened.AppendAsync(Samples.Event(99), Ct)).Index + 1);
        Assert.Equal(reopened.Get(24).LeafHash.ToArray(), reopened.Get(25).PreviousHash.ToArray());
    }

    [Fact]
    public void Open_VerifierKeyThatIsNotAKey_IsRefusedNamingTheOption()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<ArgumentException>(() => OpenLog(dir.Path, vkey: "garbage"));
        Assert.Contains("AuditLogOptions.VerifierKey", ex.Message, StringComparison.Ordinal);
        Assert.Contains("<name>+<8 hex digit key id>+<base64 key>", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, "entries.log")), "nothing is created for refused options");

        // A real verifier key is taken as before.
        using var log = OpenLog(dir.Path, vkey: AuditSigningKey.Generate("har-test").VerifierKey);
        Assert.Equal(0, log.Count);
    }

    [Fact]
    public async Task ReadsAndProofs_AfterDispose_ThrowObjectDisposedNamingTheLog()
    {
        using var dir = new TempDir();
        var log = OpenLog(dir.Path);
        await log.AppendAsync(Samples.Event(1), Ct);
        log.CreateCheckpoint(AuditSigningKey.Generate("har-test"));
        log.Dispose();

        var calls = new (string Name, Action Call)[]
        {
            ("Get", () => log.Get(0)),
            ("Query", () => log.Query(new AuditQuery())),
            ("GetConsistencyProof", () => log.GetConsistencyProof(1)),
            ("ExportProof", () => log.ExportProof(0)),
            ("Verify", () => log.Verify()),
            ("CreateCheckpoint", () => log.CreateCheckpoint(AuditSigningKey.Generate("har-test"))),
            ("ExportTo", () => log.ExportTo(Path.Combine(dir.Path, "export"))),
        };
        foreach (var (name, call) in calls)
        {
            var ex = Assert.Throws<ObjectDisposedException>(call);
            Assert.True(ex.ObjectName == typeof(AuditLog).FullName, $"{name}: {ex.GetType().Name} names '{ex.ObjectName}': {ex.Message}");
        }
    }

    [Fact]
    public async Task Open_SecondOwnerInThisProcess_SaysSoAndTheFolderReopensAfterDispose()
    {
        using var dir = new TempDir();
        var log = OpenLog(dir.Path);
        await log.AppendAsync(Samples.Event(1), Ct);
        var ex = Assert.Throws<InvalidOperationException>(() => OpenLog(dir.Path + Path.DirectorySeparatorChar));
        Assert.Contains("already open in this process", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("another process", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, log.Count); // the refused second open left the first one working
        await log.AppendAsync(Samples.Event(2), Ct);
        log.Dispose();

        using var reopened = OpenLog(dir.Path);
        Assert.Equal(2, reopened.Count);
    }

    [Fact]
    public async Task Open_GarbageAfterLastFrame_TruncatesKeepsCopyAndReports()
    {
        using var dir = new TempDir();
        using (var log = OpenLog(dir.Path))
        {
            for (var i = 0; i < 10; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }
        }

        var segment = Path.Combine(dir.Path, "entries.log");
        var cleanLength = new FileInfo(segment).Length;
        var garbage = new byte[] { 0x10, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x7b, 0x22 }; // a frame header claiming 16 bytes, then 2
        await using (var f = new FileStream(segment, FileMode.Append))
        {
            await f.WriteAsync(garbage, Ct);
        }

        using var reopened = OpenLog(dir.Path);
        var report = reopened.Recovery;
        Assert.True(report.TailTruncated);
        Assert.Equal(cleanLength, report.TruncatedAtOffset);
        Assert.Equal(garbage.Length, report.TruncatedBytes);
        Assert.Contains("runs past the end", report.Reason, StringComparison.Ordinal);
        Assert.Equal(garbage, await File.ReadAllBytesAsync(report.QuarantinePath!, Ct));
        Assert.Equal(cleanLength, new FileInfo(segment).Length);
        Assert.Equal(10, reopened.Count);
        Assert.True(reopened.Verify().IsValid);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Verify_CrashedLogNotYetReopened_DerivedFilesShortPastTheSeal_IsValidAndSaysTheOpenRebuildsThem(bool tornLastFrame)
    {
        // Found from outside: after a SIGKILL, verifying the log before any process reopened it said FAILED ("the stored
        // Merkle node (level 0, index N) is missing"): the crash came after the group's entries were fsynced and before
        // its nodes and index rows were written, which an open rebuilds from the entries. 6 of 10 crashes under load.
        using var dir = new TempDir();
        using var snapshot = new TempDir();
        using (var log = OpenLog(dir.Path))
        {
            for (var i = 0; i < 12; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }

            log.CreateCheckpoint(AuditSigningKey.Generate("audit.test/crash"));
            for (var i = 12; i < 20; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }

            CopyAsACrashLeavesIt(dir.Path, snapshot.Path);
        }

        // The last two entries' leaves (and the level-1 node they complete) and index rows were never written.
        static void Cut(string path, long bytes)
        {
            using var f = new FileStream(path, FileMode.Open);
            f.SetLength(Math.Max(0, f.Length - bytes));
        }

        Cut(Path.Combine(snapshot.Path, "tree", "level-00.hashes"), 2 * 32);
        Cut(Path.Combine(snapshot.Path, "tree", "level-01.hashes"), 32);
        Cut(Path.Combine(snapshot.Path, "entries.idx"), 2 * 40);
        if (tornLastFrame)
        {
            Cut(Path.Combine(snapshot.Path, "entries.log"), 30);
        }

        var result = AuditLog.Verify(snapshot.Path, null);
        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(tornLastFrame ? 19 : 20, result.EntriesVerified);
        Assert.Contains("the next open rebuilds their derived files", result.Message, StringComparison.Ordinal);
        Assert.Equal(tornLastFrame, result.Message.Contains("torn write", StringComparison.Ordinal));

        // The same files with an entry changed, or a derived file changed below the checkpoint's entries, still fail.
        using (var reopened = OpenLog(snapshot.Path))
        {
            Assert.Equal(tornLastFrame ? 19 : 20, reopened.Count);
        }

        Assert.True(AuditLog.Verify(snapshot.Path, null).IsValid);
        await AuditLogCrashTests.FlipByte(Path.Combine(snapshot.Path, "tree", "level-00.hashes"), 3 * 32, Ct);
        Assert.Equal(AuditVerificationProblem.StoredTree, AuditLog.Verify(snapshot.Path, null).Problem);
    }

    /// <summary>Copies a log's files while its writer holds it open: the disk as a crash at this moment leaves it.</summary>
    private static void CopyAsACrashLeavesIt(string log, string snapshot)
    {
        foreach (var file in Directory.EnumerateFiles(log, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith("lock", StringComparison.Ordinal)))
        {
            var target = Path.Combine(snapshot, Path.GetRelativePath(log, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [Fact]
    public async Task Open_CrashSnapshotWithTornLastFrame_DropsOnlyThatFrame()
    {
        using var dir = new TempDir();
        using var snapshot = new TempDir();
        using (var log = OpenLog(dir.Path))
        {
            for (var i = 0; i < 12; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }

            // A crash now leaves the files as they are (no seal since open): copy them as the "disk after the crash".
            CopyAsACrashLeavesIt(dir.Path, snapshot.Path);
        }

        var segment = Path.Combine(snapshot.Path, "entries.log");
        var length = new FileInfo(segment).Length;
        using (var f = new FileStream(segment, FileMode.Open))
        {
            f.SetLength(length - 30); // the last frame is torn
        }

        using var reopened = OpenLog(snapshot.Path);
        Assert.True(reopened.Recovery.TailTruncated);
        Assert.Equal(11, reopened.Count);
        Assert.Equal(11, reopened.Recovery.ScannedEntries);
        Assert.True(reopened.Verify().IsValid);
        Assert.Equal(11, (await reopened.AppendAsync(Samples.Event(50), Ct)).Index);
    }

    [Fact]
    public async Task Query_FiltersAndPages_MatchLinqOverTheSourceAndStayStableWhileAppending()
    {
        using var dir = new TempDir();
        using var log = OpenLog(dir.Path);
        var source = new List<AuditEvent>();
        for (var i = 0; i < 230; i++)
        {
            var e = Samples.Event(i, eventType: i % 4 == 0 ? "model.promoted" : "model.scored", at: Samples.T0.AddMinutes(i % 50));
            source.Add(e);
            await log.AppendAsync(e, Ct);
        }

        var from = Samples.T0.AddMinutes(10);
        var to = Samples.T0.AddMinutes(30);
        var query = new AuditQuery { EventType = "model.promoted", Actor = "actor-1", From = from, To = to, PageSize = 3 };
        var expected = source.Select((e, i) => (e, i))
            .Where(t => t.e.EventType == "model.promoted" && t.e.Actor == "actor-1" && t.e.Timestamp >= from && t.e.Timestamp < to)
            .Select(t => (long)t.i).ToList();
        Assert.NotEmpty(expected);

        var got = new List<long>();
        string? token = null;
        var pages = 0;
        do
        {
            var page = log.Query(new AuditQuery { EventType = query.EventType, Actor = query.Actor, From = from, To = to, PageSize = 3, PageToken = token });
            Assert.InRange(page.Entries.Count, 0, 3);
            got.AddRange(page.Entries.Select(e => e.Index));
            token = page.NextPageToken;
            await log.AppendAsync(Samples.Event(1000 + pages, eventType: "model.other"), Ct); // appends between pages must not shift results
            pages++;
        }
        while (token is not null);

        Assert.Equal(expected, got);
        Assert.True(pages >= expected.Count / 3);

        var byEntity = log.Query(new AuditQuery { EntityType = "model", EntityId = "entity-3", PageSize = 1000 });
        Assert.Equal(source.Select((e, i) => (e, i)).Where(t => t.e.EntityId == "entity-3").Select(t => (long)t.i), byEntity.Entries.Select(e => e.Index));
        Assert.Empty(log.Query(new AuditQuery { Kind = AuditRecordKind.Deployment }).Entries);
        Assert.Throws<FormatException>(() => log.Query(new AuditQuery { PageToken = "nope" }));
    }

    [Fact]
    public async Task Proofs_FromStoredNodes_EqualInMemoryTreeAndVerify()
    {
        using var dir = new TempDir();
        using var log = OpenLog(dir.Path, sealInterval: 64);
        var memory = new MemoryMerkleTree();
        var rng = new Random(11);
        for (var i = 0; i < 333; i++)
        {
            var ack = await log.AppendAsync(Samples.Event(i), Ct);
            memory.AppendLeafHash(ack.LeafHash.Span);
        }

        foreach (var size in new long[] { 1, 2, 7, 64, 65, 200, 333 })
        {
            Assert.Equal(memory.Root(size), log.GetRootHash(size).ToArray());
            for (var k = 0; k < 10; k++)
            {
                var index = rng.NextInt64(size);
                var proof = log.GetInclusionProof(index, size);
                Assert.True(proof.Verify());
                Assert.Equal(MerkleProofBuilder.Inclusion(memory, index, size).Select(p => Convert.ToHexString(p.Span)), proof.Path.Select(p => Convert.ToHexString(p.Span)));
                var from = rng.NextInt64(1, size + 1);
                var consistency = log.GetConsistencyProof(from, size);
                Assert.True(consistency.Verify());
                Assert.Equal(memory.Root(from), consistency.FromRoot.ToArray());
            }
        }

        using var json = JsonDocument.Parse(log.GetInclusionProof(5, 200).ToJson());
        Assert.Equal(200, json.RootElement.GetProperty("tree_size").GetInt64());
        Assert.Equal(Convert.ToHexStringLower(memory.Root(200)), json.RootElement.GetProperty("root_hash").GetString());
    }

    [Fact]
    public async Task Proofs_LargeLogWithInMemoryUpperLevels_MatchInMemoryTreeBeforeAndAfterReopen()
    {
        using var dir = new TempDir();
        var memory = new MemoryMerkleTree();
        var rng = new Random(12);
        const int count = 4100; // upper tree levels (≥ 1024 leaves per node) are served from memory
        using (var log = OpenLog(dir.Path, sealInterval: 1500))
        {
            var acks = await Task.WhenAll(Enumerable.Range(0, count).Select(i => log.AppendAsync(Samples.Event(i), Ct)));
            foreach (var ack in acks.OrderBy(a => a.Index))
            {
                memory.AppendLeafHash(ack.LeafHash.Span);
            }

            Check(log);
        }

        using var reopened = OpenLog(dir.Path);
        Check(reopened);

        void Check(AuditLog log)
        {
            foreach (var size in new long[] { 1024, 1025, 2048, 3000, 4096, count })
            {
                Assert.Equal(memory.Root(size), log.GetRootHash(size).ToArray());
                var index = rng.NextInt64(size);
                Assert.Equal(
                    MerkleProofBuilder.Inclusion(memory, index, size).Select(p => Convert.ToHexString(p.Span)),
                    log.GetInclusionProof(index, size).Path.Select(p => Convert.ToHexString(p.Span)));
                Assert.True(log.GetConsistencyProof(1 + rng.NextInt64(size), size).Verify());
            }
        }
    }

    [Fact]
    public async Task CreateCheckpoint_Concurrently_NeverReplacesANewerCheckpointWithAnOlderOne()
    {
        // Writers append and sign at once (the service's background signer beside proof requests). Before signing was
        // serialised, a slower signer of a smaller tree could write its note last: the latest checkpoint went backwards,
        // and a proof of an entry its own signer had just covered was refused.
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("audit.example.com/har-test");
        using var log = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, Origin = "audit.example.com/har-test", MetricsRegistry = new CollectorRegistry() });
        var violations = new System.Collections.Concurrent.ConcurrentBag<string>();
        await Parallel.ForAsync(0, 8, Ct, async (w, ct) =>
        {
            for (var i = 0; i < 25; i++)
            {
                var index = (await log.AppendAsync(Samples.Event((w * 100) + i), ct)).Index;
                var signed = log.CreateCheckpoint(key);
                var latest = log.LatestCheckpoint!.TreeSize;
                if (signed.TreeSize <= index || latest < signed.TreeSize)
                {
                    violations.Add($"entry {index}: signed {signed.TreeSize}, latest {latest}");
                }

                _ = log.ExportProof(index); // covered by the latest checkpoint
            }
        });

        Assert.Empty(violations);
        Assert.Equal(200, log.LatestCheckpoint!.TreeSize);
    }

    [Fact]
    public async Task CreateCheckpoint_ExportProof_VerifiesOfflineAndRejectsTampering()
    {
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("audit.example.com/har-test");
        using var log = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, Origin = "audit.example.com/har-test", MetricsRegistry = new CollectorRegistry() });
        for (var i = 0; i < 21; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        var checkpoint = log.CreateCheckpoint(key);
        Assert.Equal(21, checkpoint.TreeSize);
        Assert.Equal(checkpoint.NoteText, log.LatestCheckpoint!.NoteText);
        await log.AppendAsync(Samples.Event(21), Ct);

        var bundle = AuditProofBundle.Parse(log.ExportProof(13).ToJson());
        var verifier = AuditVerifierKey.Parse(key.VerifierKey);
        Assert.True(bundle.Verify(verifier, out var problem), problem);
        Assert.Throws<ArgumentOutOfRangeException>(() => log.ExportProof(21));

        using var other = AuditSigningKey.Generate("audit.example.com/har-test");
        Assert.False(bundle.Verify(other.ToVerifierKey(), out problem));
        Assert.Contains("no valid signature", problem, StringComparison.Ordinal);

        var json = System.Text.Json.Nodes.JsonNode.Parse(log.ExportProof(13).ToJson())!;
        var entry = Convert.FromBase64String(json["entry"]!.GetValue<string>());
        entry[entry.Length / 2] ^= 0x01;
        json["entry"] = Convert.ToBase64String(entry);
        Assert.False(AuditProofBundle.Parse(json.ToJsonString()).Verify(verifier, out _));

        // The readable copy is what an auditor reads: editing it (the proven bytes untouched) fails verification too.
        // Found by fuzzing the CLI: an edited actor in entry_json still verified "OK".
        var readable = System.Text.Json.Nodes.JsonNode.Parse(log.ExportProof(13).ToJson())!;
        Assert.True(AuditProofBundle.Parse(readable.ToJsonString()).Verify(verifier, out problem), problem);
        readable["entry_json"]!["record"]!["actor"] = "someone-else";
        Assert.False(AuditProofBundle.Parse(readable.ToJsonString()).Verify(verifier, out problem));
        Assert.Contains("entry_json", problem, StringComparison.Ordinal);
        readable.AsObject().Remove("entry_json");
        Assert.True(AuditProofBundle.Parse(readable.ToJsonString()).Verify(verifier, out problem), problem); // the proven bytes alone still verify

        // Verify with the stored key (not pinned) and with a pinned key.
        var result = log.Verify();
        Assert.True(result.IsValid, result.Message);
        Assert.False(result.VerifierKeyPinned);
        var pinned = AuditLog.Verify(dir.Path, verifier);
        Assert.True(pinned.IsValid && pinned.VerifierKeyPinned, pinned.Message);
        Assert.Equal(AuditVerificationProblem.CheckpointSignature, AuditLog.Verify(dir.Path, other.ToVerifierKey()).Problem);

        // A second checkpoint extends the first consistently.
        var second = log.CreateCheckpoint(key);
        Assert.Equal(22, second.TreeSize);
        Assert.True(log.GetConsistencyProof(21, 22).Verify());
    }

    [Fact]
    public async Task Verify_AnySingleByteChangeInASealedLog_ReportsTheRightIndex()
    {
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("har.audit/bytes");
        using (var log = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, Origin = "har.audit/bytes", MetricsRegistry = new CollectorRegistry() }))
        {
            for (var i = 0; i < 37; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }

            log.CreateCheckpoint(key);
        }

        var verifier = key.ToVerifierKey();
        Assert.True(AuditLog.Verify(dir.Path, verifier).IsValid);

        // Where each entry's frame lies, from the query index of the intact log.
        var idx = await File.ReadAllBytesAsync(Path.Combine(dir.Path, "entries.idx"), Ct);
        var frames = Enumerable.Range(0, 37).Select(i => (Offset: BitConverter.ToInt64(idx, i * 40), Length: BitConverter.ToInt32(idx, (i * 40) + 16))).ToArray();
        long EntryAt(long pos) => pos < 8 ? 0 : Array.FindIndex(frames, f => pos >= f.Offset && pos < f.Offset + f.Length);

        var rng = new Random(4242);
        var checkedBytes = 0;
        void Probe(string file, IEnumerable<long> positions, Func<long, long?> expectedIndex)
        {
            var path = Path.Combine(dir.Path, file);
            var bytes = File.ReadAllBytes(path);
            foreach (var pos in positions)
            {
                var original = bytes[pos];
                bytes[pos] ^= (byte)rng.Next(1, 256);
                File.WriteAllBytes(path, bytes);
                var result = AuditLog.Verify(dir.Path, verifier);
                bytes[pos] = original;
                File.WriteAllBytes(path, bytes);
                Assert.False(result.IsValid, $"{file}@{pos} changed but verified");
                var expected = expectedIndex(pos);
                Assert.True(expected == long.MinValue || expected == result.FirstBadIndex, $"{file}@{pos}: expected index {expected}, got {result.FirstBadIndex} ({result.Problem}: {result.Message})");
                checkedBytes++;
            }
        }

        var segmentLength = new FileInfo(Path.Combine(dir.Path, "entries.log")).Length;
        var segmentPositions = Enumerable.Range(0, 8).Select(i => (long)i) // header
            .Concat(frames.SelectMany(f => Enumerable.Range(0, 8).Select(k => f.Offset + k))) // every frame header byte
            .Concat(Enumerable.Range(0, 250).Select(_ => rng.NextInt64(segmentLength))) // random payload bytes
            .Distinct();
        Probe("entries.log", segmentPositions, p => EntryAt(p));
        Probe("entries.idx", Enumerable.Range(0, 120).Select(_ => rng.NextInt64(idx.Length)), p => p / 40);
        for (var level = 0; level <= 5; level++)
        {
            var file = Path.Combine("tree", $"level-{level:D2}.hashes");
            var length = new FileInfo(Path.Combine(dir.Path, file)).Length;
            var l = level;
            Probe(file, Enumerable.Range(0, 20).Select(_ => rng.NextInt64(length)), p => (p / 32) << l);
        }

        var note = Path.Combine(dir.Path, "checkpoint");
        var noteLength = new FileInfo(note).Length;
        Probe("checkpoint", Enumerable.Range(0, 30).Select(_ => rng.NextInt64(noteLength)), _ => long.MinValue);
        Assert.True(checkedBytes > 400);
        Assert.True(AuditLog.Verify(dir.Path, verifier).IsValid);
    }

    [Fact]
    public async Task Verify_CheckpointBeyondTheLog_ReportsMissingEntries()
    {
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("k");
        using (var log = OpenLog(dir.Path))
        {
            await log.AppendAsync(Samples.Event(1), Ct);
            log.CreateCheckpoint(key);
        }

        var forged = SignedCheckpoint.Create(AuditLog.Verify(dir.Path, null).Checkpoint!.Origin, 5, new byte[32], key);
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "checkpoint"), forged.NoteText, Ct);
        var result = AuditLog.Verify(dir.Path, key.ToVerifierKey());
        Assert.Equal(AuditVerificationProblem.CheckpointSize, result.Problem);
        Assert.Equal(1, result.FirstBadIndex);
    }

    [Fact]
    public async Task AppendAsync_RecordLargerThanLimit_IsRejectedBeforeQueueing()
    {
        using var dir = new TempDir();
        using var log = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, MaxRecordBytes = 300, MetricsRegistry = new CollectorRegistry() });
        var big = new AuditEvent
        {
            EventType = "big",
            EntityType = "x",
            EntityId = "y",
            Severity = AuditSeverity.Info,
            ActionDetails = JsonSerializer.SerializeToElement(new { blob = new string('a', 400) }),
            Actor = "z",
            Timestamp = Samples.T0,
        };
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => log.AppendAsync(big, Ct));
        Assert.Contains("at most 300", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, log.Count);
    }

    private static async Task<string> Export(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream, TestContext.Current.CancellationToken);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static double MetricValue(string text, string name) =>
        double.Parse(text.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
}
