namespace Har.Drift.Tests.Profiles;

public sealed class ReferenceProfileBuilderTests
{
    [Theory]
    [InlineData(0)] // Build never advanced through a recording: it looped forever
    [InlineData(-5)]
    [InlineData(15)]
    [InlineData(10_000_001)]
    public void Constructor_SegmentLengthOutOfRange_ThrowsNamingTheOption(int segmentLength)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new ReferenceProfileBuilder(Synthetic.Channels, new ReferenceProfileOptions { SegmentLength = segmentLength }));
        Assert.Equal("options.SegmentLength", ex.ParamName);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-50.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Constructor_SampleRateNotPositive_Throws(double rate)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new ReferenceProfileBuilder(Synthetic.Channels, new ReferenceProfileOptions { SampleRateHz = rate }));
        Assert.Contains("SampleRateHz must be above 0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_ShortestWindow_Accepted()
    {
        _ = new ReferenceProfileBuilder(Synthetic.Channels, new ReferenceProfileOptions { SegmentLength = 16 });
    }
}
