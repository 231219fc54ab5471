using System.Security.Cryptography;

namespace Har.Deployment;

// Retention: the newest archives that verify are kept, older ones deleted; each archive's bytes verified once per process.
public static partial class DeploymentBackup
{
    /// <summary>
    /// Keeps the <paramref name="keep"/> newest archives in <paramref name="directory"/> that verify
    /// (<see cref="Verify"/>, with the key each archive holds) and deletes the archives older than them. An archive
    /// that does not verify — damaged, truncated, or a stray file under an archive's name — is neither counted as kept
    /// nor deleted: it is named in <paramref name="unverified"/> for the operator to look at. An archive this process
    /// already verified is not verified again while its bytes are the same (its SHA-256 is read each time).
    /// </summary>
    /// <remarks>
    /// Found by fuzzing the CLI: pruning by name alone kept a truncated newest archive and deleted the only good one, and
    /// a file of random bytes named as an archive from 2099 made every real backup "older" and deleted them all.
    /// </remarks>
    /// <param name="directory">The folder of the archives.</param>
    /// <param name="keep">How many verified archives to keep; at least 1.</param>
    /// <param name="unverified">Receives, when given, each archive that did not verify, as "name: why".</param>
    /// <returns>The names of the archives deleted.</returns>
    public static IReadOnlyList<string> Prune(string directory, int keep, ICollection<string>? unverified = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keep, 1);
        var deleted = new List<string>();
        var kept = 0;
        foreach (var archive in List(directory))
        {
            if (kept < keep)
            {
                try
                {
                    VerifyOnce(archive.FullName);
                    kept++;
                }
                catch (Exception ex) when (ex is DeploymentBackupException or InvalidDataException or IOException or FormatException or UnauthorizedAccessException or System.Text.Json.JsonException)
                {
                    unverified?.Add($"{archive.Name}: {ex.Message}");
                }

                continue;
            }

            archive.Delete();
            VerifiedArchives.TryRemove(archive.FullName, out _);
            deleted.Add(archive.Name);
        }

        return deleted;
    }

    /// <summary>
    /// SHA-256 of the archives this process verified in full, by path: found from outside, every backup with
    /// <see cref="DeploymentBackupOptions.Keep"/> 7 verified the 7 kept archives in full again (3.7 s each at 44 MB), so a
    /// backup did eight times its own work. The same bytes verify the same way, so an archive whose SHA-256 is the one
    /// recorded is not verified again; any change to it (damage, truncation, a file put in its place) changes its hash and
    /// it is verified in full. Kept in memory only: a new process (a CLI run) verifies every kept archive once.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> VerifiedArchives = new(StringComparer.Ordinal);

    /// <summary>Whether this process verified the bytes <paramref name="archivePath"/> holds now (for tests).</summary>
    internal static bool IsVerifiedInProcess(string archivePath) =>
        VerifiedArchives.TryGetValue(archivePath, out var verified) && verified == Sha256Of(archivePath);

    /// <summary>Verifies <paramref name="archivePath"/> in full unless this process already did for the same bytes; throws as <see cref="Verify"/> does.</summary>
    private static void VerifyOnce(string archivePath)
    {
        var sha256 = Sha256Of(archivePath);
        if (VerifiedArchives.TryGetValue(archivePath, out var verified) && verified == sha256)
        {
            return;
        }

        VerifiedArchives.TryRemove(archivePath, out _);
        _ = Verify(archivePath);
        VerifiedArchives[archivePath] = sha256;
    }

    private static string Sha256Of(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
