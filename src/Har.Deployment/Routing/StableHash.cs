using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Har.Deployment;

/// <summary>
/// A stable, seeded 64-bit hash of a string's UTF-16 code units: XXH64 (xxHash64) of the little-endian
/// UTF-16 bytes. Unlike <see cref="string.GetHashCode()"/>, which is
/// randomised per process, the same key and seed give the same value on every process, machine and
/// run, which is what sticky traffic assignment needs.
/// </summary>
internal static class StableHash
{
    private const ulong Prime1 = 0x9E3779B185EBCA87UL;
    private const ulong Prime2 = 0xC2B2AE3D27D4EB4FUL;
    private const ulong Prime3 = 0x165667B19E3779F9UL;
    private const ulong Prime4 = 0x85EBCA77C2B2AE63UL;
    private const ulong Prime5 = 0x27D4EB2F165667C5UL;

    /// <summary>Hashes <paramref name="key"/> with <paramref name="seed"/>.</summary>
    public static ulong Hash64(ReadOnlySpan<char> key, ulong seed)
    {
        var bytes = MemoryMarshal.AsBytes(key);
        ulong h;
        var i = 0;
        if (bytes.Length >= 32)
        {
            // Four independent accumulators over 32-byte stripes (instruction-level parallelism).
            var v1 = seed + Prime1 + Prime2;
            var v2 = seed + Prime2;
            var v3 = seed;
            var v4 = seed - Prime1;
            for (; i + 32 <= bytes.Length; i += 32)
            {
                v1 = Accumulate(v1, BinaryPrimitives.ReadUInt64LittleEndian(bytes.Slice(i, 8)));
                v2 = Accumulate(v2, BinaryPrimitives.ReadUInt64LittleEndian(bytes.Slice(i + 8, 8)));
                v3 = Accumulate(v3, BinaryPrimitives.ReadUInt64LittleEndian(bytes.Slice(i + 16, 8)));
                v4 = Accumulate(v4, BinaryPrimitives.ReadUInt64LittleEndian(bytes.Slice(i + 24, 8)));
            }

            h = BitOperations.RotateLeft(v1, 1) + BitOperations.RotateLeft(v2, 7) + BitOperations.RotateLeft(v3, 12) + BitOperations.RotateLeft(v4, 18);
            h = Merge(h, v1);
            h = Merge(h, v2);
            h = Merge(h, v3);
            h = Merge(h, v4);
        }
        else
        {
            h = seed + Prime5;
        }

        h += (ulong)bytes.Length;
        for (; i + 8 <= bytes.Length; i += 8)
        {
            h ^= Round(BinaryPrimitives.ReadUInt64LittleEndian(bytes.Slice(i, 8)));
            h = (BitOperations.RotateLeft(h, 27) * Prime1) + Prime4;
        }

        if (i + 4 <= bytes.Length)
        {
            h ^= BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(i, 4)) * Prime1;
            h = (BitOperations.RotateLeft(h, 23) * Prime2) + Prime3;
            i += 4;
        }

        for (; i < bytes.Length; i++)
        {
            h ^= bytes[i] * Prime5;
            h = BitOperations.RotateLeft(h, 11) * Prime1;
        }

        return Avalanche(h);
    }

    /// <summary>Maps a 64-bit hash uniformly onto <c>[0, buckets)</c> (Lemire's multiply-shift on the high 32 bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Bucket(ulong hash, int buckets) => (int)(((hash >> 32) * (ulong)buckets) >> 32);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Round(ulong lane) => BitOperations.RotateLeft(lane * Prime2, 31) * Prime1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Accumulate(ulong acc, ulong lane) => BitOperations.RotateLeft(acc + (lane * Prime2), 31) * Prime1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Merge(ulong h, ulong v) => ((h ^ Round(v)) * Prime1) + Prime4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Avalanche(ulong h)
    {
        h ^= h >> 33;
        h *= Prime2;
        h ^= h >> 29;
        h *= Prime3;
        h ^= h >> 32;
        return h;
    }
}
