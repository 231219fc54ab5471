using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using Har.Deployment;

namespace Har.Benchmarks.Deployment;

/// <summary>
/// One routing decision (stream id → version, shadow) on a 10 % canary plan with mirroring, for keys
/// from a short id to a 64-char device path (36 = a UUID). Baseline: the
/// sticky-bucketing scheme of common feature-flag SDKs (SHA-1 of "salt.key", first 15 hex digits as the
/// bucket source), the peer way to get deterministic percentage assignment.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class RoutingBenchmarks
{
    private TrafficRouter _router = null!;
    private string[] _keys = null!;
    private string _salt = null!;
    private int _i;

    [Params(7, 24, 36, 61, 64)]
    public int KeyLength { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _salt = "rollout-2026-01-15-1.1.0";
        _router = new TrafficRouter(new TrafficPlan("1.0.0", "1.1.0", 1_000, TrafficPlan.SaltFor(_salt), mirrorCandidateToStable: true));
        var rng = new Random(42);
        _keys = new string[1024];
        for (var i = 0; i < _keys.Length; i++)
        {
            var chars = new char[KeyLength];
            for (var c = 0; c < chars.Length; c++)
            {
                chars[c] = (char)('a' + rng.Next(26));
            }

            _keys[i] = new string(chars);
        }
    }

    [Benchmark(Baseline = true)]
    public string Sha1Bucketing()
    {
        var key = _keys[_i++ & 1023];
#pragma warning disable CA5350 // the peer scheme being measured uses SHA-1 for bucketing, not for security
        var hash = SHA1.HashData(Encoding.UTF8.GetBytes(_salt + "." + key));
#pragma warning restore CA5350
        var value = (BitConverter.ToUInt64(hash, 0) & 0x0FFFFFFFFFFFFFFFUL) / (double)0x0FFFFFFFFFFFFFFFUL;
        return value < 0.10 ? "1.1.0" : "1.0.0";
    }

    [Benchmark]
    public string Route()
    {
        var d = _router.Route(_keys[_i++ & 1023]);
        return d.Version;
    }
}
