using System.Diagnostics;

namespace Har.Deployment.Tests.Registry;

/// <summary>
/// The registry's writer lock waits only for another writer. Found from outside: an upload to a registry on a read-only
/// file system took the lock wait's whole 2 minutes to answer 503, retrying an error that was not a lock held by anyone.
/// </summary>
public sealed class RegistryLockTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("har-registry-lock-").FullName;

    public void Dispose()
    {
        Run("umount", Path.Combine(_root, "read-only"));
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void HeldByAnotherWriter_WaitsAndThenNamesTheHolder()
    {
        using var held = RegistryLock.Acquire(_root);

        var error = Assert.Throws<IOException>(() => RegistryLock.Acquire(_root, TimeSpan.FromMilliseconds(200)));

        Assert.Contains("is locked by another writer", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadOnlyFileSystem_FailsAtOnceWithItsOwnError_InsteadOfWaitingForALock()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "a read-only tmpfs is mounted (Linux)");
        var folder = Directory.CreateDirectory(Path.Combine(_root, "read-only")).FullName;
        Assert.SkipUnless(Run("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", folder), "mounting a read-only tmpfs needs root (CAP_SYS_ADMIN); this machine refused it");

        // A wait far longer than the test's bound: a retried error would still be waiting when the bound ends.
        var attempt = Task.Run(() => RegistryLock.Acquire(folder, TimeSpan.FromMinutes(10)), TestContext.Current.CancellationToken);
        var finished = await Task.WhenAny(attempt, Task.Delay(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken));

        Assert.Same(attempt, finished);
        var error = await Assert.ThrowsAsync<IOException>(() => attempt);
        Assert.Contains("Read-only file system", error.Message, StringComparison.Ordinal);
    }

    private static bool Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        try
        {
            using var process = Process.Start(psi)!;
            process.WaitForExit(30_000);
            return process.HasExited && process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
