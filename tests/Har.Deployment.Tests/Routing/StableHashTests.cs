using System.Globalization;
using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Routing;

public sealed class StableHashTests
{
    [Fact]
    public async Task Hash64_SameKeyInAnotherProcess_SameValue()
    {
        // string.GetHashCode is randomised per process; the routing hash must not be.
        var keys = new[] { "device-1", "a", "ünïcødé-ß", new string('x', 37) };
        var here = keys.Select(k => StableHash.Hash64(k, 42).ToString(CultureInfo.InvariantCulture));
        var result = await ProcessHost.RunAsync(["hash", "42", .. keys]);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(string.Join('\n', here), result.Output.Trim().ReplaceLineEndings("\n"));
        Assert.NotEqual(
            "device-1".GetHashCode(StringComparison.Ordinal).ToString(CultureInfo.InvariantCulture),
            (await ProcessHost.RunAsync(["string-hash", "device-1"])).Output.Trim());
    }

    [Fact]
    public void Hash64_EmptyInputSeedZero_PublishedXxh64Value()
    {
        // XXH64 of zero bytes with seed 0 is 0xEF46DB3751D8E999 (the xxHash reference test vector).
        Assert.Equal(0xEF46DB3751D8E999UL, StableHash.Hash64(ReadOnlySpan<char>.Empty, 0));
    }

    [Fact]
    public void Hash64_DifferentSeeds_DifferentValues()
    {
        Assert.NotEqual(StableHash.Hash64("device-1", 1), StableHash.Hash64("device-1", 2));
    }

    [Fact]
    public void Hash64_EveryLengthUpTo40_SingleCharChangeChangesHash()
    {
        for (var n = 1; n <= 40; n++)
        {
            var key = new string('k', n).ToCharArray();
            var original = StableHash.Hash64(key, 7);
            for (var i = 0; i < n; i++)
            {
                key[i] = 'j';
                Assert.NotEqual(original, StableHash.Hash64(key, 7));
                key[i] = 'k';
            }
        }
    }

    [Fact]
    public void Bucket_AlwaysInRange()
    {
        var rng = new Random(3);
        for (var i = 0; i < 100_000; i++)
        {
            var b = StableHash.Bucket((ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63), 10_000);
            Assert.InRange(b, 0, 9_999);
        }

        Assert.Equal(9_999, StableHash.Bucket(ulong.MaxValue, 10_000));
        Assert.Equal(0, StableHash.Bucket(0, 10_000));
    }
}
