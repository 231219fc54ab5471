using System.Text;
using Har.Audit.Hashing;

namespace Har.Audit.Tests.Hashing;

public sealed class Crc32CTests
{
    // Check values from the CRC catalogue (CRC-32/ISCSI) and RFC 3720 appendix B.4.
    [Theory]
    [InlineData("123456789", 0xE3069283u)]
    [InlineData("", 0x00000000u)]
    public void Compute_CatalogueVectors_Match(string text, uint expected) =>
        Assert.Equal(expected, Crc32C.Compute(Encoding.ASCII.GetBytes(text)));

    [Fact]
    public void Compute_Rfc3720Vectors_Match()
    {
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
        Assert.Equal(0x62A8AB43u, Crc32C.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
        Assert.Equal(0x46DD794Eu, Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
        Assert.Equal(0x113FDB5Cu, Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)(31 - i)).ToArray()));
    }

    [Fact]
    public void Update_HardwareAndTablePaths_AgreeOnAllLengthsAndOffsets()
    {
        var rng = new Random(7);
        var data = new byte[300];
        rng.NextBytes(data);
        for (var offset = 0; offset < 9; offset++)
        {
            for (var length = 0; length + offset <= data.Length; length += 1 + (length / 16))
            {
                var span = data.AsSpan(offset, length);
                Assert.Equal(~Crc32C.UpdateTable(~0u, span), Crc32C.Compute(span));
            }
        }
    }

    [Fact]
    public void Compute_TwoParts_EqualsConcatenation()
    {
        var a = Encoding.ASCII.GetBytes("12345");
        var b = Encoding.ASCII.GetBytes("6789");
        Assert.Equal(0xE3069283u, Crc32C.Compute(a, b));
    }
}
