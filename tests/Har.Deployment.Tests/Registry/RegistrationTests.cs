using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Inference;
using Har.Testing;

namespace Har.Deployment.Tests.Registry;

/// <summary>Issue 17 points 4, 9 and 10 on the registry side: bounded cards, clear refusals, no side effect without its audit record, cached reads.</summary>
public sealed class RegistrationTests : IDisposable
{
    private readonly AuditedRegistry _env = new(register: false);

    public void Dispose() => _env.Dispose();

    [Fact]
    public void ARegistryRootThatIsAFile_IsRefused_SayingItIsAFile()
    {
        // Found by a new user: "The file '…' already exists." (an IOException from creating the folder) did not say that
        // the root must be a folder.
        var file = Path.Combine(Path.GetTempPath(), $"har-registry-file-{Guid.NewGuid():N}");
        File.WriteAllText(file, "not a folder");
        try
        {
            var ex = Assert.Throws<ArgumentException>(() => new ModelRegistry(file));
            Assert.Equal("root", ex.ParamName);
            Assert.Contains("is a file; expected a folder", ex.Message, StringComparison.Ordinal);
            Assert.Equal("not a folder", File.ReadAllText(file));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Register_MissingFileOrAFolder_FileNotFoundSayingWhichAndNothingRecorded()
    {
        // Found from a packed package: "Could not find file …" and "Access to the path … is denied" (a folder), the
        // messages of the external-data check that reads the file first, where HarModel.Load says what was wrong.
        var entries = _env.Log.Count;
        var missing = Path.Combine(_env.Root, "no-such-model.onnx");
        var ex = Assert.Throws<FileNotFoundException>(() => _env.Registry.Register(missing));
        Assert.Contains($"Model file '{missing}' does not exist; expected the .onnx file to register", ex.Message, StringComparison.Ordinal);

        var folder = Directory.CreateDirectory(Path.Combine(_env.Root, "a-folder.onnx")).FullName;
        ex = Assert.Throws<FileNotFoundException>(() => _env.Registry.Register(folder));
        Assert.Contains($"Model path '{folder}' is a folder; expected the .onnx file to register", ex.Message, StringComparison.Ordinal);

        Assert.Equal(entries, _env.Log.Count);
        Assert.Empty(_env.Registry.List());
    }

    [Fact]
    public void Register_CardWith10000MetadataKeys_RefusedWithTheLimitAndNothingWritten()
    {
        var bytes = File.ReadAllBytes(TestRegistry.ChampionFile);
        var card = OnnxModelEditor.ReadCard(bytes);
        for (var i = 0; i < 10_000; i++)
        {
            card[$"user.key{i}"] = "value";
        }

        var path = Write("huge-card.onnx", OnnxModelEditor.WithCard(bytes, card));
        var ex = Assert.Throws<ModelCardException>(() => _env.Registry.Register(path));
        Assert.Contains("10015 metadata keys", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"at most {RegistrationCard.MaxKeys}", ex.Message, StringComparison.Ordinal);
        AssertNothingRegistered();
    }

    [Fact]
    public void Register_CardValuesOverTheByteLimit_Refused()
    {
        var path = Write("bulky.onnx", OnnxModelEditor.WithKey(File.ReadAllBytes(TestRegistry.ChampionFile), "user.report", new string('x', RegistrationCard.MaxBytes)));
        var ex = Assert.Throws<ModelCardException>(() => _env.Registry.Register(path));
        Assert.Contains($"at most {RegistrationCard.MaxBytes} bytes", ex.Message, StringComparison.Ordinal);
        AssertNothingRegistered();
    }

    [Theory]
    [InlineData("{\"windows\": \"many\"}", "'windows'")]
    [InlineData("{\"windows\": {\"train\": \"7767\"}}", "'windows.train'")]
    [InlineData("{\"windows\": {\"train\": -1}}", "'windows.train'")]
    [InlineData("{\"windows\": {\"train\": 1.5}}", "'windows.train'")]
    [InlineData("{\"dataset\": 42}", "'dataset'")]
    [InlineData("{\"sha256\": [\"a\"]}", "'sha256'")]
    [InlineData("{\"train_subjects\": 30}", "'train_subjects'")]
    [InlineData("[1, 2]", "training_data")]
    [InlineData("{not json", "training_data")]
    public void Register_MalformedTrainingData_ModelCardExceptionNamingTheMember(string trainingData, string named)
    {
        var path = Write("bad-training-data.onnx", OnnxModelEditor.WithKey(File.ReadAllBytes(TestRegistry.ChampionFile), "har.training_data", trainingData));
        var ex = Assert.Throws<ModelCardException>(() => _env.Registry.Register(path));
        Assert.Contains(named, ex.Message, StringComparison.Ordinal);
        Assert.Contains("expected", ex.Message, StringComparison.Ordinal);
        AssertNothingRegistered();
    }

    [Fact]
    public void Register_NotAnOnnxFile_MessageNamesTheFileNotItsFolder()
    {
        var path = Write("garbage.onnx", [1, 2, 3, 4]);
        var ex = Assert.Throws<ModelCardException>(() => _env.Registry.Register(path));
        Assert.Contains("garbage.onnx", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_env.Root, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_ModelWhoseWeightsLieInAnotherFile_RefusedNamingTheTensorAndTheFile()
    {
        var bytes = OnnxModelEditor.WithExternalInitializer(File.ReadAllBytes(TestRegistry.ChampionFile), "weights.bin", out var data, out var tensor);
        var path = Write("external.onnx", bytes);
        File.WriteAllBytes(Path.Combine(_env.Root, "weights.bin"), data);
        Assert.Equal("1.0.0", ModelCard.Load(path).ModelVersion); // a working model where it lies

        var ex = Assert.Throws<ModelCardException>(() => _env.Registry.Register(path));

        Assert.Contains($"external.onnx cannot be registered: its tensor '{tensor}' (graph › initializer) keeps its data in 'weights.bin'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("save_as_external_data=False", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_env.Root, ex.Message, StringComparison.Ordinal);
        AssertNothingRegistered();
    }

    [Fact]
    public void Register_AfterACrashLeftStagingFolders_TheyAreRemovedAndLinksNotFollowed()
    {
        // What a registration or a fleet fetch killed before its rename leaves: a full, unpublished copy of a model.
        var root = _env.RegistryRoot;
        var staged = Directory.CreateDirectory(Path.Combine(root, ".staging-1.1.0-0a1b2c3d")).FullName;
        File.Copy(TestRegistry.ChampionFile, Path.Combine(staged, "model.onnx"));
        var fetched = Directory.CreateDirectory(Path.Combine(root, ".fetch-1.1.0-" + new string('e', 32))).FullName;
        File.WriteAllText(Path.Combine(fetched, "config.json"), "{}");
        var outside = Directory.CreateDirectory(Path.Combine(_env.Root, "outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "keep.txt"), "not the registry's");
        Directory.CreateSymbolicLink(Path.Combine(root, ".staging-link"), outside);

        _env.Registry.Register(TestRegistry.ChampionFile);

        Assert.Equal(["v1.0.0"], Directory.GetDirectories(root).Select(Path.GetFileName).Where(n => !n!.StartsWith(".audit", StringComparison.Ordinal)));
        Assert.True(File.Exists(Path.Combine(outside, "keep.txt")));
    }

    [Fact]
    public void Register_AfterAKillBetweenTheAuditRecordAndThePublish_TheOrphanedRegistrationIsWithdrawn()
    {
        // Found by a crash check: a process killed after the registration's audit record and before the folder's rename
        // left a registry.registered entry for bytes that were never registered; a re-upload of the version with other
        // bytes added a second one, and nothing marked the first as aborted. Reproduced as the kill leaves it: the entry
        // in the log, the staging folder on disk, no version folder.
        _env.Registry.Register(TestRegistry.ChampionFile);
        var orphan = _env.Registry.Register(TestRegistry.CandidateFile);
        var staged = Path.Combine(_env.RegistryRoot, ".staging-1.1.0-0a1b2c3d");
        Directory.Move(orphan.Directory, staged);
        _env.Reopen();

        // Any writer removes the staging folder and withdraws the registration it belonged to.
        var impostor = Write("impostor-1.1.0.onnx", AuditedRegistry.ImpostorOf("1.1.0"));
        var again = _env.Registry.Register(impostor);

        Assert.False(Directory.Exists(staged));
        var withdrawn = Assert.Single(_env.Events("registry.registration_failed"));
        Assert.Equal(orphan.Sha256, withdrawn.ActionDetails.GetProperty("sha256").GetString());
        Assert.Equal("1.1.0", withdrawn.ActionDetails.GetProperty("version").GetString());
        Assert.Equal(_env.Events("registry.registered").First(e => e.ActionDetails.GetProperty("version").GetString() == "1.1.0").EntityId, withdrawn.EntityId);
        Assert.Contains("interrupted", withdrawn.ActionDetails.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.NotEqual(orphan.Sha256, again.Sha256);
        Assert.True(_env.Registry.Verify("1.1.0").IsValid);

        // Opened again, the registry's anchors are the re-upload's alone, and no second withdrawal is written.
        _env.Reopen();
        Assert.True(_env.Registry.Verify("1.1.0").IsValid);
        _env.Registry.Register(Write("third.onnx", AuditedRegistry.ImpostorOf("1.2.0")));
        Assert.Single(_env.Events("registry.registration_failed"));
    }

    [Fact]
    public void Register_StagingFolderOfAPublishedVersion_WithdrawsNothing()
    {
        // A kill after the rename (before the directory's fsync) leaves no staging folder; a stray one for a version whose
        // folder exists, or a name this registry never stages, is only removed.
        _env.Registry.Register(TestRegistry.ChampionFile);
        Directory.CreateDirectory(Path.Combine(_env.RegistryRoot, ".staging-1.0.0-0a1b2c3d"));
        Directory.CreateDirectory(Path.Combine(_env.RegistryRoot, ".staging-not-a-version-zz"));
        _env.Reopen();
        _env.Registry.Register(TestRegistry.CandidateFile);
        Assert.Empty(_env.Events("registry.registration_failed"));
        Assert.Empty(Directory.GetDirectories(_env.RegistryRoot, ".staging-*"));
    }

    [Fact]
    public void Register_SameVersionTwice_ConflictNamingTheVersion()
    {
        _env.Registry.Register(TestRegistry.ChampionFile);
        var ex = Assert.Throws<ModelVersionConflictException>(() => _env.Registry.Register(TestRegistry.ChampionFile));
        Assert.Equal("1.0.0", ex.Version);
        Assert.Contains("immutable", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_env.Root, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_AuditLogClosed_RefusedBeforeAnyFileIsWritten()
    {
        _env.Log.Dispose();
        var ex = Assert.Throws<ModelRegistryUnavailableException>(() => _env.Registry.Register(TestRegistry.ChampionFile));
        Assert.Contains("audit record could not be written", ex.Message, StringComparison.Ordinal);
        AssertNothingRegistered();
        Assert.Null(_env.Registry.CurrentVersion);
    }

    [Fact]
    public void GetVerification_AfterRegistration_CachedWithoutRehashingUntilTheSchedule()
    {
        var model = _env.Registry.Register(TestRegistry.CandidateFile);
        var atRegistration = _env.Registry.GetVerification("1.1.0");
        Assert.True(atRegistration.IsValid);

        // Tampering is invisible to the cached read (no hashing on reads) ...
        var bytes = File.ReadAllBytes(model.ModelPath);
        bytes[^10] ^= 0x01;
        File.WriteAllBytes(model.ModelPath, bytes);
        Assert.Same(atRegistration, _env.Registry.GetVerification("1.1.0"));

        // ... until the scheduled verification (run at start, then every interval) hashes the files again.
        _env.Time.Advance(TimeSpan.FromMinutes(1));
        var startedAt = _env.Time.GetUtcNow();
        using var schedule = _env.Registry.StartPeriodicVerification(TimeSpan.FromMinutes(15));
        var scheduled = _env.Registry.GetVerification("1.1.0");
        Assert.False(scheduled.IsValid);
        Assert.Equal(startedAt, scheduled.VerifiedAt);
        Assert.Equal(atRegistration.VerifiedAt, _env.Time.GetUtcNow() - TimeSpan.FromMinutes(1));

        // One audited refusal for the change, not one per run.
        _env.Time.Advance(TimeSpan.FromMinutes(31));
        var refusals = _env.Events("registry.refused");
        Assert.Equal("scheduled verification", Assert.Single(refusals).ActionDetails.GetProperty("purpose").GetString());
    }

    [Fact]
    public void Seed_VersionsRegisteredThroughAnotherLog_AdoptedAfterComparingWithTheTrustedFiles()
    {
        // Replica A registers; replica B (its own audit log, same registry folder) seeds from the same files.
        _env.Registry.Seed([TestRegistry.CandidateFile, TestRegistry.ChampionFile]);
        Assert.Equal("1.0.0", _env.Registry.CurrentVersion);
        using var otherLog = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(_env.Root, "audit-b"), EnableMetrics = false });
        var replicaB = new ModelRegistry(_env.RegistryRoot, otherLog, _env.Time);
        Assert.False(replicaB.Verify("1.0.0").IsValid);

        var adopted = replicaB.Seed([TestRegistry.ChampionFile, TestRegistry.CandidateFile]);
        Assert.Equal(["1.0.0", "1.1.0"], adopted.Select(m => m.Version));
        Assert.True(replicaB.Verify("1.1.0").IsValid);
        Assert.Equal(2, otherLog.Query(new AuditQuery { EventType = "registry.adopted" }).Entries.Count);
        Assert.Empty(replicaB.Seed([TestRegistry.ChampionFile, TestRegistry.CandidateFile]));
    }

    [Fact]
    public void Seed_ReplicasSharingOneLogWithTheirOwnFolders_EachFolderVouchedForByItsOwnRecordAfterRestart()
    {
        // The fleet topology: one shared audit log (PostgreSQL in production), each replica seeding its own folder,
        // each folder with its own deployment record. A replica restarted on its own folder must verify against its
        // own registration, not the other replica's; an edited record must still be caught.
        using var shared = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(_env.Root, "audit-shared"), EnableMetrics = false });
        var folderA = Path.Combine(_env.Root, "replica-a");
        var folderB = Path.Combine(_env.Root, "replica-b");
        Assert.Equal(2, new ModelRegistry(folderA, shared, _env.Time).Seed([TestRegistry.ChampionFile, TestRegistry.CandidateFile]).Count);
        _env.Time.Advance(TimeSpan.FromSeconds(5)); // B's records differ from A's (registration time)
        Assert.Equal(2, new ModelRegistry(folderB, shared, _env.Time).Seed([TestRegistry.ChampionFile, TestRegistry.CandidateFile]).Count);
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(folderA, "v1.0.0", "deployment_record.json")), File.ReadAllBytes(Path.Combine(folderB, "v1.0.0", "deployment_record.json")));

        // Restart both (new instances on the same folders): nothing new to adopt, both verify.
        var restartedA = new ModelRegistry(folderA, shared, _env.Time);
        var restartedB = new ModelRegistry(folderB, shared, _env.Time);
        Assert.Empty(restartedA.Seed([TestRegistry.ChampionFile, TestRegistry.CandidateFile]));
        Assert.Empty(restartedB.Seed([TestRegistry.ChampionFile, TestRegistry.CandidateFile]));
        Assert.True(restartedA.Verify("1.0.0").IsValid, restartedA.Verify("1.0.0").ToString());
        Assert.True(restartedB.Verify("1.0.0").IsValid, restartedB.Verify("1.0.0").ToString());
        Assert.Equal(4, shared.Query(new AuditQuery { EventType = "registry.registered" }).Entries.Count); // each replica registered into its own folder
        Assert.Empty(shared.Query(new AuditQuery { EventType = "registry.adopted" }).Entries);

        // An edit of B's record is not adopted by the next seeding and fails verification.
        var record = Path.Combine(folderB, "v1.1.0", "deployment_record.json");
        File.WriteAllText(record, File.ReadAllText(record).Replace("\"pending\"", "\"mallory\"", StringComparison.Ordinal));
        var again = new ModelRegistry(folderB, shared, _env.Time);
        Assert.Empty(again.Seed([TestRegistry.ChampionFile, TestRegistry.CandidateFile]));
        var verification = again.Verify("1.1.0");
        Assert.False(verification.IsValid);
        Assert.Contains(verification.Problems, p => p.Contains("deployment_record.json differs", StringComparison.Ordinal));
    }

    [Fact]
    public void Seed_RegisteredVersionDiffersFromTheTrustedFile_NotAdoptedAndRefusalAudited()
    {
        _env.Registry.Seed([TestRegistry.ChampionFile, TestRegistry.CandidateFile]);
        AuditedRegistry.SwapConsistently(_env.Registry.Get("1.1.0"), AuditedRegistry.ImpostorOf("1.1.0"));
        using var otherLog = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(_env.Root, "audit-b"), EnableMetrics = false });
        var replicaB = new ModelRegistry(_env.RegistryRoot, otherLog, _env.Time);

        var adopted = replicaB.Seed([TestRegistry.ChampionFile, TestRegistry.CandidateFile]);
        Assert.Equal(["1.0.0"], adopted.Select(m => m.Version));
        Assert.False(replicaB.Verify("1.1.0").IsValid);
        Assert.Contains(otherLog.Query(new AuditQuery { EventType = "registry.refused" }).Entries, e => ((AuditEvent)e.Record).ActionDetails.GetProperty("purpose").GetString() == "seed");
    }

    [Fact]
    public async Task Seed_ManyRegistriesOnOneFolderAtOnce_EachVersionOnceAndTheOldestCurrent()
    {
        const int Writers = 6;
        var logs = Enumerable.Range(0, Writers).Select(i => AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(_env.Root, $"audit-{i}"), EnableMetrics = false })).ToArray();
        try
        {
            using var go = new ManualResetEventSlim();
            var seeds = logs.Select(log => Task.Run(() =>
            {
                var registry = new ModelRegistry(_env.RegistryRoot, log, _env.Time);
                go.Wait();
                return registry.Seed([TestRegistry.CandidateFile, TestRegistry.ChampionFile]);
            })).ToArray();
            go.Set();
            var results = await Task.WhenAll(seeds);

            Assert.Equal("1.0.0", _env.Registry.CurrentVersion);
            Assert.Equal(["1.0.0", "1.1.0"], _env.Registry.List().Select(m => m.Version));
            Assert.All(results, r => Assert.Equal(["1.0.0", "1.1.0"], r.Select(m => m.Version)));
            Assert.Equal(2, logs.Sum(l => l.Query(new AuditQuery { EventType = "registry.registered" }).Entries.Count));
            Assert.Empty(Directory.GetDirectories(_env.RegistryRoot, ".staging-*"));
            foreach (var log in logs)
            {
                var registry = new ModelRegistry(_env.RegistryRoot, log, _env.Time);
                Assert.All(registry.List(), m => Assert.True(registry.Verify(m.Version).IsValid));
            }
        }
        finally
        {
            foreach (var log in logs)
            {
                await log.DisposeAsync();
            }
        }
    }

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_env.Root, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private void AssertNothingRegistered()
    {
        Assert.Empty(Directory.GetDirectories(_env.RegistryRoot));
        Assert.Empty(_env.Registry.List());
    }
}
