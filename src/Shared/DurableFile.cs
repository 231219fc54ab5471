using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

// One source, compiled into each package that writes state files (Har.Audit, Har.Deployment, Har.Drift), each under
// its own namespace: the `har` CLI sees the internals of all three, and one type defined three times under the same
// name would be ambiguous there. The project file says which package it is (HAR_AUDIT, HAR_DEPLOYMENT, HAR_DRIFT).
#if HAR_AUDIT
namespace Har.Audit.Storage;
#elif HAR_DEPLOYMENT
namespace Har.Deployment;
#elif HAR_DRIFT
namespace Har.Drift;
#else
#error Define HAR_AUDIT, HAR_DEPLOYMENT or HAR_DRIFT in the project that links DurableFile.cs.
#endif

/// <summary>
/// Crash-safe file replacement: write a temp file beside the target, fsync it, rename it over the
/// target (atomic on POSIX and NTFS), then fsync the directory so the rename itself is durable.
/// A reader sees the old content or the new content, never a torn file.
/// </summary>
/// <remarks>
/// Har.Audit: checkpoints and the node store; Har.Deployment: the registry's <c>current</c> pointer and records, the
/// rollout state file; Har.Drift: the per-device drift state (<see cref="WriteAtomic(string, Action{Stream})"/>, streamed).
/// </remarks>
internal static partial class DurableFile
{
    /// <summary>
    /// How old a temp file beside a target must be before a later write of that target removes it. A write interrupted
    /// by a crash (SIGKILL, power loss) leaves its temp file behind — for the drift state up to hundreds of MB, every
    /// time. No write of one file takes this long, so a temp file this old is no live writer's (several processes may
    /// write one target, each into its own temp file).
    /// </summary>
    internal static readonly TimeSpan OrphanAge = TimeSpan.FromHours(1);

    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> durably, creating its directory if needed.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> content) =>
        Replace(path, content, static (stream, bytes) => stream.Write(bytes));

    /// <summary>
    /// Replaces <paramref name="path"/> durably with what <paramref name="write"/> writes to the stream it is given (a
    /// temp file beside the target), for content too large to hold in one buffer.
    /// </summary>
    public static void WriteAtomic(string path, Action<Stream> write) =>
        Replace(path, write, static (stream, w) => w(stream));

    private static void Replace<T>(string path, T state, Action<FileStream, T> write)
        where T : allows ref struct
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);

        // A unique temp name: two writers of the same target never write into each other's temp file.
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream, state);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        FsyncDirectory(dir);
        RemoveOrphans(dir, Path.GetFileName(full));
    }

    /// <summary>
    /// Removes the temp files of earlier writes of <paramref name="name"/> that a crash left behind (older than
    /// <see cref="OrphanAge"/>; only names of exactly the form this class gives them). Best effort: a file that cannot
    /// be removed now is tried again at the next write.
    /// </summary>
    internal static void RemoveOrphans(string dir, string name)
    {
        try
        {
            var cutoff = TimeProvider.System.GetUtcNow().UtcDateTime - OrphanAge; // file times are the real clock's
            foreach (var file in Directory.EnumerateFiles(dir, $".{name}.*.tmp"))
            {
                var fileName = Path.GetFileName(file.AsSpan()); // ".{name}.{12 hex}.tmp"
                if (fileName.Length == name.Length + 18 && fileName[1..].StartsWith(name, StringComparison.Ordinal) &&
                    !fileName[(name.Length + 2)..^4].ContainsAnyExcept(LowerHex) && File.GetLastWriteTimeUtc(file) < cutoff)
                {
                    TryDelete(file);
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
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
