using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Har.Deployment;

/// <summary>
/// A stable, seeded 64-bit hash of a string's UTF-16 code units: XXH3-64 (xxHash3, as implemented by
/// <see cref="XxHash3"/>) of the little-endian UTF-16 bytes, with the seed as XXH3's seed. The key's
/// chars are hashed in place (no transcoding to UTF-8, no concatenation with the salt), so a decision
/// allocates nothing; XXH3 hashes inputs up to 128 bytes (64 chars, e.g. a tenant/device/UUID path)
/// in at most eight 16-byte multiply-fold steps. Unlike <see cref="string.GetHashCode()"/>, which is randomised per
/// process, the same key and seed give the same value on every process, machine and run, which is what
/// sticky traffic assignment needs.
/// </summary>
internal static class StableHash
{
    /// <summary>Hashes <paramref name="key"/> with <paramref name="seed"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Hash64(ReadOnlySpan<char> key, ulong seed) =>
        XxHash3.HashToUInt64(MemoryMarshal.AsBytes(key), unchecked((long)seed));

    /// <summary>Maps a 64-bit hash uniformly onto <c>[0, buckets)</c> (Lemire's multiply-shift on the high 32 bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Bucket(ulong hash, int buckets) => (int)(((hash >> 32) * (ulong)buckets) >> 32);
}
