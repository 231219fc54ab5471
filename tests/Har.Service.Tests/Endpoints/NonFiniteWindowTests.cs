using System.Net;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Found by a hostile-client probe: a float32 window holding NaN was refused with "Window holds NaN or infinite values …
/// (Parameter 'window')", naming neither the window nor the value. JSON windows and stream frames named them already.
/// </summary>
public sealed class NonFiniteWindowTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.PositiveInfinity, "Infinity")]
    public async Task AFloat32WindowWithANonFiniteValue_Is400_NamingWindowFrameAndChannel(float bad, string shown)
    {
        using var client = fixture.Service.CreateClient();
        var channels = fixture.Champion.ChannelCount;
        var values = new float[3 * fixture.WindowValues];
        values[fixture.WindowValues + (7 * channels) + 4] = bad; // window 1, frame 7, channel 4 (gy)
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);

        using var response = await client.PostAsync("/v1/predict", ServiceFixture.Bytes(bytes, "application/octet-stream"), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains($"Window 1 frame 7 channel {fixture.Champion.Channels[4]} is {shown}; expected finite sensor values", body, StringComparison.Ordinal);
        Assert.DoesNotContain("Parameter", body, StringComparison.Ordinal);
    }
}
