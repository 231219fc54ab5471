namespace Har.Deployment;

/// <summary>
/// The registry's writer lock: an exclusive lock on <c>.lock</c> in the registry folder, held while a
/// version is registered, adopted or made current, so processes that share the folder (replicas on one
/// volume) take turns. Within one process the open file description is per instance, so two threads
/// exclude each other the same way.
/// </summary>
internal sealed class RegistryLock : IDisposable
{
    internal const string FileName = ".lock";
    private const int RetryMilliseconds = 20;
    private static readonly string[] StagingPatterns = [".staging-*", ".fetch-*"];
    private static readonly TimeSpan DefaultWait = TimeSpan.FromMinutes(2);
    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");
    private readonly FileStream _stream;

    private RegistryLock(FileStream stream) => _stream = stream;

    /// <summary>Gets the versions whose registration a crash interrupted (their <c>.staging-{version}-*</c> folders, removed when the lock was taken).</summary>
    public IReadOnlyList<string> InterruptedRegistrations { get; private set; } = [];

    /// <summary>Takes the lock, waiting while another writer holds it (bounded).</summary>
    /// <exception cref="IOException">Another writer held the lock for longer than the wait.</exception>
    public static RegistryLock Acquire(string root, TimeSpan? wait = null)
    {
        var path = Path.Combine(root, FileName);
        var attempts = (long)((wait ?? DefaultWait).TotalMilliseconds / RetryMilliseconds) + 1;
        for (long attempt = 1; ; attempt++)
        {
            try
            {
                var held = new RegistryLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None));
                held.InterruptedRegistrations = RemoveInterruptedWrites(root);
                return held;
            }
            catch (IOException ex) when (attempt < attempts && IsHeldByAnother(ex))
            {
                // Held by another writer (the flock is exclusive), usually another process: the holder's work is short
                // (a copy, an fsync, a rename). Real time on purpose: a fake clock in this process cannot release it.
                Task.Delay(TimeSpan.FromMilliseconds(RetryMilliseconds), TimeProvider.System).GetAwaiter().GetResult();
            }
            catch (IOException ex) when (IsHeldByAnother(ex))
            {
                throw new IOException($"The model registry is locked by another writer (its {FileName} file) and was not released within {(wait ?? DefaultWait).TotalSeconds:0} s; retry when the other registration finishes.", ex);
            }
        }
    }

    /// <summary>
    /// Whether opening the lock file failed because another writer holds it (the lock's own conflict: EWOULDBLOCK on
    /// Linux and macOS, a sharing or lock violation on Windows). Any other failure (a read-only file system, a full disk)
    /// is thrown at once: found from outside, an upload to a read-only registry waited the whole 2 minutes for a lock
    /// nobody held before its 503.
    /// </summary>
    private static bool IsHeldByAnother(IOException ex) =>
        ex is not FileNotFoundException and not DirectoryNotFoundException
        && (OperatingSystem.IsWindows()
            ? ex.HResult is unchecked((int)0x80070020) or unchecked((int)0x80070021)
            : ex.HResult == (OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD() ? 35 : 11));

    public void Dispose() => _stream.Dispose();

    /// <summary>
    /// Removes the folders of registrations and fleet fetches that a crash interrupted (<c>.staging-*</c>,
    /// <c>.fetch-*</c>: a full copy of a model each, never published). Every writer stages only while it holds this
    /// lock, so while it is held no such folder is in use. Best effort: one that cannot be removed now is tried again
    /// by the next writer.
    /// </summary>
    /// <returns>The versions named by the registrations' staging folders (<c>.staging-{version}-{8 hex digits}</c>).</returns>
    internal static IReadOnlyList<string> RemoveInterruptedWrites(string root)
    {
        List<string>? registrations = null;
        try
        {
            foreach (var pattern in StagingPatterns)
            {
                foreach (var folder in Directory.EnumerateDirectories(root, pattern))
                {
                    if (pattern == StagingPatterns[0] && RegistrationVersion(Path.GetFileName(folder)) is { } version)
                    {
                        (registrations ??= []).Add(version);
                    }

                    try
                    {
                        // A link is removed itself, never followed.
                        Directory.Delete(folder, recursive: new DirectoryInfo(folder).LinkTarget is null);
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        return registrations ?? [];
    }

    /// <summary>The version in a registration's staging folder name (<c>.staging-1.2.0-0a1b2c3d</c>), or <see langword="null"/>.</summary>
    internal static string? RegistrationVersion(string folderName)
    {
        const string prefix = ".staging-";
        var dash = folderName.LastIndexOf('-');
        return folderName.StartsWith(prefix, StringComparison.Ordinal) && dash > prefix.Length && folderName.Length - dash - 1 == 8
            && !folderName.AsSpan(dash + 1).ContainsAnyExcept(LowerHex)
            ? folderName[prefix.Length..dash]
            : null;
    }
}
