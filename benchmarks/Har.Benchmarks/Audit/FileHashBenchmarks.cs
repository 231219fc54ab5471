using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Har.Audit;

namespace Har.Benchmarks.Audit;

/// <summary>Streaming SHA-256 of a model-sized file against coreutils <c>sha256sum</c> on the same (page-cached) file, in the same run.</summary>
[MemoryDiagnoser]
public class FileHashBenchmarks
{
    private string _path = string.Empty;
    private string _expected = string.Empty;

    [Params(268_435_456, 100_000_007)]
    public int Bytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _path = Path.Combine(Path.GetTempPath(), $"har-bench-sha-{Bytes}-{Guid.NewGuid():N}.bin");
        var rng = new Random(Bytes);
        var chunk = new byte[1 << 20];
        using (var f = File.Create(_path))
        {
            for (long written = 0; written < Bytes; written += chunk.Length)
            {
                rng.NextBytes(chunk);
                f.Write(chunk, 0, (int)Math.Min(chunk.Length, Bytes - written));
            }
        }

        _expected = Sha256sum();
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(_path);

    [Benchmark(Baseline = true, Description = "sha256sum (coreutils, separate process)")]
    public string Sha256sum()
    {
        var info = new ProcessStartInfo("sha256sum") { RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add(_path);
        using var p = Process.Start(info)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output[..64];
    }

    [Benchmark(Description = "AuditHash.Sha256OfFileAsync (overlapped 1 MiB reads)")]
    public async Task<string> StreamingAsync()
    {
        var hash = await AuditHash.Sha256OfFileAsync(_path).ConfigureAwait(false);
        return hash == _expected || _expected.Length == 0 ? hash : throw new InvalidOperationException("hash mismatch");
    }

    [Benchmark(Description = "AuditHash.Sha256OfFile (sequential 1 MiB reads)")]
    public string Streaming()
    {
        var hash = AuditHash.Sha256OfFile(_path);
        return hash == _expected || _expected.Length == 0 ? hash : throw new InvalidOperationException("hash mismatch");
    }
}
