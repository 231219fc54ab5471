using Prometheus;

namespace Har.Audit.Tests.Storage;

/// <summary>What opening a damaged log does: only a torn, never-acknowledged tail is dropped on its own.</summary>
public sealed class AuditLogRecoveryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static AuditLogOptions Options(string dir) => new() { Directory = dir, MetricsRegistry = new CollectorRegistry() };

    [Theory]
    [InlineData("{")]
    [InlineData("[]")]
    [InlineData("{\"format\":\"har-audit-log/v1\"}")]
    public async Task ADamagedLogJson_IsInvalidDataNamingIt_AndVerifyFailsOnIt(string content)
    {
        // Found by fuzzing the CLI: a damaged log.json ended every audit command in an unhandled JsonReaderException.
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("k");
        using (var log = AuditLog.Open(Options(dir.Path)))
        {
            await log.AppendAsync(Samples.Event(0), Ct);
            log.CreateCheckpoint(key);
        }

        File.WriteAllText(Path.Combine(dir.Path, "log.json"), content);

        var ex = Assert.Throws<InvalidDataException>(() => AuditLog.Open(Options(dir.Path)));
        Assert.Contains("log.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains("har-audit-log/v1", ex.Message, StringComparison.Ordinal);
        var verified = AuditLog.Verify(dir.Path, key.ToVerifierKey());
        Assert.False(verified.IsValid);
        Assert.Contains("log.json", verified.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_LastFrameDamagedButSignedByACheckpoint_RefusesInsteadOfTruncating()
    {
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("k");
        using (var log = AuditLog.Open(Options(dir.Path)))
        {
            for (var i = 0; i < 10; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }

            log.CreateCheckpoint(key);
        }

        // Without a usable seal the whole segment is re-scanned; the damaged last frame looks like a torn write,
        // but the signed checkpoint says entry 9 was acknowledged.
        File.Delete(Path.Combine(dir.Path, "state.json"));
        var offset = AuditLogCrashTests.IndexRowOffset(dir.Path, 9);
        var segment = Path.Combine(dir.Path, "entries.log");
        await AuditLogCrashTests.FlipByte(segment, new FileInfo(segment).Length - 3, Ct);

        var ex = Assert.Throws<AuditLogCorruptedException>(() => AuditLog.Open(Options(dir.Path)));
        Assert.Equal(9, ex.EntryIndex);
        Assert.Equal(offset, ex.Offset);
        Assert.Contains("checkpoint", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_SegmentCutAtAFrameBoundaryBelowItsCheckpoint_RefusesAndVerifySaysEntriesAreMissing()
    {
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("k");
        using (var log = AuditLog.Open(Options(dir.Path)))
        {
            for (var i = 0; i < 10; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }

            log.CreateCheckpoint(key);
        }

        var cut = AuditLogCrashTests.IndexRowOffset(dir.Path, 8);
        await using (var f = new FileStream(Path.Combine(dir.Path, "entries.log"), FileMode.Open))
        {
            f.SetLength(cut);
        }

        var verification = AuditLog.Verify(dir.Path, key.ToVerifierKey());
        Assert.Equal(AuditVerificationProblem.CheckpointSize, verification.Problem);
        Assert.Contains("entries 8..9 are missing", verification.Message, StringComparison.Ordinal);

        var ex = Assert.Throws<AuditLogCorruptedException>(() => AuditLog.Open(Options(dir.Path)));
        Assert.Equal(8, ex.EntryIndex);
        Assert.Equal(cut, ex.Offset);

        // The operator's repair archives the checkpoint the shortened log no longer matches and records why.
        var report = AuditLog.Repair(Options(dir.Path), "ops", "restored from a partial copy");
        Assert.Equal(8, report.RepairEventIndex);
        Assert.Single(Directory.GetFiles(Path.Combine(dir.Path, "quarantine"), "*.checkpoint"));
        Assert.Equal(AuditVerificationProblem.Quarantined, AuditLog.Verify(dir.Path, null).Problem);
        using var reopened = AuditLog.Open(Options(dir.Path));
        Assert.Equal(9, reopened.Count);
        Assert.Null(reopened.LatestCheckpoint);
        var next = reopened.CreateCheckpoint(key); // a new anchor over the repaired log, repair event included
        Assert.Equal(9, next.TreeSize);
    }

    [Fact]
    public async Task Open_ZeroFilledTailAfterACrash_IsTornAndDroppedWithACopy()
    {
        using var dir = new TempDir();
        using (var log = AuditLog.Open(Options(dir.Path)))
        {
            for (var i = 0; i < 5; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }
        }

        var segment = Path.Combine(dir.Path, "entries.log");
        var clean = new FileInfo(segment).Length;
        await using (var f = new FileStream(segment, FileMode.Append))
        {
            await f.WriteAsync(new byte[4096], Ct); // a file extended by the crash, its data never written
        }

        using var reopened = AuditLog.Open(Options(dir.Path));
        Assert.True(reopened.Recovery.TailTruncated);
        Assert.StartsWith("torn tail", reopened.Recovery.Reason, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(dir.Path, "torn"), reopened.Recovery.QuarantinePath, StringComparison.Ordinal);
        Assert.Equal(clean, new FileInfo(segment).Length);
        Assert.Equal(5, reopened.Count);
        Assert.True(reopened.Verify().IsValid); // a torn tail is not a quarantine
        Assert.Contains("removed 4096 bytes", reopened.Recovery.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Repair_AFlippedByteInASealedEntry_IsFoundAndQuarantinedLikeAnyDamage()
    {
        // An open trusts the sealed entries (the seal's root over the stored Merkle nodes, not the entries' bytes), and so
        // did repair: "nothing to repair", while verify failed on the same log.
        using var dir = new TempDir();
        using (var log = AuditLog.Open(Options(dir.Path)))
        {
            for (var i = 0; i < 20; i++)
            {
                await log.AppendAsync(Samples.Event(i), Ct);
            }
        }

        var segment = Path.Combine(dir.Path, "entries.log");
        var length = new FileInfo(segment).Length;
        var offset = AuditLogCrashTests.IndexRowOffset(dir.Path, 5);
        await AuditLogCrashTests.FlipByte(segment, offset + 40, Ct);
        Assert.False(AuditLog.Verify(dir.Path, null).IsValid);
        using (var opened = AuditLog.Open(Options(dir.Path)))
        {
            Assert.Equal(20, opened.Count); // the sealed entries are not re-read on open (that stays O(1))
        }

        var report = AuditLog.Repair(Options(dir.Path), "ops", "INC-9: verify failed at entry 5");

        Assert.Equal(5, report.Entries);
        Assert.Equal(5, report.RepairEventIndex);
        Assert.Equal(length - offset, new FileInfo(report.QuarantinePath!).Length);
        using var repaired = AuditLog.Open(Options(dir.Path));
        Assert.Equal(6, repaired.Count);
        var evt = Assert.IsType<AuditEvent>(repaired.Get(5).Record);
        Assert.Equal("audit.log.repaired", evt.EventType);
        Assert.Equal(5, evt.ActionDetails.GetProperty("removed_from_index").GetInt64());
        Assert.Equal(15, evt.ActionDetails.GetProperty("entries_removed_at_least").GetInt64());
        var verification = repaired.Verify();
        Assert.Equal(AuditVerificationProblem.Quarantined, verification.Problem);
    }

    [Fact]
    public async Task Repair_OnAHealthyLog_ChangesNothingAndWritesNoEvent()
    {
        using var dir = new TempDir();
        using (var log = AuditLog.Open(Options(dir.Path)))
        {
            await log.AppendAsync(Samples.Event(1), Ct);
        }

        var report = AuditLog.Repair(Options(dir.Path), "ops", "checking");
        Assert.Null(report.RepairEventIndex);
        Assert.Equal(1, report.Entries);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "quarantine")));
        Assert.True(AuditLog.Verify(dir.Path, null).IsValid);
    }
}
