using Har.Audit.Merkle;

namespace Har.Audit;

/// <summary>
/// Verification of RFC 9162 inclusion and consistency proofs (§2.1.3.2, §2.1.4.2), usable offline.
/// An inclusion proof alone does not bind the tree size: take size and root together from a
/// verified signed checkpoint.
/// </summary>
internal static class MerkleProof
{
    /// <summary>The RFC 9162 leaf hash of an entry: SHA-256(0x00 ‖ <paramref name="entry"/>).</summary>
    /// <param name="entry">The entry's bytes (the log stores canonical JSON).</param>
    /// <returns>The 32-byte leaf hash.</returns>
    public static byte[] HashLeaf(ReadOnlySpan<byte> entry) => MerkleHasher.Leaf(entry);

    /// <summary>Checks that <paramref name="leafHash"/> is leaf <paramref name="leafIndex"/> of the tree of <paramref name="treeSize"/> leaves with root <paramref name="rootHash"/>.</summary>
    /// <param name="leafIndex">The 0-based leaf index.</param>
    /// <param name="treeSize">The tree size the proof is for.</param>
    /// <param name="leafHash">The leaf hash (32 bytes).</param>
    /// <param name="proof">The audit path, leaf to root.</param>
    /// <param name="rootHash">The root of the tree of <paramref name="treeSize"/> leaves.</param>
    /// <returns><see langword="true"/> when the proof verifies.</returns>
    public static bool VerifyInclusion(long leafIndex, long treeSize, ReadOnlySpan<byte> leafHash, IReadOnlyList<ReadOnlyMemory<byte>> proof, ReadOnlySpan<byte> rootHash)
    {
        ArgumentNullException.ThrowIfNull(proof);
        if (leafIndex < 0 || leafIndex >= treeSize || leafHash.Length != MerkleHasher.HashSize || rootHash.Length != MerkleHasher.HashSize)
        {
            return false;
        }

        var fn = leafIndex;
        var sn = treeSize - 1;
        Span<byte> r = stackalloc byte[MerkleHasher.HashSize];
        leafHash.CopyTo(r);
        foreach (var p in proof)
        {
            if (p.Length != MerkleHasher.HashSize || sn == 0)
            {
                return false;
            }

            if ((fn & 1) == 1 || fn == sn)
            {
                MerkleHasher.Node(p.Span, r, r);
                if ((fn & 1) == 0)
                {
                    while ((fn & 1) == 0 && fn != 0)
                    {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            }
            else
            {
                MerkleHasher.Node(r, p.Span, r);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && r.SequenceEqual(rootHash);
    }

    /// <summary>Checks that the tree of <paramref name="size1"/> leaves with root <paramref name="root1"/> is a prefix of the tree of <paramref name="size2"/> leaves with root <paramref name="root2"/>.</summary>
    /// <param name="size1">The older tree size.</param>
    /// <param name="size2">The newer tree size.</param>
    /// <param name="proof">The consistency proof.</param>
    /// <param name="root1">The older root.</param>
    /// <param name="root2">The newer root.</param>
    /// <returns><see langword="true"/> when the proof verifies. Sizes must satisfy 1 ≤ <paramref name="size1"/> ≤ <paramref name="size2"/>.</returns>
    public static bool VerifyConsistency(long size1, long size2, IReadOnlyList<ReadOnlyMemory<byte>> proof, ReadOnlySpan<byte> root1, ReadOnlySpan<byte> root2)
    {
        ArgumentNullException.ThrowIfNull(proof);
        if (size1 <= 0 || size2 < size1)
        {
            return false; // as transparency-dev/merkle: a proof from the empty tree proves nothing and is refused
        }

        if (size1 == size2)
        {
            return proof.Count == 0 && root1.SequenceEqual(root2);
        }

        if (proof.Count == 0 || root1.Length != MerkleHasher.HashSize || root2.Length != MerkleHasher.HashSize)
        {
            return false;
        }

        foreach (var p in proof)
        {
            if (p.Length != MerkleHasher.HashSize)
            {
                return false;
            }
        }

        var start = 0;
        Span<byte> fr = stackalloc byte[MerkleHasher.HashSize];
        Span<byte> sr = stackalloc byte[MerkleHasher.HashSize];
        if ((size1 & (size1 - 1)) == 0)
        {
            root1.CopyTo(fr);
            root1.CopyTo(sr);
        }
        else
        {
            proof[0].Span.CopyTo(fr);
            proof[0].Span.CopyTo(sr);
            start = 1;
        }

        var fn = size1 - 1;
        var sn = size2 - 1;
        while ((fn & 1) == 1)
        {
            fn >>= 1;
            sn >>= 1;
        }

        for (var i = start; i < proof.Count; i++)
        {
            var c = proof[i].Span;
            if (sn == 0)
            {
                return false;
            }

            if ((fn & 1) == 1 || fn == sn)
            {
                MerkleHasher.Node(c, fr, fr);
                MerkleHasher.Node(c, sr, sr);
                if ((fn & 1) == 0)
                {
                    while ((fn & 1) == 0 && fn != 0)
                    {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            }
            else
            {
                MerkleHasher.Node(sr, c, sr);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return fr.SequenceEqual(root1) && sr.SequenceEqual(root2) && sn == 0;
    }
}
