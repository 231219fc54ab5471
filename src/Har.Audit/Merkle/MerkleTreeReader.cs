namespace Har.Audit.Merkle;

/// <summary>Where proofs read stored complete-subtree hashes: node (level, index) covers leaves [index·2^level, (index+1)·2^level).</summary>
internal interface INodeSource
{
    void ReadNode(int level, long index, Span<byte> destination);
}

/// <summary>
/// RFC 9162 §2.1.3.1 / §2.1.4.1 proof generation over stored complete-subtree hashes. Ranges inside a
/// complete subtree are single reads; at most one right-edge partial subtree is folded per proof,
/// so a proof costs O(log n) node reads.
/// </summary>
internal static class MerkleProofBuilder
{
    public static byte[] RootHash(INodeSource nodes, long size)
    {
        if (size == 0)
        {
            return (byte[])MerkleHasher.EmptyRoot.Clone();
        }

        var root = new byte[MerkleHasher.HashSize];
        RangeHash(nodes, 0, size, root);
        return root;
    }

    public static List<ReadOnlyMemory<byte>> Inclusion(INodeSource nodes, long index, long size)
    {
        if (index < 0 || index >= size)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Leaf index must be in [0, {size}) for a tree of {Messages.Count(size, "leaf", "leaves")}.");
        }

        var path = new List<ReadOnlyMemory<byte>>(64);
        InclusionPath(nodes, index, 0, size, path);
        return path;
    }

    public static List<ReadOnlyMemory<byte>> Consistency(INodeSource nodes, long size1, long size2)
    {
        if (size1 < 0 || size1 > size2)
        {
            throw new ArgumentOutOfRangeException(nameof(size1), size1, $"The older size must be in [0, {size2}].");
        }

        var path = new List<ReadOnlyMemory<byte>>(64);
        if (size1 > 0 && size1 < size2)
        {
            SubProof(nodes, size1, 0, size2, true, path);
        }

        return path;
    }

    public static void RangeHash(INodeSource nodes, long start, long end, Span<byte> destination)
    {
        var width = end - start;
        if ((width & (width - 1)) == 0 && start % width == 0)
        {
            var level = System.Numerics.BitOperations.TrailingZeroCount(width);
            nodes.ReadNode(level, start >> level, destination);
            return;
        }

        var k = MerkleHasher.SplitPoint(width);
        Span<byte> left = stackalloc byte[MerkleHasher.HashSize];
        Span<byte> right = stackalloc byte[MerkleHasher.HashSize];
        RangeHash(nodes, start, start + k, left);
        RangeHash(nodes, start + k, end, right);
        MerkleHasher.Node(left, right, destination);
    }

    private static byte[] Range(INodeSource nodes, long start, long end)
    {
        var h = new byte[MerkleHasher.HashSize];
        RangeHash(nodes, start, end, h);
        return h;
    }

    private static void InclusionPath(INodeSource nodes, long m, long start, long end, List<ReadOnlyMemory<byte>> path)
    {
        var n = end - start;
        if (n == 1)
        {
            return;
        }

        var k = MerkleHasher.SplitPoint(n);
        if (m < k)
        {
            InclusionPath(nodes, m, start, start + k, path);
            path.Add(Range(nodes, start + k, end));
        }
        else
        {
            InclusionPath(nodes, m - k, start + k, end, path);
            path.Add(Range(nodes, start, start + k));
        }
    }

    private static void SubProof(INodeSource nodes, long m, long start, long end, bool complete, List<ReadOnlyMemory<byte>> path)
    {
        var n = end - start;
        if (m == n)
        {
            if (!complete)
            {
                path.Add(Range(nodes, start, end));
            }

            return;
        }

        var k = MerkleHasher.SplitPoint(n);
        if (m <= k)
        {
            SubProof(nodes, m, start, start + k, complete, path);
            path.Add(Range(nodes, start + k, end));
        }
        else
        {
            SubProof(nodes, m - k, start + k, end, false, path);
            path.Add(Range(nodes, start, start + k));
        }
    }
}

/// <summary>An in-memory tree of leaf hashes with every complete-subtree node stored (tests, offline tools).</summary>
internal sealed class MemoryMerkleTree : INodeSource
{
    private readonly List<List<byte[]>> _levels = [[]];

    public long Size => _levels[0].Count;

    public void AppendLeafHash(ReadOnlySpan<byte> leafHash)
    {
        var node = leafHash.ToArray();
        var level = 0;
        while (true)
        {
            var nodes = _levels[level];
            nodes.Add(node);
            if ((nodes.Count & 1) == 1)
            {
                return;
            }

            node = MerkleHasher.Node(nodes[^2], node);
            level++;
            if (_levels.Count == level)
            {
                _levels.Add([]);
            }
        }
    }

    public void ReadNode(int level, long index, Span<byte> destination) => _levels[level][(int)index].CopyTo(destination);

    public byte[] Root(long size) => MerkleProofBuilder.RootHash(this, size);
}
