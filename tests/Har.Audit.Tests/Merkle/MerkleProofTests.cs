using System.Text.Json;
using Har.Audit.Merkle;
using Har.Testing;

namespace Har.Audit.Tests.Merkle;

/// <summary>RFC 6962/9162 Merkle trees against transparency-dev/merkle's vectors (../shared/reference/merkle_vectors.json, read in place).</summary>
public sealed class MerkleProofTests
{
    private static JsonDocument Vectors() => JsonDocument.Parse(File.ReadAllBytes(TestPaths.RequireReference("merkle_vectors.json")));

    private static byte[] Hex(JsonElement e) => Convert.FromHexString(e.GetString()!);

    private static List<ReadOnlyMemory<byte>> Path(JsonElement e) => e.EnumerateArray().Select(x => (ReadOnlyMemory<byte>)Hex(x)).ToList();

    private static string HexOf(IEnumerable<ReadOnlyMemory<byte>> path) => string.Join(",", path.Select(p => Convert.ToHexStringLower(p.Span)));

    private static MemoryMerkleTree StandardTree(JsonElement root)
    {
        var tree = new MemoryMerkleTree();
        foreach (var leaf in root.GetProperty("extracted").GetProperty("leaves").GetProperty("hex").EnumerateArray())
        {
            tree.AppendLeafHash(MerkleHasher.Leaf(Hex(leaf)));
        }

        return tree;
    }

    [Fact]
    public void Hasher_Rfc6962Vectors_Match()
    {
        using var doc = Vectors();
        var items = doc.RootElement.GetProperty("extracted").GetProperty("hasher_vectors").GetProperty("items");
        foreach (var v in items.EnumerateArray())
        {
            var actual = v.GetProperty("op").GetString() switch
            {
                "empty_root" => MerkleHasher.EmptyRoot,
                "leaf" => MerkleHasher.Leaf(Hex(v.GetProperty("input_hex"))),
                "node" => MerkleHasher.Node(Hex(v.GetProperty("left_hex")), Hex(v.GetProperty("right_hex"))),
                var op => throw new InvalidOperationException(op),
            };
            Assert.Equal(v.GetProperty("expected").GetString(), Convert.ToHexStringLower(actual));
        }

        Assert.Equal(4, items.GetArrayLength());
    }

    [Fact]
    public void RootHash_StandardLeaves_MatchesRootsForSizes0To8AndStoredNodes()
    {
        using var doc = Vectors();
        var tree = StandardTree(doc.RootElement);
        foreach (var root in doc.RootElement.GetProperty("extracted").GetProperty("roots_by_size").GetProperty("hex").EnumerateObject())
        {
            Assert.Equal(root.Value.GetString(), Convert.ToHexStringLower(tree.Root(long.Parse(root.Name, System.Globalization.CultureInfo.InvariantCulture))));
        }

        var level = 0;
        foreach (var nodes in doc.RootElement.GetProperty("extracted").GetProperty("node_hashes").GetProperty("levels").EnumerateArray())
        {
            var i = 0;
            foreach (var node in nodes.EnumerateArray())
            {
                var actual = new byte[32];
                tree.ReadNode(level, i++, actual);
                Assert.Equal(node.GetString(), Convert.ToHexStringLower(actual));
            }

            level++;
        }
    }

    [Fact]
    public void Proofs_GoldenAndComputedAll_GenerateExactlyAndVerify()
    {
        using var doc = Vectors();
        var root = doc.RootElement;
        var tree = StandardTree(root);
        var leaves = root.GetProperty("extracted").GetProperty("leaves").GetProperty("hex").EnumerateArray().Select(Hex).ToArray();
        var inclusion = root.GetProperty("extracted").GetProperty("inclusion_proofs").GetProperty("items").EnumerateArray()
            .Concat(root.GetProperty("computed_all_proofs_size_1_to_8").GetProperty("inclusion").EnumerateArray()).ToList();
        foreach (var v in inclusion)
        {
            var index = v.GetProperty("leaf_index").GetInt64();
            var size = v.GetProperty("tree_size").GetInt64();
            var expected = Path(v.GetProperty("proof"));
            var generated = MerkleProofBuilder.Inclusion(tree, index, size);
            Assert.Equal(HexOf(expected), HexOf(generated));
            Assert.True(MerkleProof.VerifyInclusion(index, size, MerkleHasher.Leaf(leaves[index]), expected, Hex(v.GetProperty("root"))), $"inclusion {index}/{size}");
        }

        var consistency = root.GetProperty("extracted").GetProperty("consistency_proofs").GetProperty("items").EnumerateArray()
            .Concat(root.GetProperty("computed_all_proofs_size_1_to_8").GetProperty("consistency").EnumerateArray()).ToList();
        foreach (var v in consistency)
        {
            var size1 = v.GetProperty("size1").GetInt64();
            var size2 = v.GetProperty("size2").GetInt64();
            var expected = Path(v.GetProperty("proof"));
            Assert.Equal(HexOf(expected), HexOf(MerkleProofBuilder.Consistency(tree, size1, size2)));
            Assert.True(MerkleProof.VerifyConsistency(size1, size2, expected, Hex(v.GetProperty("root1")), Hex(v.GetProperty("root2"))), $"consistency {size1}->{size2}");
        }

        Assert.Equal(5 + 36, inclusion.Count);
        Assert.Equal(5 + 28, consistency.Count);
    }

    [Fact]
    public void VerifyInclusion_AllProbes_FailExactlyWhenExpected()
    {
        using var doc = Vectors();
        var probes = doc.RootElement.GetProperty("extracted").GetProperty("inclusion_probes").GetProperty("items");
        foreach (var p in probes.EnumerateArray())
        {
            // Indexes beyond the signed 64-bit range (Go's uint64 underflow probes) cannot be expressed and must not verify.
            var ok = p.GetProperty("leaf_index").TryGetInt64(out var index) && p.GetProperty("tree_size").TryGetInt64(out var size)
                && MerkleProof.VerifyInclusion(index, size, Hex(p.GetProperty("leaf_hash")), Path(p.GetProperty("proof")), Hex(p.GetProperty("root")));
            Assert.True(ok == !p.GetProperty("want_error").GetBoolean(), $"{p.GetProperty("file").GetString()}: verified={ok}");
        }

        Assert.Equal(98, probes.GetArrayLength());
    }

    [Fact]
    public void VerifyConsistency_AllProbes_FailExactlyWhenExpected()
    {
        using var doc = Vectors();
        var probes = doc.RootElement.GetProperty("extracted").GetProperty("consistency_probes").GetProperty("items");
        foreach (var p in probes.EnumerateArray())
        {
            var ok = MerkleProof.VerifyConsistency(p.GetProperty("size1").GetInt64(), p.GetProperty("size2").GetInt64(), Path(p.GetProperty("proof")), Hex(p.GetProperty("root1")), Hex(p.GetProperty("root2")));
            Assert.True(ok == !p.GetProperty("want_error").GetBoolean(), $"{p.GetProperty("file").GetString()}: verified={ok}");
        }

        Assert.Equal(98, probes.GetArrayLength());
    }

    [Fact]
    public void Proofs_Rfc9162WorkedExample_MatchNamedNodes()
    {
        using var doc = Vectors();
        var example = doc.RootElement.GetProperty("computed_rfc9162_example");
        var tree = StandardTree(doc.RootElement);
        Assert.Equal(example.GetProperty("nodes").GetProperty("hash").GetString(), Convert.ToHexStringLower(tree.Root(7)));
        foreach (var p in example.GetProperty("inclusion_proofs").EnumerateObject())
        {
            var proof = MerkleProofBuilder.Inclusion(tree, p.Value.GetProperty("leaf_index").GetInt64(), p.Value.GetProperty("tree_size").GetInt64());
            Assert.Equal(HexOf(Path(p.Value.GetProperty("hex"))), HexOf(proof));
        }

        foreach (var p in example.GetProperty("consistency_proofs").EnumerateObject())
        {
            var proof = MerkleProofBuilder.Consistency(tree, p.Value.GetProperty("size1").GetInt64(), p.Value.GetProperty("size2").GetInt64());
            Assert.Equal(HexOf(Path(p.Value.GetProperty("hex"))), HexOf(proof));
        }
    }

    /// <summary>Law: for random trees up to 2,000 leaves every inclusion proof verifies, and every mutation of index, size (with the matching root), any hash, or path length fails.</summary>
    [Fact]
    public void InclusionProof_RandomTrees_VerifyAndEveryMutationFails()
    {
        var rng = new Random(20260115);
        foreach (var size in new long[] { 1, 2, 3, 5, 8, 13, 64, 100, 127, 129, 1000, 1023, 1025, 2000 }.Concat(Enumerable.Range(0, 6).Select(_ => (long)rng.Next(1, 2001))))
        {
            var (tree, leaves) = RandomTree(rng, size);
            var root = tree.Root(size);
            var indexes = size <= 130 ? Enumerable.Range(0, (int)size).Select(i => (long)i) : Enumerable.Range(0, 40).Select(_ => (long)rng.Next((int)size)).Append(0).Append(size - 1);
            foreach (var i in indexes)
            {
                var proof = MerkleProofBuilder.Inclusion(tree, i, size);
                Assert.True(MerkleProof.VerifyInclusion(i, size, leaves[i], proof, root), $"inclusion {i}/{size}");

                foreach (var j in new[] { i - 1, i + 1, i ^ 1, rng.NextInt64(size) }.Where(j => j != i))
                {
                    Assert.False(MerkleProof.VerifyInclusion(j, size, leaves[i], proof, root), $"index {i}->{j} of {size}");
                }

                foreach (var other in new[] { size - 1, size + 1, size * 2 }.Where(s => s > i && s != size))
                {
                    var otherRoot = RandomTreeRoot(tree, leaves, other, rng);
                    Assert.False(MerkleProof.VerifyInclusion(i, other, leaves[i], proof, otherRoot), $"size {size}->{other} at {i}");
                }

                Assert.False(MerkleProof.VerifyInclusion(i, size, Flip(leaves[i], rng), proof, root));
                Assert.False(MerkleProof.VerifyInclusion(i, size, leaves[i], proof, Flip(root, rng)));
                for (var k = 0; k < proof.Count; k++)
                {
                    var mutated = proof.ToList();
                    mutated[k] = Flip(mutated[k].ToArray(), rng);
                    Assert.False(MerkleProof.VerifyInclusion(i, size, leaves[i], mutated, root), $"hash {k} of proof {i}/{size}");
                }

                if (proof.Count > 0)
                {
                    Assert.False(MerkleProof.VerifyInclusion(i, size, leaves[i], proof.Take(proof.Count - 1).ToList(), root));
                }

                Assert.False(MerkleProof.VerifyInclusion(i, size, leaves[i], proof.Append(leaves[0]).ToList(), root));
                Assert.False(MerkleProof.VerifyInclusion(i, size, leaves[i], proof.Prepend(leaves[0]).ToList(), root));
            }
        }
    }

    /// <summary>Law: for random sizes up to 2,000 every consistency proof verifies, and every mutation of sizes (with their roots), any hash, or path length fails.</summary>
    [Fact]
    public void ConsistencyProof_RandomTrees_VerifyAndEveryMutationFails()
    {
        var rng = new Random(9162);
        var (tree, _) = RandomTree(rng, 2000);
        var pairs = new List<(long, long)>();
        for (long n = 1; n <= 20; n++)
        {
            for (long m = 1; m < n; m++)
            {
                pairs.Add((m, n));
            }
        }

        for (var k = 0; k < 150; k++)
        {
            var n = rng.NextInt64(2, 2001);
            pairs.Add((rng.NextInt64(1, n), n));
        }

        foreach (var (m, n) in pairs)
        {
            var proof = MerkleProofBuilder.Consistency(tree, m, n);
            var r1 = tree.Root(m);
            var r2 = tree.Root(n);
            Assert.True(MerkleProof.VerifyConsistency(m, n, proof, r1, r2), $"consistency {m}->{n}");

            Assert.False(MerkleProof.VerifyConsistency(0, n, [], MerkleHasher.EmptyRoot, r2));
            foreach (var m2 in new[] { m - 1, m + 1 }.Where(x => x >= 1 && x < n))
            {
                Assert.False(MerkleProof.VerifyConsistency(m2, n, proof, tree.Root(m2), r2), $"size1 {m}->{m2} of {n}");
            }

            foreach (var n2 in new[] { n - 1, n + 1 }.Where(x => x > m && x <= 2000))
            {
                Assert.False(MerkleProof.VerifyConsistency(m, n2, proof, r1, tree.Root(n2)), $"size2 {n}->{n2} from {m}");
            }

            Assert.False(MerkleProof.VerifyConsistency(m, n, proof, Flip(r1, rng), r2));
            Assert.False(MerkleProof.VerifyConsistency(m, n, proof, r1, Flip(r2, rng)));
            for (var k = 0; k < proof.Count; k++)
            {
                var mutated = proof.ToList();
                mutated[k] = Flip(mutated[k].ToArray(), rng);
                Assert.False(MerkleProof.VerifyConsistency(m, n, mutated, r1, r2), $"hash {k} of {m}->{n}");
            }

            Assert.False(MerkleProof.VerifyConsistency(m, n, proof.Take(proof.Count - 1).ToList(), r1, r2), $"truncated {m}->{n}");
            Assert.False(MerkleProof.VerifyConsistency(m, n, proof.Append(r1).ToList(), r1, r2), $"extended {m}->{n}");
        }
    }

    [Fact]
    public void RootHash_StoredNodes_EqualsRecursiveDefinition()
    {
        var rng = new Random(3);
        var (tree, leaves) = RandomTree(rng, 300);
        for (var n = 1; n <= 300; n++)
        {
            Assert.Equal(Mth(leaves, 0, n), tree.Root(n));
        }
    }

    private static byte[] Mth(byte[][] leaves, int start, int end)
    {
        if (end - start == 1)
        {
            return leaves[start];
        }

        var k = (int)MerkleHasher.SplitPoint(end - start);
        return MerkleHasher.Node(Mth(leaves, start, start + k), Mth(leaves, start + k, end));
    }

    private static (MemoryMerkleTree Tree, byte[][] Leaves) RandomTree(Random rng, long size)
    {
        var tree = new MemoryMerkleTree();
        var leaves = new byte[size][];
        for (var i = 0; i < size; i++)
        {
            var data = new byte[rng.Next(4, 40)];
            rng.NextBytes(data);
            BitConverter.TryWriteBytes(data, i); // distinct leaves: identical siblings would make index mutations indistinguishable
            leaves[i] = MerkleHasher.Leaf(data);
            tree.AppendLeafHash(leaves[i]);
        }

        return (tree, leaves);
    }

    private static byte[] RandomTreeRoot(MemoryMerkleTree tree, byte[][] leaves, long size, Random rng)
    {
        if (size <= tree.Size)
        {
            return tree.Root(size);
        }

        var bigger = new MemoryMerkleTree();
        foreach (var leaf in leaves)
        {
            bigger.AppendLeafHash(leaf);
        }

        while (bigger.Size < size)
        {
            var data = new byte[8];
            rng.NextBytes(data);
            bigger.AppendLeafHash(MerkleHasher.Leaf(data));
        }

        return bigger.Root(size);
    }

    private static byte[] Flip(byte[] hash, Random rng)
    {
        var copy = (byte[])hash.Clone();
        copy[rng.Next(copy.Length)] ^= (byte)(1 << rng.Next(8));
        return copy;
    }
}
