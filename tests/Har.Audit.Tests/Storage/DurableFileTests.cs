using Har.Audit.Storage;

namespace Har.Audit.Tests.Storage;

public sealed class DurableFileTests
{
    [Fact]
    public void WriteAtomic_ExistingFile_ReplacesContentAndLeavesNoTempFile()
    {
        using var dir = new TempDir();
        var path = dir.Combine("state.json");
        File.WriteAllText(path, "old");
        DurableFile.WriteAtomic(path, "{\"size\":3}"u8);
        Assert.Equal("{\"size\":3}", File.ReadAllText(path));
        Assert.Equal(["state.json"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void WriteAtomic_TempFilesACrashLeftBehind_RemovedOnceOlderThanAnyWrite_OthersKept()
    {
        // A write killed between creating its temp file and the rename (SIGKILL, power loss) leaves ".{name}.{12 hex}.tmp";
        // its catch block never runs. Such files used to stay forever (the drift state's is up to hundreds of MB).
        using var dir = new TempDir();
        var path = dir.Combine("state.json");
        var old = DateTime.UtcNow - DurableFile.OrphanAge - TimeSpan.FromMinutes(5);
        string[] orphans = [".state.json.0123456789ab.tmp", ".state.json.ffffffffffff.tmp"];
        string[] kept =
        [
            ".state.json.fedcba987654.tmp", // recent: may be another process's write in progress
            ".state.json.not-random12.tmp", // not a name this class gives
            ".state.json.0123456789abc.tmp", // 13 characters
            ".other.json.0123456789ab.tmp", // another target's
            "state.json.0123456789ab.tmp",
        ];
        foreach (var name in orphans.Concat(kept))
        {
            File.WriteAllText(dir.Combine(name), "partial");
            if (name != kept[0])
            {
                File.SetLastWriteTimeUtc(dir.Combine(name), old);
            }
        }

        DurableFile.WriteAtomic(path, "{}"u8);

        Assert.Equal(kept.Append("state.json").Order(StringComparer.Ordinal), Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void FsyncDirectory_ExistingDirectory_Succeeds_MissingDirectory_Throws()
    {
        using var dir = new TempDir();
        DurableFile.FsyncDirectory(dir.Path);
        if (!OperatingSystem.IsWindows())
        {
            var ex = Assert.Throws<IOException>(() => DurableFile.FsyncDirectory(dir.Combine("missing")));
            Assert.Contains("missing", ex.Message, StringComparison.Ordinal);
        }
    }
}
