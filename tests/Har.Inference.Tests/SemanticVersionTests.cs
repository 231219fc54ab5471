using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Har.Inference.Tests;

public sealed class SemanticVersionTests
{
    // The precedence example of the SemVer 2.0 specification (semver.org, item 11), in increasing order.
    private static readonly string[] SpecOrder =
    [
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0",
    ];

    [Fact]
    public void CompareTo_SpecificationExample_IsInIncreasingOrder()
    {
        for (var i = 0; i < SpecOrder.Length; i++)
        {
            for (var j = 0; j < SpecOrder.Length; j++)
            {
                var c = SemanticVersion.Parse(SpecOrder[i]).CompareTo(SemanticVersion.Parse(SpecOrder[j]));
                Assert.Equal(i.CompareTo(j), Math.Sign(c));
            }
        }
    }

    [Fact]
    public void CompareTo_CoreNumbers_AreNumericNotTextual()
    {
        // semver.org item 11: 1.0.0 < 2.0.0 < 2.1.0 < 2.1.1; and 1.10.0 follows 1.9.0 (a string sort gets it wrong).
        Assert.True(SemanticVersion.Parse("1.0.0") < SemanticVersion.Parse("2.0.0"));
        Assert.True(SemanticVersion.Parse("2.0.0") < SemanticVersion.Parse("2.1.0"));
        Assert.True(SemanticVersion.Parse("2.1.0") < SemanticVersion.Parse("2.1.1"));
        Assert.True(SemanticVersion.Parse("1.10.0") > SemanticVersion.Parse("1.9.0"));
    }

    [Theory]
    [InlineData("1.2.0", "1.2.0")]
    [InlineData("v1.2.0", "1.2.0")]
    [InlineData("V10.20.30", "10.20.30")]
    [InlineData("1.0.0-rc.1+build.5", "1.0.0-rc.1+build.5")]
    [InlineData("1.0.0+20130313144700", "1.0.0+20130313144700")]
    [InlineData("1.0.0-x-y-z.--", "1.0.0-x-y-z.--")]
    public void Parse_Valid_NormalisesWithoutV(string text, string expected)
    {
        Assert.Equal(expected, SemanticVersion.Parse(text).ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("1")]
    [InlineData("1.2")]
    [InlineData("1.2.3.4")]
    [InlineData("01.2.3")]
    [InlineData("1.2.3-01")]
    [InlineData("1.2.3-")]
    [InlineData("1.2.3-a..b")]
    [InlineData("1.2.3+")]
    [InlineData("1.2.3-a_b")]
    [InlineData("../1.2.3")]
    [InlineData("1.2.3/..")]
    [InlineData("1234567890.0.0")]
    [InlineData(" 1.2.3")]
    [InlineData("vv1.2.3")]
    public void TryParse_Invalid_ReturnsFalseAndParseSaysWhatIsExpected(string text)
    {
        Assert.False(SemanticVersion.TryParse(text, out _));
        var ex = Assert.Throws<FormatException>(() => SemanticVersion.Parse(text));
        Assert.Contains("expected MAJOR.MINOR.PATCH", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Equals_BuildMetadata_IsIgnoredForPrecedence()
    {
        Assert.Equal(SemanticVersion.Parse("1.0.0+a"), SemanticVersion.Parse("1.0.0+b"));
        Assert.Equal(SemanticVersion.Parse("1.0.0+a").GetHashCode(), SemanticVersion.Parse("1.0.0").GetHashCode());
    }

    [Property]
    public Property CompareTo_Releases_AgreesWithTupleOrder(NonNegativeInt a1, NonNegativeInt a2, NonNegativeInt a3, NonNegativeInt b1, NonNegativeInt b2, NonNegativeInt b3)
    {
        static int Small(NonNegativeInt x) => x.Get % 1000;
        var a = SemanticVersion.Parse($"{Small(a1)}.{Small(a2)}.{Small(a3)}");
        var b = SemanticVersion.Parse($"{Small(b1)}.{Small(b2)}.{Small(b3)}");
        var expected = (Small(a1), Small(a2), Small(a3)).CompareTo((Small(b1), Small(b2), Small(b3)));
        return (Math.Sign(a.CompareTo(b)) == Math.Sign(expected) && a.CompareTo(b) == -b.CompareTo(a)).ToProperty();
    }

    [Property]
    public Property Parse_ToString_RoundTrips(NonNegativeInt major, NonNegativeInt minor, NonNegativeInt patch, NonNegativeInt pre)
    {
        var text = $"{major.Get % 100_000}.{minor.Get}.{patch.Get % 7}-rc.{pre.Get % 50}";
        return (SemanticVersion.Parse(text).ToString() == text).ToProperty();
    }
}
