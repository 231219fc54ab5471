using Har.Audit.Merkle;

namespace Har.Audit.Postgres;

/// <summary>
/// The right frontier of an RFC 9162 tree of <c>n</c> leaves: for each set bit <c>l</c> of <c>n</c>, the complete
/// subtree node at level <c>l</c>, index <c>(n &gt;&gt; l) − 1</c> (a left child waiting for its sibling). Appending a
/// leaf folds it with the frontier and yields every complete-subtree node the leaf completes. Stored in the head row
/// as the set-bit nodes in ascending level order (32 bytes each).
/// </summary>
internal static class Frontier
{
    public static byte[]?[] Decode(long size, ReadOnlySpan<byte> stored)
    {
        var border = new byte[]?[64];
        var offset = 0;
        for (var level = 0; level < 63; level++)
        {
            if (((size >> level) & 1) == 0)
            {
                continue;
            }

            if (stored.Length < offset + MerkleHasher.HashSize)
            {
                throw new InvalidDataException($"The audit log head row's frontier is too short for {Messages.Entries(size)}: the har_audit.head row was altered.");
            }

            border[level] = stored.Slice(offset, MerkleHasher.HashSize).ToArray();
            offset += MerkleHasher.HashSize;
        }

        if (offset != stored.Length)
        {
            throw new InvalidDataException($"The audit log head row's frontier does not fit {Messages.Entries(size)}: the har_audit.head row was altered.");
        }

        return border;
    }

    public static byte[] Encode(long size, byte[]?[] border)
    {
        var bytes = new byte[System.Numerics.BitOperations.PopCount((ulong)size) * MerkleHasher.HashSize];
        var offset = 0;
        for (var level = 0; level < 63; level++)
        {
            if (((size >> level) & 1) == 1)
            {
                border[level]!.CopyTo(bytes, offset);
                offset += MerkleHasher.HashSize;
            }
        }

        return bytes;
    }

    /// <summary>Adds leaf <paramref name="index"/> (the tree had <paramref name="index"/> leaves); appends the nodes of level ≥ 1 it completes to <paramref name="completed"/>.</summary>
    public static void Append(byte[]?[] border, long index, byte[] leaf, List<(short Level, long Index, byte[] Hash)>? completed)
    {
        var node = leaf;
        var idx = index;
        var level = 0;
        while ((idx & 1) == 1)
        {
            node = MerkleHasher.Node(border[level]!, node);
            border[level] = null;
            level++;
            idx >>= 1;
            completed?.Add(((short)level, idx, node));
        }

        border[level] = node;
    }
}
