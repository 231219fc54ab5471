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
