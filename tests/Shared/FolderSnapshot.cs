using System.Security.Cryptography;

namespace Har.Testing;

/// <summary>Every file below a folder (relative path and SHA-256) and every subfolder: equal snapshots mean nothing in it was created, written, truncated, renamed or deleted.</summary>
internal static class FolderSnapshot
{
    public static SortedDictionary<string, string> Take(string folder)
    {
        var snapshot = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories))
        {
            var name = Path.GetRelativePath(folder, entry);
            snapshot[name] = Directory.Exists(entry) ? "<dir>" : Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(entry)));
        }

        return snapshot;
    }
}
