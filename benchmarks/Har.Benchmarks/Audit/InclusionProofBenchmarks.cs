using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Har.Audit;
using Har.Audit.Merkle;

namespace Har.Benchmarks.Audit;

/// <summary>
/// Inclusion proof generation (stored complete-subtree hashes, O(log n) reads) plus verification, on
/// real logs of 1,000 and 1,000,000 entries (and odd sizes beside them), against a naive proof that
/// recomputes every subtree from the leaves (O(n)). The 1,000-entry case is the baseline: the ratio of
/// the 1,000,000 case is the cost growth over a 1000× larger log.
/// </summary>
[MemoryDiagnoser]
public class InclusionProofBenchmarks
{
    private readonly Random _rng = new(42);
    private string _dir = string.Empty;
    private AuditLog _small = null!;
    private AuditLog _large = null!;
    private byte[][] _smallLeaves = [];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "har-bench-proof-" + Guid.NewGuid().ToString("N"));
        _small = Build(Path.Combine(_dir, "small"), 1_037);
        _large = Build(Path.Combine(_dir, "large"), 1_048_577);
        _smallLeaves = Enumerable.Range(0, 1_000).Select(i => _small.Get(i).LeafHash.ToArray()).ToArray();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _small.Dispose();
        _large.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true, Description = "stored nodes, n = 1,000")]
    public bool Prove_1000() => Prove(_small, 1_000);

    [Benchmark(Description = "stored nodes, n = 1,037")]
    public bool Prove_1037() => Prove(_small, 1_037);

    [Benchmark(Description = "stored nodes, n = 1,000,000")]
    public bool Prove_1000000() => Prove(_large, 1_000_000);

    [Benchmark(Description = "stored nodes, n = 1,048,577")]
    public bool Prove_1048577() => Prove(_large, 1_048_577);

    /// <summary>The naive path: rebuild the tree from the 1,000 leaf hashes, then prove (what a log without stored nodes pays).</summary>
    [Benchmark(Description = "naive rebuild from leaves, n = 1,000")]
    public bool NaiveRebuild_1000()
    {
        var tree = new MemoryMerkleTree();
        foreach (var leaf in _smallLeaves)
        {
            tree.AppendLeafHash(leaf);
        }

        var index = _rng.NextInt64(1_000);
        var path = MerkleProofBuilder.Inclusion(tree, index, 1_000);
        return MerkleProof.VerifyInclusion(index, 1_000, _smallLeaves[index], path, tree.Root(1_000));
    }

    private bool Prove(AuditLog log, long size)
    {
        var proof = log.GetInclusionProof(_rng.NextInt64(size), size);
        return proof.Verify() ? true : throw new InvalidOperationException("proof failed");
    }

    private static AuditLog Build(string dir, int count)
    {
        var log = AuditLog.Open(new AuditLogOptions { Directory = dir, EnableMetrics = false });
        var details = JsonSerializer.SerializeToElement(new { step = 1 });
        var t0 = new DateTimeOffset(2026, 1, 15, 0, 0, 0, TimeSpan.Zero);
        var pending = new List<Task<AuditAppendResult>>(8192);
        for (var i = 0; i < count; i++)
        {
            pending.Add(log.AppendAsync(new AuditEvent
            {
                EventType = "bench",
                EntityType = "model",
                EntityId = "m",
                Severity = AuditSeverity.Info,
                ActionDetails = details,
                Actor = "bench",
                Timestamp = t0.AddMilliseconds(i),
            }));
            if (pending.Count == 8192)
            {
                Task.WaitAll(pending);
                pending.Clear();
            }
        }

        Task.WaitAll(pending);
        return log;
    }
}
