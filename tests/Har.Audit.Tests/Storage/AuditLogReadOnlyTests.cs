using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Har.Testing;
using Prometheus;

namespace Har.Audit.Tests.Storage;

/// <summary>
/// <see cref="AuditLog.OpenReadOnly"/>: a view that changes nothing in the folder, whatever state the log is in, and reads
/// a log another process owns and appends to. Found by fuzzing the CLI: its read commands opened the log for writing, so
/// an auditor's <c>har audit show</c> dropped a torn tail into torn/, rewrote the derived files and wrote a seal, and
/// failed outright while the service held the log.
/// </summary>
public sealed class AuditLogReadOnlyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static AuditLogOptions Options(string dir) => new() { Directory = dir, MetricsRegistry = new CollectorRegistry() };

    [Fact]
    public async Task OpenReadOnly_TornTail_ChangesNoFileReadsEveryEntryAndProvesWhatAWritableOpenProves()
    {
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("k");
        await Append(dir.Path, 20, key);
        var segment = dir.Combine("entries.log");
        var clean = new FileInfo(segment).Length;
        await AppendTornFrame(segment);
        var before = FolderSnapshot.Take(dir.Path);

        string[] proofs;
        string consistency, bundle;
        using (var view = AuditLog.OpenReadOnly(dir.Path))
        {
            Assert.Equal(20, view.Count);
            for (var i = 0; i < 20; i++)
            {
                Assert.Equal(Samples.Event(i).EntityId, view.Get(i).EntityId);
            }

            Assert.Throws<ArgumentOutOfRangeException>(() => view.Get(20));
            Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"readable up to entry 20: at segment offset {clean} ("), view.ReadOnlyStopReason, StringComparison.Ordinal);
            Assert.Contains("nothing valid follows it", view.ReadOnlyStopReason, StringComparison.Ordinal);
            Assert.Equal(20, view.Query(new AuditQuery { PageSize = 1000 }).Entries.Count);
            Assert.Equal(new long[] { 3, 10, 17 }, view.Query(new AuditQuery { EntityId = "entity-3" }).Entries.Select(e => e.Index));
            var inclusions = Enumerable.Range(0, 20).Select(i => view.GetInclusionProof(i)).ToList();
            Assert.All(inclusions, p => Assert.True(p.Verify()));
            proofs = [.. inclusions.Select(p => p.ToJson())];
            var c = view.GetConsistencyProof(7);
            Assert.True(c.Verify());
            consistency = c.ToJson();
            var b = view.ExportProof(5);
            Assert.True(b.Verify(key.ToVerifierKey(), out var problem), problem);
            bundle = b.ToJson();
            // The folder's torn tail is reported, not hidden: a write the crash cut past every checkpoint and seal, never
            // acknowledged, which the next open moves to torn/ (not tampering: the entries before it verify).
            var verified = view.Verify();
            Assert.True(verified.IsValid, verified.ToString());
            Assert.Equal(20, verified.EntriesVerified);
            Assert.Contains("torn write after entry 19", verified.Message, StringComparison.Ordinal);
        }

        Assert.Equal(before, FolderSnapshot.Take(dir.Path));

        // The owner's open drops the tail; it proves exactly what the view proved.
        using var owner = AuditLog.Open(Options(dir.Path));
        Assert.True(owner.Recovery.TailTruncated);
        Assert.Equal(proofs, Enumerable.Range(0, 20).Select(i => owner.GetInclusionProof(i).ToJson()));
        Assert.Equal(consistency, owner.GetConsistencyProof(7).ToJson());
        Assert.Equal(bundle, owner.ExportProof(5).ToJson());
    }

    [Theory]
    [InlineData("index rows past the seal cut")]
    [InlineData("index rows past the seal overwritten")]
    [InlineData("Merkle leaves past the seal overwritten")]
    [InlineData("Merkle level files cut to the seal")]
    [InlineData("no seal")]
    [InlineData("seal root wrong")]
    public async Task OpenReadOnly_DerivedFilesPastTheSealStaleOrMissing_ComputesThemInMemoryAndChangesNoFile(string damage)
    {
        using var dir = new TempDir();
        var copy = dir.Combine("copy");
        await Append(dir.Combine("log"), 10, key: null); // sealed at 10 on dispose
        string[] truth;
        string consistency;
        using (var owner = AuditLog.Open(Options(dir.Combine("log"))))
        {
            for (var i = 10; i < 25; i++)
            {
                await owner.AppendAsync(Samples.Event(i), Ct);
            }

            // What a crash leaves: 25 entries, their derived files as far as they got, a seal at 10.
            CopyFolder(dir.Combine("log"), copy);
            truth = [.. Enumerable.Range(0, 25).Select(i => owner.GetInclusionProof(i).ToJson())];
            consistency = owner.GetConsistencyProof(10).ToJson();
        }

        Assert.Contains("\"size\":10", File.ReadAllText(Path.Combine(copy, "state.json")), StringComparison.Ordinal);
        Damage(copy, damage);
        var before = FolderSnapshot.Take(copy);

        using (var view = AuditLog.OpenReadOnly(copy))
        {
            Assert.Equal(25, view.Count);
            Assert.Null(view.ReadOnlyStopReason);
            Assert.Equal(truth, Enumerable.Range(0, 25).Select(i => view.GetInclusionProof(i).ToJson()));
            Assert.Equal(consistency, view.GetConsistencyProof(10).ToJson());
            Assert.Equal(new long[] { 3, 10, 17, 24 }, view.Query(new AuditQuery { EntityId = "entity-3" }).Entries.Select(e => e.Index));
            Assert.Equal(24, view.Get(24).Index);
        }

        Assert.Equal(before, FolderSnapshot.Take(copy));
    }

    [Fact]
    public async Task OpenReadOnly_DamagedAcknowledgedEntry_ExposesThePrefixNamesTheDamageAndRefusesAProofAgainstTheLargerCheckpoint()
    {
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("k");
        await Append(dir.Path, 20, key);
        File.Delete(dir.Combine("state.json")); // no seal: entry 12 is re-scanned
        var offset = AuditLogCrashTests.IndexRowOffset(dir.Path, 12);
        await AuditLogCrashTests.FlipByte(dir.Combine("entries.log"), offset + 40, Ct);
        var before = FolderSnapshot.Take(dir.Path);

        using (var view = AuditLog.OpenReadOnly(dir.Path))
        {
            Assert.Equal(12, view.Count);
            var stop = view.ReadOnlyStopReason;
            Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"readable up to entry 12: at segment offset {offset} ("), stop, StringComparison.Ordinal);
            Assert.Contains("CRC-32C mismatch; 7 valid frames follow it", stop, StringComparison.Ordinal);
            Assert.Contains("covers 20 entries, so entries 12..19 are missing or damaged", stop, StringComparison.Ordinal);
            Assert.Equal(11, view.Get(11).Index);
            Assert.Throws<ArgumentOutOfRangeException>(() => view.Get(12));
            Assert.True(view.GetInclusionProof(11).Verify());
            Assert.Equal(20, view.LatestCheckpoint!.TreeSize);
            var ex = Assert.Throws<InvalidDataException>(() => view.ExportProof(3));
            Assert.Contains("commits to 20 entries but only 12 are readable", ex.Message, StringComparison.Ordinal);
            Assert.Equal(AuditVerificationProblem.Checksum, view.Verify().Problem);
        }

        Assert.Equal(before, FolderSnapshot.Take(dir.Path));
        Assert.Throws<AuditLogCorruptedException>(() => AuditLog.Open(Options(dir.Path))); // the owner's open still refuses
    }

    [Fact]
    public async Task OpenReadOnly_WritesAreRefusedAndTheViewTakesNoLock()
    {
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("k");
        await Append(dir.Path, 3, key);
        var before = FolderSnapshot.Take(dir.Path);

        using (var view = AuditLog.OpenReadOnly(dir.Path))
        using (var second = AuditLog.OpenReadOnly(dir.Path))
        {
            var append = await Assert.ThrowsAsync<InvalidOperationException>(() => view.AppendAsync(Samples.Event(3), Ct));
            Assert.Contains("opened read-only", append.Message, StringComparison.Ordinal);
            Assert.Contains("opened read-only", Assert.Throws<InvalidOperationException>(() => view.CreateCheckpoint(key)).Message, StringComparison.Ordinal);
            Assert.Contains("opened read-only", Assert.Throws<InvalidOperationException>(() => view.CreateCheckpoint()).Message, StringComparison.Ordinal);
            Assert.Equal(AuditLogState.Unavailable, view.State);
            Assert.Equal(3, second.Count);
            Assert.Equal(before, FolderSnapshot.Take(dir.Path));

            // No lock and no in-process registration: the owner opens beside the views, and appends go on.
            using var owner = AuditLog.Open(Options(dir.Path));
            await owner.AppendAsync(Samples.Event(3), Ct);
            Assert.Equal(3, view.Count);
        }

        using var later = AuditLog.OpenReadOnly(dir.Path);
        Assert.Equal(4, later.Count);
    }

    [Fact]
    public async Task Open_WhileAReaderBrieflyHoldsTheLockToAskWhetherTheLogIsLive_WaitsItOutAndOpens()
    {
        // `har audit verify` and a read-only view that stopped short ask whether a writer holds the log by taking its lock
        // file for a moment. A service starting at that instant failed with "open in another process". Here the reader's
        // probe is held while the owner starts, and let go a moment later.
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("k");
        await Append(dir.Path, 3, key);
        var probe = File.OpenHandle(dir.Combine("lock"), FileMode.Open, FileAccess.Read, FileShare.None);
        Task<AuditLog> opening;
        try
        {
            opening = Task.Run(() => AuditLog.Open(Options(dir.Path)), Ct);
            await Task.Delay(100, Ct);
        }
        finally
        {
            probe.Dispose();
        }

        using var log = await opening;
        Assert.Equal(3, log.Count);
    }

    [Fact]
    public void OpenReadOnly_NoLog_ThrowsNamingWhatIsMissingAndCreatesNothing()
    {
        using var dir = new TempDir();
        var missing = dir.Combine("no-such-log");
        Assert.Throws<DirectoryNotFoundException>(() => AuditLog.OpenReadOnly(missing));
        Assert.False(Directory.Exists(missing));

        var empty = Directory.CreateDirectory(dir.Combine("empty")).FullName;
        Assert.Contains("entries.log is missing", Assert.Throws<InvalidDataException>(() => AuditLog.OpenReadOnly(empty)).Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(empty));

        File.WriteAllBytes(Path.Combine(empty, "entries.log"), "HARLOG01"u8.ToArray());
        Assert.Contains("log.json", Assert.Throws<InvalidDataException>(() => AuditLog.OpenReadOnly(empty)).Message, StringComparison.Ordinal);
        Assert.Equal(new[] { "entries.log" }, Directory.EnumerateFileSystemEntries(empty).Select(e => Path.GetFileName(e)));
    }

    [Fact]
    public async Task OpenReadOnly_WhileAnotherProcessAppends_ReadsPrefixesWhoseProofsMatchTheRootsTheOwnerReportsLater()
    {
        var host = AuditLogCrashTests.CrashHostPath();
        using var dir = new TempDir();
        var acks = new ConcurrentQueue<long>();
        var pastFirstSeal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var views = new List<(long Size, string Root)>();
        using (var process = AuditLogCrashTests.Start(host, dir.Path, 0))
        {
            try
            {
                Assert.StartsWith("ready", await process.StandardOutput.ReadLineAsync(Ct), StringComparison.Ordinal);
                var drain = Task.Run(
                    async () =>
                    {
                        while (await process.StandardOutput.ReadLineAsync(Ct) is { } line)
                        {
                            acks.Enqueue(long.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture));
                            if (acks.Count >= 400)
                            {
                                pastFirstSeal.TrySetResult();
                            }
                        }
                    },
                    Ct);
                await pastFirstSeal.Task.WaitAsync(TimeSpan.FromSeconds(60), Ct); // the owner seals every 300 entries
                var ioex = Assert.Throws<IOException>(() => AuditLog.Open(new AuditLogOptions { Directory = dir.Path, EnableMetrics = false }));
                Assert.Contains("AuditLog.OpenReadOnly(directory)", ioex.Message, StringComparison.Ordinal);

                var clock = Stopwatch.StartNew();
                while (views.Count < 12 && clock.Elapsed < TimeSpan.FromSeconds(90))
                {
                    using var view = AuditLog.OpenReadOnly(dir.Path);
                    var n = view.Count;
                    if (n == 0 || (views.Count > 0 && n == views[^1].Size))
                    {
                        continue;
                    }

                    Assert.Equal(n - 1, view.Get(n - 1).Index);
                    var inclusion = view.GetInclusionProof(n / 2);
                    Assert.True(inclusion.Verify(), $"view of {n} entries: {view.ReadOnlyStopReason}");
                    if (views.Count > 0)
                    {
                        var consistency = view.GetConsistencyProof(views[0].Size);
                        Assert.True(consistency.Verify());
                        Assert.Equal(views[0].Root, Convert.ToHexStringLower(consistency.FromRoot.Span));
                    }

                    views.Add((n, Convert.ToHexStringLower(inclusion.RootHash.Span)));
                }

                Assert.False(process.HasExited, AuditLogCrashTests.Errors(process));
            }
            finally
            {
                process.Kill();
                await process.WaitForExitAsync(Ct);
            }
        }

        Assert.True(views.Count >= 12, $"the views saw the log grow only {views.Count} times");
        using var owner = AuditLog.Open(Options(dir.Path));
        Assert.True(owner.Count >= views[^1].Size && owner.Count > acks.Max());
        foreach (var (size, root) in views)
        {
            Assert.Equal(root, Convert.ToHexStringLower(owner.GetRootHash(size).Span));
        }
    }

    private static async Task Append(string dir, int count, AuditSigningKey? key)
    {
        using var log = AuditLog.Open(Options(dir));
        for (var i = 0; i < count; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        if (key is not null)
        {
            log.CreateCheckpoint(key);
        }
    }

    /// <summary>A frame header claiming more bytes than follow, and a few of them: what a crash mid-write leaves.</summary>
    private static async Task AppendTornFrame(string segment)
    {
        await using var f = new FileStream(segment, FileMode.Append);
        var torn = new byte[40];
        BitConverter.TryWriteBytes(torn.AsSpan(0, 4), 500);
        torn.AsSpan(8).Fill((byte)'x');
        await f.WriteAsync(torn, Ct);
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != "lock"))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var destination = File.Create(target);
            source.CopyTo(destination);
        }
    }

    private static void Damage(string dir, string damage)
    {
        var random = new Random(7);
        void Overwrite(string file, long from, long to)
        {
            using var f = new FileStream(file, FileMode.Open, FileAccess.Write);
            var bytes = new byte[to - from];
            random.NextBytes(bytes);
            f.Position = from;
            f.Write(bytes);
        }

        switch (damage)
        {
            case "index rows past the seal cut":
                using (var f = new FileStream(Path.Combine(dir, "entries.idx"), FileMode.Open))
                {
                    f.SetLength(12 * 40);
                }

                break;
            case "index rows past the seal overwritten":
                Overwrite(Path.Combine(dir, "entries.idx"), 10 * 40, 25 * 40);
                break;
            case "Merkle leaves past the seal overwritten":
                Overwrite(Path.Combine(dir, "tree", "level-00.hashes"), 10 * 32, 25 * 32);
                break;
            case "Merkle level files cut to the seal":
                foreach (var level in Directory.GetFiles(Path.Combine(dir, "tree")))
                {
                    var nodes = 10 >> int.Parse(Path.GetFileNameWithoutExtension(level)[6..], CultureInfo.InvariantCulture);
                    if (nodes == 0)
                    {
                        File.Delete(level);
                        continue;
                    }

                    using var f = new FileStream(level, FileMode.Open);
                    f.SetLength(nodes * 32);
                }

                break;
            case "no seal":
                File.Delete(Path.Combine(dir, "state.json"));
                break;
            case "seal root wrong":
                var seal = File.ReadAllText(Path.Combine(dir, "state.json"));
                var root = seal.IndexOf("\"root\":\"", StringComparison.Ordinal) + 8;
                File.WriteAllText(Path.Combine(dir, "state.json"), string.Concat(seal.AsSpan(0, root), new string('0', 64), seal.AsSpan(root + 64)));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(damage), damage, null);
        }
    }
}
