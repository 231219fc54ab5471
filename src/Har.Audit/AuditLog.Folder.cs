namespace Har.Audit;

// What may stand in a log's folder: a file, or a folder holding other files and no log, is refused before anything is written.
public sealed partial class AuditLog
{
    /// <summary>
    /// What a file log writes in its folder: its files and subfolders, the temp files of its atomic writes
    /// (<c>.&lt;name&gt;.&lt;hex&gt;.tmp</c>) and the probe of an unavailable log. A first open interrupted before it wrote
    /// <see cref="MetaFile"/> (SIGKILL, power loss) leaves only these.
    /// </summary>
    private static readonly string[] LogNames = [LockFile, MetaFile, SegmentFile, IndexFile, StateFile, CheckpointFile, VerifierKeyFile, TreeDirectory, QuarantineDirectory, TornDirectory, ".probe"];

    private static bool IsLogName(string name)
    {
        foreach (var known in LogNames)
        {
            if (string.Equals(name, known, StringComparison.Ordinal)
                || (name.StartsWith('.') && name.EndsWith(".tmp", StringComparison.Ordinal) && name.AsSpan(1).StartsWith(known + ".", StringComparison.Ordinal)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Why <see cref="AuditLogOptions.Directory"/> cannot hold the log, checked before anything is created or written in it:
    /// it is a file, or a folder that holds other files and no audit log (no <see cref="MetaFile"/>).
    /// <see langword="null"/> for a folder holding only what a log writes (a first open interrupted midway, a lock file
    /// left by a crash), which opens as before.
    /// </summary>
    private static string? FolderProblem(string directory)
    {
        // Only the folder itself: a file where a parent folder should be stays an unavailable folder, fixed outside the
        // process (a mount, a volume) while the log probes it again.
        if (File.Exists(directory))
        {
            return $"AuditLogOptions.Directory '{directory}' is a file, not a folder; expected a folder for the log (a new or empty one, or the folder of an existing log).";
        }

        if (!System.IO.Directory.Exists(directory) || File.Exists(Path.Combine(directory, MetaFile)))
        {
            return null;
        }

        string? first = null;
        var others = 0;
        try
        {
            foreach (var entry in System.IO.Directory.EnumerateFileSystemEntries(directory))
            {
                var name = Path.GetFileName(entry);
                if (!IsLogName(name))
                {
                    first ??= name;
                    others++;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // cannot be listed: opening it fails next, as an unavailable folder
        }

        if (first is null)
        {
            return null;
        }

        var what = others == 1 ? $"'{first}'" : $"'{first}' and {Messages.Count(others - 1, "other entry", "other entries")}";
        return $"AuditLogOptions.Directory '{directory}' holds other files ({what}) and no audit log (no {MetaFile}); a log is not created among other files. "
            + "Set it to a new or empty folder for a new log (e.g. a subfolder 'audit'), or to the folder of an existing log.";
    }
}
