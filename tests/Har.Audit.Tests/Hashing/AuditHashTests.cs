using System.Security.Cryptography;
using System.Text;

namespace Har.Audit.Tests.Hashing;

public sealed class AuditHashTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData((1 << 20) - 1)]
    [InlineData(1 << 20)]
    [InlineData((3 << 20) + 12345)]
    public async Task Sha256OfFileAsync_AnySize_MatchesOneShotHash(int size)
    {
        using var dir = new TempDir();
        var path = dir.Combine("model.bin");
        var data = new byte[size];
        new Random(size).NextBytes(data);
        await File.WriteAllBytesAsync(path, data, TestContext.Current.CancellationToken);

        var expected = Convert.ToHexStringLower(SHA256.HashData(data));
        Assert.Equal(expected, await AuditHash.Sha256OfFileAsync(path, TestContext.Current.CancellationToken));
        Assert.Equal(expected, AuditHash.Sha256OfFile(path));
    }

    [Fact]
    public void Sha256OfFile_KnownVector_Matches()
    {
        using var dir = new TempDir();
        var path = dir.Combine("abc.txt");
        File.WriteAllText(path, "abc");

        // FIPS 180-2 example "abc".
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", AuditHash.Sha256OfFile(path));
    }

    [Fact]
    public void Sha256OfCanonicalJson_DifferentLayoutSameValue_SameHash()
    {
        var a = AuditHash.Sha256OfCanonicalJson("""{"b": 1.0, "a": [true, null]}"""u8);
        var b = AuditHash.Sha256OfCanonicalJson("""{"a":[true,null],"b":1}"""u8);
        Assert.Equal(a, b);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("""{"a":[true,null],"b":1}"""))), a);
    }
}
