using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using Har.Audit;
using Har.Inference;
using Har.Deployment.Tests.Registry;
using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Backup;

/// <summary>
/// Backups on a real registry, audit log and controller: the rollout state as the controller holds it mid-rollout,
/// the backup record as the archive's last audit entry, retention, and hostile archives (paths leaving the target,
/// links, a non-empty target) refused without writing outside the target or leaving anything behind.
/// </summary>
public sealed class DeploymentBackupTests : IDisposable
{
    private readonly AuditedRegistry _env = new();
    private readonly AuditSigningKey _key = AuditSigningKey.Generate("backup.test");

    public void Dispose()
    {
        _key.Dispose();
        _env.Dispose();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Backups => Path.Combine(_env.Root, "backups");

    [Fact]
    public async Task CreateAsync_MidRollout_RestoreHoldsTheControllersStateAndTheBackupRecordLast()
    {
        await using var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        await using var controller = await RolloutController.OpenAsync(_env.Registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time, cancellationToken: Ct);
        var status = await controller.ExecuteAsync(RolloutCommand.Start(TestRegistry.Candidate, "canary", "alice", "backup mid-rollout"), Ct);
        Assert.Equal(RolloutPhase.Progressing, status.Phase);

        var backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, controller, Backups, new DeploymentBackupOptions { SigningKey = _key, Actor = "ops", Reason = "test" }, Ct);
        Assert.Equal([TestRegistry.Champion, TestRegistry.Candidate], backup.Versions);
        Assert.Equal(TestRegistry.Champion, backup.CurrentVersion);
        Assert.Equal(_env.Log.Count, backup.AuditEntries);
        Assert.Equal(DeploymentBackup.HashFile(backup.ArchivePath), backup.Sha256);

        // Appends after the backup are not in it.
        await controller.ExecuteAsync(RolloutCommand.Create(RolloutCommandKind.Pause, "bob", "after the backup"), Ct);
        Assert.True(_env.Log.Count > backup.AuditEntries);

        var target = Path.Combine(_env.Root, "restored");
        var restored = DeploymentBackup.Restore(backup.ArchivePath, target, _key.ToVerifierKey(), "carol");
        Assert.True(restored.KeyPinned);
        Assert.False(restored.HasSigningKey);
        Assert.Equal(backup.BackupId, restored.BackupId);
        var state = RolloutController.ReadStatus(Path.Combine(target, "registry", ".rollout"))!;
        Assert.Equal(status.RolloutId, state.RolloutId);
        Assert.Equal(RolloutPhase.Progressing, state.Phase);

        using var log = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(target, "audit"), EnableMetrics = false });
        var last = (AuditEvent)log.Get(backup.AuditEntries - 1).Record;
        Assert.Equal("backup.created", last.EventType);
        Assert.Equal(backup.BackupId, last.EntityId);
        Assert.Equal(status.RolloutId, last.ActionDetails.GetProperty("rollout_id").GetString());
        var restoredEvent = (AuditEvent)log.Get(backup.AuditEntries).Record;
        Assert.Equal(("backup.restored", "carol"), (restoredEvent.EventType, restoredEvent.Actor));
    }

    [Fact]
    public async Task CreateAsync_LabelledWindows_TheRestoredServiceJudgesTheSameLabels()
    {
        // Labels arrive late and cannot be asked for twice: a restored service must hold the accuracy gate's evidence.
        // Before, the archive held none, and the restored controller's store counted 0 labelled windows.
        (long Labelled, long Correct) before;
        DeploymentBackupResult backup;
        await using (var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), timeProvider: _env.Time))
        {
            await using var controller = await RolloutController.OpenAsync(_env.Registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time, cancellationToken: Ct);
            Assert.Equal(12, await ServeAndLabelAsync(pipeline, "device-a", "WALKING", 12));
            Assert.Equal(7, await ServeAndLabelAsync(pipeline, "device-b", "SITTING", 7));
            before = pipeline.Feedback.Accuracy(TestRegistry.Champion);
            Assert.Equal(19, before.Labelled);

            backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, controller, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct);
            Assert.Equal(19, backup.LabelledWindows);

            // Windows labelled after the backup are not in it.
            Assert.Equal(3, await ServeAndLabelAsync(pipeline, "device-c", "STANDING", 3));
        }

        var lastEntry = (AuditEvent)_env.Log.Get(backup.AuditEntries - 1).Record;
        Assert.Equal(19, lastEntry.ActionDetails.GetProperty("labelled_windows").GetInt32());

        var target = Path.Combine(_env.Root, "restored");
        var restored = DeploymentBackup.Restore(backup.ArchivePath, target, _key.ToVerifierKey());
        Assert.Equal(19, restored.LabelledWindows);
        var registry = new ModelRegistry(Path.Combine(target, "registry"));
        await using var again = ServingPipeline.Open(registry, TestRegistry.ServingOptions());
        await using (await RolloutController.OpenAsync(registry, again, TestRegistry.Options(), cancellationToken: Ct))
        {
            Assert.Equal(before, again.Feedback.Accuracy(TestRegistry.Champion));
        }

        // A stopped service's data folder (no controller running) is backed up with the windows its journal holds:
        // the 22 labelled before the first controller closed.
        var offline = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct);
        Assert.Equal(22, offline.LabelledWindows);
        Assert.Equal(22, DeploymentBackup.Verify(offline.ArchivePath, _key.ToVerifierKey()).LabelledWindows);
    }

    [Fact]
    public async Task Archive_EveryEntryIsOwnerOnly_SoExtractingTheSigningKeyWithTarKeepsItPrivate()
    {
        // Found from outside: entries were written 0644, and the restore runbook's 'tar -xzf <archive> keys/audit.key'
        // for a fleet's signing key wrote it world-readable when run as root (tar keeps the entry's mode).
        var keyFile = Path.Combine(_env.Root, "audit.key");
        _key.Save(keyFile);
        var backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key, SigningKeyFile = keyFile }, Ct);

        var modes = new Dictionary<string, UnixFileMode>(StringComparer.Ordinal);
        using (var gzip = new GZipStream(File.OpenRead(backup.ArchivePath), CompressionMode.Decompress))
        using (var tar = new TarReader(gzip))
        {
            while (tar.GetNextEntry() is { } entry)
            {
                modes[entry.Name] = entry.Mode;
            }
        }

        Assert.Contains("keys/audit.key", modes.Keys);
        Assert.All(modes, m => Assert.True(m.Value == (UnixFileMode.UserRead | UnixFileMode.UserWrite), $"{m.Key} is {m.Value}"));
    }

    [Fact]
    public async Task Restore_LabelledWindowsCountedOtherwiseInTheManifest_Refused()
    {
        await using (var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), timeProvider: _env.Time))
        {
            await using var controller = await RolloutController.OpenAsync(_env.Registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time, cancellationToken: Ct);
            Assert.Equal(4, await ServeAndLabelAsync(pipeline, "device-a", "WALKING", 4));
        }

        var backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct);
        Assert.Equal(4, backup.LabelledWindows);
        var entries = Read(backup.ArchivePath);

        // The manifest's count is not the file's (the file itself is unchanged, so its hash still matches).
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(entries["manifest.json"])!;
        manifest["labelled_windows"] = 40;
        var miscounted = new Dictionary<string, byte[]>(entries) { ["manifest.json"] = JsonSerializer.SerializeToUtf8Bytes(manifest) };
        var ex = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.Verify(Archive([.. miscounted.Select(e => (e.Key, e.Value))])));
        Assert.Contains("holds 4 labelled windows; manifest.json counts 40", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Archives_AreFormatV2_AV1ArchiveIsReadWithNoLabels_AnUnknownFormatIsRefusedNamingBoth()
    {
        // Found from outside (an upgrade): an archive of a release from before labelled windows were kept restored with
        // "0 labelled windows", as if the service it was taken from had none; and that release read a newer archive as
        // its own, restoring it without its labels. The format now says which archives hold labels.
        var unlabelled = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct);
        await using (var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), timeProvider: _env.Time))
        {
            await using var controller = await RolloutController.OpenAsync(_env.Registry, pipeline, TestRegistry.Options(), timeProvider: _env.Time, cancellationToken: Ct);
            Assert.Equal(3, await ServeAndLabelAsync(pipeline, "device-a", "WALKING", 3));
        }

        var backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct);
        Assert.Equal("har-backup/v2", backup.Format);
        var entries = Read(backup.ArchivePath);
        Assert.Equal("har-backup/v2", System.Text.Json.Nodes.JsonNode.Parse(entries["manifest.json"])!["format"]!.GetValue<string>());
        Assert.Equal(("har-backup/v2", 3), (DeploymentBackup.Verify(backup.ArchivePath, _key.ToVerifierKey()).Format, DeploymentBackup.Verify(backup.ArchivePath, _key.ToVerifierKey()).LabelledWindows));

        // As the release before wrote an archive of a service without labels: format v1 and no count (the files the audit
        // log recorded for the backup are the same; a v1 archive of a service with labels cannot be made from a v2 one).
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(Read(unlabelled.ArchivePath)["manifest.json"])!.AsObject();
        manifest["format"] = "har-backup/v1";
        manifest.Remove("labelled_windows");
        var v1 = new Dictionary<string, byte[]>(Read(unlabelled.ArchivePath)) { ["manifest.json"] = JsonSerializer.SerializeToUtf8Bytes(manifest) };
        var old = DeploymentBackup.Restore(Archive([.. v1.Select(e => (e.Key, e.Value))]), Path.Combine(_env.Root, "restored-v1"), _key.ToVerifierKey());
        Assert.Equal(("har-backup/v1", 0), (old.Format, old.LabelledWindows));

        // A v2 manifest without its count, or a format this release does not know, is refused.
        manifest["format"] = "har-backup/v2";
        var uncounted = new Dictionary<string, byte[]>(v1) { ["manifest.json"] = JsonSerializer.SerializeToUtf8Bytes(manifest) };
        var missing = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.Verify(Archive([.. uncounted.Select(e => (e.Key, e.Value))])));
        Assert.Contains("of a har-backup/v2 archive has no 'labelled_windows' count", missing.Message, StringComparison.Ordinal);
        manifest["format"] = "har-backup/v3";
        var newer = new Dictionary<string, byte[]>(v1) { ["manifest.json"] = JsonSerializer.SerializeToUtf8Bytes(manifest) };
        var unknown = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.Verify(Archive([.. newer.Select(e => (e.Key, e.Value))])));
        Assert.Contains("has format 'har-backup/v3'; this version reads 'har-backup/v2' and 'har-backup/v1'", unknown.Message, StringComparison.Ordinal);
    }

    /// <summary>Serves <paramref name="windows"/> random windows of <paramref name="stream"/> on the pipeline's clock and labels them all <paramref name="activity"/>.</summary>
    private async Task<int> ServeAndLabelAsync(ServingPipeline pipeline, string stream, string activity, int windows)
    {
        var values = pipeline.Geometry.WindowValues;
        var rng = new Random(windows);
        var window = new float[values];
        var from = _env.Time.GetUtcNow();
        for (var w = 0; w < windows; w++)
        {
            for (var i = 0; i < values; i++)
            {
                window[i] = (float)(rng.NextDouble() * 2 - 1);
            }

            await pipeline.PredictAsync(stream, window, new Prediction[1], Ct);
            _env.Time.Advance(TimeSpan.FromSeconds(1));
        }

        return pipeline.Feedback.Report(stream, activity, from - TimeSpan.FromMinutes(1), _env.Time.GetUtcNow() + TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task CreateAsync_KeepTwo_ThirdBackupPrunesTheOldest_SigningKeyIncludedWhenAsked()
    {
        var keyFile = Path.Combine(_env.Root, "audit.key");
        _key.Save(keyFile);
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            _env.Time.Advance(TimeSpan.FromSeconds(1));
            var b = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key, SigningKeyFile = keyFile, Keep = 2 }, Ct);
            ids.Add(b.BackupId);
            Assert.Equal(i == 2 ? [ids[0] + ".tar.gz"] : [], b.Pruned);
        }

        Assert.Equal([ids[2] + ".tar.gz", ids[1] + ".tar.gz"], DeploymentBackup.List(Backups).Select(f => f.Name));
        var verified = DeploymentBackup.Verify(DeploymentBackup.List(Backups)[0].FullName);
        Assert.True(verified.HasSigningKey);
        Assert.False(verified.KeyPinned);
        Assert.Equal(_key.VerifierKey, verified.VerifierKey);
    }

    [Fact]
    public async Task Prune_KeepsVerifiedArchives_NeverForADamagedOrStrayNewerOne()
    {
        // Found by fuzzing the CLI: pruning by name kept a truncated newest archive and deleted the only good one, and a
        // file of random bytes named as an archive from 2099 made every real backup "older".
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            _env.Time.Advance(TimeSpan.FromSeconds(1));
            ids.Add((await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct)).BackupId);
        }

        var newest = Path.Combine(Backups, ids[2] + ".tar.gz");
        using (var truncate = new FileStream(newest, FileMode.Open))
        {
            truncate.SetLength(1000);
        }

        var stray = Path.Combine(Backups, "har-backup-20991231T000000000Z-deadbeef.tar.gz");
        File.WriteAllBytes(stray, [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 31))]);

        var unverified = new List<string>();
        var deleted = DeploymentBackup.Prune(Backups, 1, unverified);

        Assert.Equal([ids[0] + ".tar.gz"], deleted); // the good ids[1] is kept: the two newer names do not verify
        Assert.Equal(2, unverified.Count);
        Assert.StartsWith("har-backup-20991231T000000000Z-deadbeef.tar.gz: ", unverified[0], StringComparison.Ordinal);
        Assert.StartsWith(ids[2] + ".tar.gz: ", unverified[1], StringComparison.Ordinal);
        Assert.True(File.Exists(stray) && File.Exists(newest)); // not ours to delete: named for the operator
        Assert.Equal(ids[1], DeploymentBackup.Verify(Path.Combine(Backups, ids[1] + ".tar.gz")).BackupId);
    }

    [Fact]
    public async Task Prune_DoesNotVerifyTheSameBytesTwice_ButAnArchiveDamagedAfterItsVerificationIsCaught()
    {
        // Found from outside: every backup with Keep 7 verified the 7 kept archives in full again (3.7 s each at 44 MB).
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            _env.Time.Advance(TimeSpan.FromSeconds(1));
            ids.Add((await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key, Keep = 3 }, Ct)).BackupId);
        }

        var unverified = new List<string>();
        Assert.Empty(DeploymentBackup.Prune(Backups, 3, unverified));
        Assert.Empty(unverified);
        var oldest = Path.Combine(Backups, ids[0] + ".tar.gz");
        Assert.True(DeploymentBackup.IsVerifiedInProcess(oldest)); // its bytes were verified: not again while they stay the same

        // Its second half zeroed (same length, same name): its hash changes, so it is verified in full and refused. (One
        // flipped byte is not always damage a verification sees: it may fall in bytes past the archive's last entry.)
        var bytes = File.ReadAllBytes(oldest);
        Array.Clear(bytes, bytes.Length / 2, bytes.Length - (bytes.Length / 2));
        File.WriteAllBytes(oldest, bytes);
        Assert.False(DeploymentBackup.IsVerifiedInProcess(oldest));

        Assert.Empty(DeploymentBackup.Prune(Backups, 3, unverified));
        Assert.Single(unverified);
        Assert.StartsWith(ids[0] + ".tar.gz: ", unverified[0], StringComparison.Ordinal);
        Assert.False(DeploymentBackup.IsVerifiedInProcess(oldest));
    }

    [Fact]
    public async Task CreateAsync_AfterBackupsACrashInterrupted_TheirWorkingFilesAreRemoved_AtOnceWhenTheirLockIsFree()
    {
        // A backup killed before its rename leaves ".{id}.staging" (a copy of every model and of the audit log) and
        // ".{id}.tar.gz.tmp" (the unpublished archive); its finally block never runs.
        Directory.CreateDirectory(Backups);
        string Id(TimeSpan ago) => "har-backup-" + (_env.Time.GetUtcNow() - ago).UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff'Z'", System.Globalization.CultureInfo.InvariantCulture) + "-0123abcd";
        var old = Id(DeploymentBackup.InterruptedBackupAge + TimeSpan.FromMinutes(1));
        var recent = Id(TimeSpan.FromMinutes(10)); // without a lock file (an older release's): may be a backup in progress
        var killed = Id(TimeSpan.FromMinutes(3)).Replace("0123abcd", "0000dead", StringComparison.Ordinal); // its lock file held by nobody
        var running = Id(TimeSpan.FromMinutes(2)).Replace("0123abcd", "0000a11e", StringComparison.Ordinal); // its lock file held: a backup in progress
        foreach (var id in new[] { old, recent, killed, running })
        {
            var staging = Directory.CreateDirectory(Path.Combine(Backups, $".{id}.staging", "registry", "v1.0.0")).FullName;
            File.Copy(TestRegistry.ChampionFile, Path.Combine(staging, "model.onnx"));
            File.WriteAllText(Path.Combine(Backups, $".{id}.tar.gz.tmp"), "partial archive");
        }

        File.WriteAllText(Path.Combine(Backups, $".{killed}.staging", DeploymentBackup.InProgressName), "");
        using var held = new FileStream(Path.Combine(Backups, $".{running}.staging", DeploymentBackup.InProgressName), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1);
        var orphan = Id(TimeSpan.FromMinutes(1)).Replace("0123abcd", "000a0a0a", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(Backups, $".{orphan}.tar.gz.tmp"), "archive whose backup ended between its two clean-up steps");

        var outside = Directory.CreateDirectory(Path.Combine(_env.Root, "outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "keep.txt"), "not the backups'");
        var link = Path.Combine(Backups, $".{Id(TimeSpan.FromDays(2)).Replace("0123abcd", "4567cdef", StringComparison.Ordinal)}.staging");
        Directory.CreateSymbolicLink(link, outside);
        File.WriteAllText(Path.Combine(Backups, ".har-backup-notes.staging.txt"), "someone else's");

        var backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct);

        string[] expected = [".har-backup-notes.staging.txt", $".{recent}.staging", $".{recent}.tar.gz.tmp", $".{running}.staging", $".{running}.tar.gz.tmp", Path.GetFileName(backup.ArchivePath)];
        Assert.Equal(expected.Order(StringComparer.Ordinal), Directory.EnumerateFileSystemEntries(Backups).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.True(File.Exists(Path.Combine(outside, "keep.txt")));
    }

    [Fact]
    public async Task TryGetCreatedAt_ArchiveName_IsTheTimeOfTheBackup_OtherNamesAreNot()
    {
        _env.Time.Advance(TimeSpan.FromMilliseconds(1234.5));
        var now = _env.Time.GetUtcNow();
        var backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct);
        Assert.True(DeploymentBackup.TryGetCreatedAt(backup.ArchivePath, out var createdAt));
        Assert.Equal(now.ToUnixTimeMilliseconds(), createdAt.ToUnixTimeMilliseconds());
        Assert.Equal(TimeSpan.Zero, createdAt.Offset);
        var recorded = (AuditEvent)_env.Log.Get(backup.AuditEntries - 1).Record;
        Assert.Equal(recorded.Timestamp.ToUnixTimeMilliseconds(), createdAt.ToUnixTimeMilliseconds());

        Assert.False(DeploymentBackup.TryGetCreatedAt("har-backup-20261399T000000000Z-0123abcd.tar.gz", out _)); // month 13
        Assert.False(DeploymentBackup.TryGetCreatedAt("har-backup-20261203T230512345Z-0123abcd.tar", out _));
        Assert.False(DeploymentBackup.TryGetCreatedAt("notes.txt", out _));
    }

    [Fact]
    public async Task CreateAsync_WithoutSigningKey_Refused()
    {
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions(), Ct));
        Assert.Contains("SigningKey is required", ex.Message, StringComparison.Ordinal);
        Assert.Empty(DeploymentBackup.List(Backups));
    }

    [Fact]
    public async Task Restore_NonEmptyTarget_RefusedAndUntouched()
    {
        var backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct);
        var target = Directory.CreateDirectory(Path.Combine(_env.Root, "occupied")).FullName;
        File.WriteAllText(Path.Combine(target, "keep.txt"), "mine");
        var ex = Assert.Throws<IOException>(() => DeploymentBackup.Restore(backup.ArchivePath, target));
        Assert.Contains("not empty", ex.Message, StringComparison.Ordinal);
        Assert.Equal(["keep.txt"], Directory.GetFileSystemEntries(target).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("../escaped.txt", "would leave the restore folder")]
    [InlineData("/etc/escaped.txt", "would leave the restore folder")]
    [InlineData("registry/./v1.0.0/model.onnx", "would leave the restore folder")]
    public void Restore_PathLeavingTheTarget_RefusedAndNothingWrittenOutside(string name, string expected)
    {
        var archive = Archive((name, [1, 2, 3]));
        var target = Path.Combine(_env.Root, "target", "inner");
        var ex = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.Restore(archive, target));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_env.Root, "target", "escaped.txt")));
        Assert.False(Directory.Exists(target));
    }

    [Theory]
    [InlineData("registry", "registry/current", "inside 'registry', which it also holds as a file")]
    [InlineData("registry/current", "registry", "as a file and as the folder of other entries")]
    [InlineData("registry/current", "registry/AAAA", "with a name of 300 bytes; file systems take at most 255")]
    public void Restore_NamesNoFileSystemCanHold_RefusedAsAMalformedArchive(string first, string second, string expected)
    {
        // Found from outside: such archives ended the restore with the OS's message ("The file '…/registry' already exists",
        // "… is too long") and the CLI's exit code 2, not the refusal (exit code 1) the docs give for a bad archive.
        second = second.Replace("AAAA", new string('é', 150), StringComparison.Ordinal); // 150 characters, 300 bytes
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new
        {
            format = "har-backup/2",
            files = new[] { new { path = first, sha256 = "00", bytes = 3 }, new { path = second, sha256 = "00", bytes = 3 } },
        });
        var archive = Archive(("manifest.json", manifest), (first, [1, 2, 3]), (second, [4, 5, 6]));
        var target = Path.Combine(_env.Root, "malformed-target");

        var ex = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.Restore(archive, target));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target));
    }

    [Fact]
    public void Restore_SymbolicLinkEntry_Refused()
    {
        var archive = Path.Combine(_env.Root, "link.tar.gz");
        using (var gzip = new GZipStream(File.Create(archive), CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "registry/current") { LinkName = "/etc/passwd" });
        }

        var target = Path.Combine(_env.Root, "link-target");
        var ex = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.Restore(archive, target));
        Assert.Contains("regular files only", ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target));
    }

    [Fact]
    public async Task Restore_VersionFolderAddedWithItsOwnManifestLine_RefusedByTheBackupRecord()
    {
        // An attacker adds a version folder (and lists it): the signed backup record does not know those files.
        var backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct);
        var entries = Read(backup.ArchivePath);
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(entries["manifest.json"])!;
        var extra = File.ReadAllBytes(TestRegistry.CandidateFile);
        manifest["files"]!.AsArray().Add(new System.Text.Json.Nodes.JsonObject { ["path"] = "registry/v9.0.0/model.onnx", ["sha256"] = DeploymentBackupTestsHash(extra), ["bytes"] = extra.Length });
        entries["manifest.json"] = JsonSerializer.SerializeToUtf8Bytes(manifest);
        entries["registry/v9.0.0/model.onnx"] = extra;
        var tampered = Archive([.. entries.Select(e => (e.Key, e.Value))]);
        var ex = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.Restore(tampered, Path.Combine(_env.Root, "t")));
        Assert.Contains("recorded in backup.created", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, "is 4194304 bytes where its manifest lists 10")]
    [InlineData(true, "begins with 'registry/v1.0.0/model.onnx', not manifest.json")]
    public void Restore_EntryLargerThanTheManifestSaysOrBeforeIt_RefusedBeforeItIsWritten(bool manifestLast, string expected)
    {
        // A decompression bomb: a small archive whose entry unpacks to far more than its manifest lists (it used to be
        // written in full, 1 GiB from a 1 MB archive, before anything was checked).
        var manifest = System.Text.Encoding.UTF8.GetBytes("{\"format\":\"har-backup/1\",\"files\":[{\"path\":\"registry/v1.0.0/model.onnx\",\"sha256\":\"00\",\"bytes\":10}]}");
        (string, byte[]) bomb = ("registry/v1.0.0/model.onnx", new byte[4 << 20]);
        var archive = manifestLast ? Archive(bomb, ("manifest.json", manifest)) : Archive(("manifest.json", manifest), bomb);
        var target = Path.Combine(_env.Root, "bomb-target");

        var ex = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.Restore(archive, target));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target));
        Assert.True(new FileInfo(archive).Length < 64 << 10, "the archive is small");
    }

    [Fact]
    public async Task Restore_PublishesTheFolderOnlyOnceVerified_AndClearsTheWorkOfAKilledRestore()
    {
        // A restore killed part-way left its folder behind, complete-looking or half written, and a service started on
        // it. Now the work happens in a sibling folder renamed into place at the end; a killed restore leaves only that
        // sibling, which the next restore into the same target removes.
        var backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key }, Ct);
        var parent = Path.Combine(_env.Root, "volumes");
        var killed = Path.Combine(parent, ".data.restoring-0badf00d");
        Directory.CreateDirectory(Path.Combine(killed, "audit"));
        File.WriteAllText(Path.Combine(killed, "audit", "entries.log"), "half written");

        // A failing restore (a tampered copy) leaves neither the target nor its work.
        var entries = Read(backup.ArchivePath);
        entries["registry/current"] = [(byte)'x'];
        var ex = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.Restore(Archive([.. entries.Select(e => (e.Key, e.Value))]), Path.Combine(parent, "data")));
        Assert.Contains("registry/current", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(parent));

        Directory.CreateDirectory(killed);
        DeploymentBackup.Restore(backup.ArchivePath, Path.Combine(parent, "data"), _key.ToVerifierKey(), "carol");

        Assert.Equal(["data"], Directory.EnumerateFileSystemEntries(parent).Select(Path.GetFileName));
        Assert.True(File.Exists(Path.Combine(parent, "data", "registry", "current")));
        using var log = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(parent, "data", "audit"), EnableMetrics = false });
        Assert.Equal("backup.restored", ((AuditEvent)log.Get(log.Count - 1).Record).EventType);
    }

    [Fact]
    public void Restore_EntryTheManifestDoesNotList_Refused()
    {
        var manifest = System.Text.Encoding.UTF8.GetBytes("{\"files\":[]}");
        var ex = Assert.Throws<DeploymentBackupException>(() => DeploymentBackup.Restore(Archive(("manifest.json", manifest), ("registry/extra.bin", [1, 2])), Path.Combine(_env.Root, "x")));
        Assert.Contains("holds 'registry/extra.bin', which its manifest does not list", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateAndRestore_ArchiveAndRestoredSigningKey_AreReadableByTheirOwnerOnly()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("Unix file modes");
            return;
        }

        var keyFile = Path.Combine(_env.Root, "audit.key");
        _key.Save(keyFile);
        var backup = await DeploymentBackup.CreateAsync(_env.Registry, _env.Log, null, Backups, new DeploymentBackupOptions { SigningKey = _key, SigningKeyFile = keyFile }, Ct);

        const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(backup.ArchivePath));
        Assert.Equal(OwnerOnly | UnixFileMode.UserExecute, File.GetUnixFileMode(Backups));
        var target = Path.Combine(_env.Root, "restored");
        DeploymentBackup.Restore(backup.ArchivePath, target);
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(Path.Combine(target, "keys", "audit.key")));
    }

    private static string DeploymentBackupTestsHash(byte[] bytes) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));

    private string Archive(params (string Name, byte[] Bytes)[] files)
    {
        var path = Path.Combine(_env.Root, $"crafted-{Guid.NewGuid():N}.tar.gz");
        using var gzip = new GZipStream(File.Create(path), CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        foreach (var (name, bytes) in files)
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(bytes) });
        }

        return path;
    }

    private static Dictionary<string, byte[]> Read(string archive)
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var gzip = new GZipStream(File.OpenRead(archive), CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            using var data = new MemoryStream();
            entry.DataStream?.CopyTo(data);
            entries[entry.Name] = data.ToArray();
        }

        return entries;
    }
}
