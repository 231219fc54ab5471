using Har.Cli.Commands;

namespace Har.Cli.Tests.Commands;

public sealed class InferenceCommandsTests
{
    [Theory]
    [InlineData(0.0, "0.000")]
    [InlineData(-1e-12, "0.000")] // a measured accuracy equal to the card's up to rounding ("-+0.000" before)
    [InlineData(1e-12, "0.000")]
    [InlineData(0.25, "+0.250")]
    [InlineData(-1.5, "-1.500")]
    public void SignedPoints_ZeroAfterRoundingHasNoSign(double points, string expected)
    {
        Assert.Equal(expected, InferenceCommands.SignedPoints(points));
    }
}
