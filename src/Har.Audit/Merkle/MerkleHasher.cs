using System.Security.Cryptography;
using Har.Audit.Hashing;

namespace Har.Audit.Merkle;

/// <summary>RFC 9162 §2.1.1 hashing: leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right).</summary>
internal static class MerkleHasher
{
    public const int HashSize = 32;

    public static readonly byte[] EmptyRoot = SHA256.HashData(ReadOnlySpan<byte>.Empty);

    public static byte[] Leaf(ReadOnlySpan<byte> data)
    {
        var hash = new byte[HashSize];
        Leaf(data, hash);
        return hash;
    }

    public static void Leaf(ReadOnlySpan<byte> data, Span<byte> destination) => Sha256.Hash(0x00, data, destination);

    public static byte[] Node(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        var hash = new byte[HashSize];
        Node(left, right, hash);
        return hash;
    }

    /// <remarks><paramref name="destination"/> may overlap <paramref name="left"/> or <paramref name="right"/>: both are read before it is written.</remarks>
    public static void Node(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right, Span<byte> destination) => Sha256.Hash(0x01, left, right, destination);

    /// <summary>The largest power of two strictly less than <paramref name="n"/> (n ≥ 2).</summary>
    public static long SplitPoint(long n) => 1L << (63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(n - 1)));
}
