using System.Buffers;
using System.Security.Cryptography;

namespace Har.Audit;

/// <summary>SHA-256 helpers: of canonical JSON, of raw bytes, and of (large) files by streaming.</summary>
public static class AuditHash
{
    private const int FileBufferSize = 1 << 20;

    /// <summary>The SHA-256 of the RFC 8785 canonical form of <paramref name="utf8Json"/>, as lowercase hex.</summary>
    /// <param name="utf8Json">A JSON text (UTF-8).</param>
    /// <returns>64 lowercase hex digits.</returns>
    /// <exception cref="FormatException">The text is not valid I-JSON (see <see cref="CanonicalJson.Canonicalize(ReadOnlySpan{byte})"/>).</exception>
    internal static string Sha256OfCanonicalJson(ReadOnlySpan<byte> utf8Json) => Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Canonicalize(utf8Json)));

    /// <summary>
    /// Streams a file through SHA-256 (1 MiB reads, the next read overlapping the hashing of the previous
    /// chunk) and returns the digest as lowercase hex: the value of a deployment record's <c>model.sha256</c>.
    /// </summary>
    /// <param name="path">The file to hash.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>64 lowercase hex digits.</returns>
    public static async Task<string> Sha256OfFileAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous | FileOptions.SequentialScan);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var a = ArrayPool<byte>.Shared.Rent(FileBufferSize);
        var b = ArrayPool<byte>.Shared.Rent(FileBufferSize);
        try
        {
            long offset = 0;
            var read = await RandomAccess.ReadAsync(handle, a.AsMemory(0, FileBufferSize), offset, cancellationToken).ConfigureAwait(false);
            while (read > 0)
            {
                offset += read;
                var next = RandomAccess.ReadAsync(handle, b.AsMemory(0, FileBufferSize), offset, cancellationToken);
                sha.AppendData(a, 0, read);
                read = await next.ConfigureAwait(false);
                (a, b) = (b, a);
            }

            return Convert.ToHexStringLower(sha.GetHashAndReset());
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(a);
            ArrayPool<byte>.Shared.Return(b);
        }
    }

    /// <summary>Hashes a file synchronously (sequential 1 MiB reads): the simple baseline, and for callers without async.</summary>
    /// <param name="path">The file to hash.</param>
    /// <returns>64 lowercase hex digits.</returns>
    public static string Sha256OfFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(FileBufferSize);
        try
        {
            long offset = 0;
            int read;
            while ((read = RandomAccess.Read(handle, buffer.AsSpan(0, FileBufferSize), offset)) > 0)
            {
                sha.AppendData(buffer, 0, read);
                offset += read;
            }

            return Convert.ToHexStringLower(sha.GetHashAndReset());
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
