using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Har.Audit.Storage;

/// <summary>
/// Crash-safe file replacement: write a temp file beside the target, fsync it, rename it over the
/// target (atomic on POSIX and NTFS), then fsync the directory so the rename itself is durable.
/// A reader sees the old content or the new content, never a torn file.
/// </summary>
/// <remarks>
/// Har.Deployment keeps its own copy (<c>Har.Deployment.DurableFile</c>) rather than linking this file: the
/// <c>har</c> CLI sees the internals of both packages, and one linked type would be defined twice under the same
/// name there. Keep the two copies identical but for the namespace.
/// </remarks>
internal static partial class DurableFile
{
    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> durably, creating its directory if needed.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> content)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);

        // A unique temp name: two writers of the same target never write into each other's temp file.
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.tmp");
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                RandomAccess.Write(handle, content, 0);
                RandomAccess.FlushToDisk(handle);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        FsyncDirectory(dir);
    }

    /// <summary>Makes a directory's entries (creations, renames) durable. A no-op on Windows, where NTFS journals metadata.</summary>
    public static void FsyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"Cannot open directory '{directory}' to fsync it: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory '{directory}' failed: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
