using Har.Audit;
using Har.Deployment;

namespace Har.Cli.Tests.Commands;

/// <summary>
/// <c>har backup</c> on a stopped service's data folder (registry/, audit/, keys/): create, verify, list, restore into an
/// empty folder; and <c>har rollout start</c>'s compliance gate and four-eyes approval on the same registry.
/// </summary>
[Collection(ConsoleTests.Name)]
public sealed class BackupCommandsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("har-cli-backup-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("../escaped/pwned")]
    [InlineData("/tmp/har-cli-escaped-pwned")]
    [InlineData("har-backup-notatime")]
    public async Task CreateFromService_BackupIdThatIsNotAnArchiveName_RefusedAndNothingWritten(string backupId)
    {
        // Found from outside: the CLI wrote the downloaded archive to Path.Combine(--out, backup_id + ".tar.gz"), with
        // the id as the service (or anyone between it and a plain http:// URL) sent it: outside --out, exit 0.
        var body = "not an archive"u8.ToArray();
        var summary = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["backup_id"] = backupId, ["sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body)),
            ["audit_entries"] = 1, ["files"] = 1, ["labelled_windows"] = 0, ["current_version"] = "1.0.0",
        });
        var port = Har.Testing.LoopbackPorts.FreeRun();
        using var listener = new System.Net.HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        var served = Task.Run(async () =>
        {
            var context = await listener.GetContextAsync();
            context.Response.StatusCode = 201;
            context.Response.ContentType = "application/gzip";
            context.Response.Headers.Add("Har-Backup-Summary", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(summary)));
            await context.Response.OutputStream.WriteAsync(body);
            context.Response.Close();
        });
        var output = Path.Combine(_root, "out", "inner");

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("backup", "create", "--service", $"http://127.0.0.1:{port}", "--api-key", "k", "--out", output);
        await served.WaitAsync(TimeSpan.FromMinutes(1));

        Assert.True(code != 0, $"exit {code}: {stdout}{stderr}");
        Assert.Contains("the service named the backup", stderr, StringComparison.Ordinal);
        Assert.Contains("Nothing was written", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists("/tmp/har-cli-escaped-pwned.tar.gz"));
        Assert.False(Directory.Exists(Path.Combine(_root, "out", "escaped")));
        Assert.True(!Directory.Exists(output) || !Directory.EnumerateFileSystemEntries(output).Any(), "nothing in --out");
    }

    [Fact]
    public async Task BackupOfADataFolder_VerifiesAndRestores_AfterGateAndApprovalRefusals()
    {
        var data = Path.Combine(_root, "data");
        var (registry, audit) = (Path.Combine(data, "registry"), Path.Combine(data, "audit"));
        Directory.CreateDirectory(Path.Combine(data, "keys"));
        using (var key = AuditSigningKey.Generate("cli.backup.test"))
        {
            key.Save(Path.Combine(data, "keys", "audit.key"));
        }

        foreach (var model in new[] { DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx"), DemoFixtures.FixtureModel("tiny-logits-1.1.0.onnx") })
        {
            await RunOkAsync("models", "register", model, "--registry", registry, "--audit", audit);
        }

        // The compliance gate refuses a candidate below the minimum accuracy (exit code 2, nothing started).
        var (gate, _, gateError) = await ConsoleCapture.RunAsync("rollout", "start", "--registry", registry, "--audit", audit, "--candidate", "1.1.0", "--min-accuracy", "1");
        Assert.Equal(2, gate);
        Assert.Contains("compliance gate", gateError, StringComparison.Ordinal);
        Assert.Contains("(--min-accuracy)", gateError, StringComparison.Ordinal); // the flag, not the library's MinCandidateAccuracy
        Assert.Contains("no rollout yet", await RunOkAsync("rollout", "status", "--registry", registry), StringComparison.Ordinal);

        // Four eyes: the starter's approval is refused (exit code 3), another person's is accepted.
        await RunOkAsync("rollout", "start", "--registry", registry, "--audit", audit, "--candidate", "1.1.0", "--strategy", "blue-green", "--require-approval", "--actor", "alice");
        var (self, _, selfError) = await ConsoleCapture.RunAsync("rollout", "approve", "--registry", registry, "--audit", audit, "--actor", "alice");
        Assert.Equal(3, self);
        Assert.Contains("started this rollout", selfError, StringComparison.Ordinal);
        Assert.Contains("(a rollout started with --starter-may-approve allows it)", selfError, StringComparison.Ordinal);
        Assert.Contains("Progressing", await RunOkAsync("rollout", "approve", "--registry", registry, "--audit", audit, "--actor", "bob"), StringComparison.Ordinal);

        var backups = Path.Combine(_root, "backups");
        var created = await RunOkAsync("backup", "create", "--data", data, "--out", backups, "--reason", "cli test", "--keep", "3");
        Assert.Contains("written to", created, StringComparison.Ordinal);
        var archive = Assert.Single(Directory.GetFiles(backups, "har-backup-*.tar.gz"));
        var listed = await RunOkAsync("backup", "list", "--dir", backups);
        Assert.Contains(Path.GetFileName(archive), listed, StringComparison.Ordinal);
        Assert.True(DeploymentBackup.TryGetCreatedAt(archive, out var taken));
        Assert.Contains($"newest backup taken {taken:yyyy-MM-dd'T'HH:mm:ss'Z'}, 0 h ago", listed, StringComparison.Ordinal);
        Assert.Contains("no backups", await RunOkAsync("backup", "list", "--dir", Directory.CreateDirectory(Path.Combine(_root, "empty")).FullName), StringComparison.Ordinal);

        // A stray file named as a newer archive: it once made the real backup "older" and prune deleted it.
        var stray = Path.Combine(backups, "har-backup-20991231T000000000Z-deadbeef.tar.gz");
        await File.WriteAllBytesAsync(stray, new byte[4096], TestContext.Current.CancellationToken);
        var (pruneCode, pruneOut, pruneError) = await ConsoleCapture.RunAsync("backup", "prune", "--dir", backups, "--keep", "1");
        Assert.Equal(1, pruneCode);
        Assert.Contains("nothing to prune", pruneOut, StringComparison.Ordinal);
        Assert.StartsWith("har: does not verify (not counted as kept, not deleted): har-backup-20991231T000000000Z-deadbeef.tar.gz: ", pruneError, StringComparison.Ordinal);
        Assert.True(File.Exists(archive) && File.Exists(stray));

        // list names it as the newest without reading it, but no longer as a backup "taken 0 h ago".
        var listedStray = await RunOkAsync("backup", "list", "--dir", backups);
        Assert.Contains("newest backup named 2099-12-31T00:00:00Z, ", listedStray, StringComparison.Ordinal);
        Assert.Contains("ahead of this clock", listedStray, StringComparison.Ordinal);
        Assert.DoesNotContain("0 h ago", listedStray, StringComparison.Ordinal);
        File.Delete(stray);

        var vkey = Path.Combine(_root, "audit.vkey");
        using (var key = AuditSigningKey.Load(Path.Combine(data, "keys", "audit.key")))
        {
            await File.WriteAllTextAsync(vkey, key.VerifierKey);
        }

        Assert.Contains("pinned key", await RunOkAsync("backup", "verify", archive, "--vkey", vkey), StringComparison.Ordinal);
        var restored = Path.Combine(_root, "restored");
        var output = await RunOkAsync("backup", "restore", archive, "--to", restored, "--vkey", vkey);
        Assert.Contains("versions [1.0.0, 1.1.0]", output, StringComparison.Ordinal);
        Assert.Contains("the archive holds the signing key", output, StringComparison.Ordinal);
        Assert.Contains("Progressing", await RunOkAsync("rollout", "status", "--registry", Path.Combine(restored, "registry")), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(restored, "keys", "audit.key")));
    }

    [Fact]
    public async Task Create_OutNamingAFile_ParseErrorNamingTheOption()
    {
        // Found from outside: it said the BCL's "The file '…' already exists", naming no option.
        var file = Path.Combine(_root, "not-a-folder");
        await File.WriteAllTextAsync(file, "keep me", TestContext.Current.CancellationToken);

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("backup", "create", "--data", Path.Combine(_root, "data"), "--out", file);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"har: --out '{file}' is a file; expected the folder the archive is written to", stderr, StringComparison.Ordinal);
        Assert.Equal("keep me", await File.ReadAllTextAsync(file, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Create_OutFolderThatDoesNotExist_IsCreatedForItsOwnerOnly()
    {
        // Found from outside: docs/backup-restore.md says the backups folder is 0700 (an archive holds every model and the
        // signing key), as the service creates its own; 'har backup create --out' created a missing folder 0755.
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("Unix file modes");
            return;
        }

        var data = Path.Combine(_root, "data");
        Directory.CreateDirectory(Path.Combine(data, "keys"));
        using (var key = AuditSigningKey.Generate("cli.backup.test"))
        {
            key.Save(Path.Combine(data, "keys", "audit.key"));
        }

        await RunOkAsync("models", "register", DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx"), "--registry", Path.Combine(data, "registry"), "--audit", Path.Combine(data, "audit"));
        var output = Path.Combine(_root, "archives");

        await RunOkAsync("backup", "create", "--data", data, "--out", output);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(output));
        var archive = Assert.Single(Directory.GetFiles(output, "har-backup-*.tar.gz"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(archive));
    }

    [Theory]
    [InlineData("list")]
    [InlineData("prune", "--keep", "1")]
    public async Task ListOrPrune_FolderThatDoesNotExist_ExitCode2AndNothingCreated(params string[] command)
    {
        // Both exited 0 ("no backups", "nothing to prune"): a mistyped folder looked like a folder without backups.
        var typo = Path.Combine(_root, "nonexist");

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(["backup", .. command, "--dir", typo]);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: No backup folder at '{typo}'; 'har backup create --out <dir>' creates one.", stderr.TrimEnd());
        Assert.False(Directory.Exists(typo));
    }

    [Theory]
    [InlineData("prune", "--dir", ".", "--keep", "0")] // the library's "keep ('0') must be greater than or equal to '1'"
    [InlineData("create", "--data", "no-such-data", "--out", "archives", "--keep", "0")] // refused only after the backup was taken
    public async Task Keep_Zero_ExitCode2(params string[] command)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(["backup", .. command]);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith("har: --keep is 0; expected 1 or more: ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_NeitherServiceNorData_ExitCode2AndNoFolderCreated()
    {
        var output = Path.Combine(_root, "archives");

        var (code, _, stderr) = await ConsoleCapture.RunAsync("backup", "create", "--out", output);

        Assert.Equal(2, code);
        Assert.Contains("Pass --service <url>", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(output));
    }

    private static async Task<string> RunOkAsync(params string[] args)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(args);
        Assert.True(code == 0, $"har {string.Join(' ', args)}: exit {code}: {stderr}{stdout}");
        return stdout;
    }
}
