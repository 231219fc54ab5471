using Har.Audit;

namespace Har.Cli.Tests.Commands;

/// <summary>
/// <c>har backup restore --connection</c>: an archive of a data folder restored into an empty database of a real
/// (throwaway) PostgreSQL cluster, verified there by <c>har audit verify --connection</c>; a second restore into the same
/// database refused with what it holds; <c>--to</c> and <c>--connection</c> together refused as a usage mistake.
/// </summary>
[Collection(ConsoleTests.Name)]
public sealed class BackupDatabaseCommandsTests(PostgresCluster cluster) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("har-cli-backup-db-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task RestoreIntoADatabase_VerifiesThere_AndASecondRestoreIsRefused()
    {
        var data = Path.Combine(_root, "data");
        var (registry, audit) = (Path.Combine(data, "registry"), Path.Combine(data, "audit"));
        Directory.CreateDirectory(Path.Combine(data, "keys"));
        string verifierKey;
        using (var key = AuditSigningKey.Generate("cli.backup.db.test"))
        {
            key.Save(Path.Combine(data, "keys", "audit.key"));
            verifierKey = key.VerifierKey;
        }

        foreach (var model in new[] { DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx"), DemoFixtures.FixtureModel("tiny-logits-1.1.0.onnx") })
        {
            await RunOkAsync("models", "register", model, "--registry", registry, "--audit", audit);
        }

        var backups = Path.Combine(_root, "backups");
        await RunOkAsync("backup", "create", "--data", data, "--out", backups, "--reason", "cli database restore test");
        var archive = Assert.Single(Directory.GetFiles(backups, "har-backup-*.tar.gz"));

        var database = await cluster.CreateDatabaseAsync();
        var restored = await RunOkAsync("backup", "restore", archive, "--connection", database, "--vkey", verifierKey, "--actor", "oncall");
        Assert.Contains("restored into postgresql://", restored, StringComparison.Ordinal);
        Assert.Contains("versions [1.0.0, 1.1.0]", restored, StringComparison.Ordinal);
        Assert.Contains("current 1.0.0", restored, StringComparison.Ordinal);
        Assert.Contains("not stored in the database", restored, StringComparison.Ordinal); // the archive holds the signing key
        Assert.DoesNotContain("Password", restored, StringComparison.OrdinalIgnoreCase);

        var verified = await RunOkAsync("audit", "verify", "--connection", database, "--vkey", verifierKey);
        Assert.Contains("entries verified", verified, StringComparison.Ordinal);

        var (again, _, againError) = await ConsoleCapture.RunAsync("backup", "restore", archive, "--connection", database, "--vkey", verifierKey);
        Assert.Equal(1, again);
        Assert.Contains("already holds 2 registered version(s), a current pointer (1.0.0)", againError, StringComparison.Ordinal);

        var (both, _, bothError) = await ConsoleCapture.RunAsync("backup", "restore", archive, "--connection", database, "--to", Path.Combine(_root, "restored"));
        Assert.Equal(2, both);
        Assert.Contains("exactly one of --to", bothError, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_root, "restored")));
    }

    private static async Task<string> RunOkAsync(params string[] args)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(args);
        Assert.True(code == 0, $"har {string.Join(' ', args)}: exit {code}: {stderr}{stdout}");
        return stdout;
    }
}
