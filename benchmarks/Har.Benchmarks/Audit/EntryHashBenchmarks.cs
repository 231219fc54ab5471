using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Har.Audit.Hashing;

namespace Har.Benchmarks.Audit;

/// <summary>
/// The per-entry hashes of a durable append: a Merkle node (SHA-256 of 65 bytes) and a leaf (0x00 ‖ a
/// ~420-byte entry). Baseline: <see cref="SHA256.HashData(ReadOnlySpan{byte}, Span{byte})"/> on the
/// prefixed bytes (the .NET API; OpenSSL 3's EVP path on Linux); <see cref="IncrementalHash"/> as the
/// log used it before; <see cref="Sha256"/>, the log's hash (libcrypto's low-level SHA256_* on Linux).
/// </summary>
[MemoryDiagnoser]
public class EntryHashBenchmarks : IDisposable
{
    private readonly byte[] _hash = new byte[32];
    private readonly IncrementalHash _incremental = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private byte[] _prefixed = [];

    [Params(64, 420)]
    public int Bytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _prefixed = new byte[Bytes + 1];
        new Random(Bytes).NextBytes(_prefixed);
        _prefixed[0] = 0x00;
        if (!Sha256.IsNative)
        {
            Console.WriteLine("// Sha256.IsNative is false here: the log uses SHA256.HashData.");
        }
    }

    public void Dispose()
    {
        _incremental.Dispose();
        GC.SuppressFinalize(this);
    }

    [Benchmark(Baseline = true, Description = "SHA256.HashData(prefix+data)")]
    public byte[] SystemOneShot()
    {
        SHA256.HashData(_prefixed, _hash);
        return _hash;
    }

    [Benchmark(Description = "IncrementalHash, reused (prefix, data)")]
    public byte[] SystemIncremental()
    {
        _incremental.AppendData(_prefixed.AsSpan(0, 1));
        _incremental.AppendData(_prefixed.AsSpan(1));
        _incremental.GetHashAndReset(_hash);
        return _hash;
    }

    [Benchmark(Description = "Audit Sha256.Hash(prefix, data)")]
    public byte[] AuditSha256()
    {
        Sha256.Hash(_prefixed[0], _prefixed.AsSpan(1), _hash);
        return _hash;
    }
}
