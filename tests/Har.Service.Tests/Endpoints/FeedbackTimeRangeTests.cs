using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// A feedback label's time range needs a UTC offset (the docs and the error text said so), but
/// <c>"from": "2026-12-06T12:00:00"</c> was accepted and read in the server's time zone: the same label meant another
/// instant on a replica in another zone. A time without an offset is a 400 on both feedback routes now.
/// </summary>
public sealed class FeedbackTimeRangeTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ServiceProcess Service => fixture.Service;

    [Theory]
    [InlineData("/v1/feedback", "2026-12-06T12:00:00", "2026-12-06T12:01:00Z", "labels[0]: from '2026-12-06T12:00:00' has no UTC offset")]
    [InlineData("/v1/feedback", "2026-12-06T12:00:00Z", "2026-12-06T12:01:00", "labels[0]: to '2026-12-06T12:01:00' has no UTC offset")]
    [InlineData("/v1/feedback", "2026-12-06", "2026-12-07T00:00:00Z", "labels[0]: from '2026-12-06' has no UTC offset")]
    [InlineData("/v1/feedback", "2026-12-06T12:00:00.5", "2026-12-06T12:01:00+01:00", "has no UTC offset; add Z or an offset such as +01:00")]
    [InlineData("/v1/streams/dev-tz/feedback", "2026-12-06T12:00:00", "2026-12-06T12:01:00", "labels[0]: from '2026-12-06T12:00:00' has no UTC offset")]
    [InlineData("/v1/feedback", "yesterday", "2026-12-06T12:01:00Z", "from and to must both be ISO 8601 times with a UTC offset")]
    public async Task TimeWithoutOffset_Is400(string path, string from, string to, string expected)
    {
        using var labeller = Service.CreateClient(Service.LabellerKey);
        using var response = await labeller.PostAsync(path, Labels(from, to), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{from} … {to}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(expected, JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2026-12-06T12:00:00Z", "2026-12-06T12:01:00Z")]
    [InlineData("2026-12-06T13:00:00+01:00", "2026-12-06T07:01:00.250-05:00")]
    public async Task TimeWithOffset_IsAccepted(string from, string to)
    {
        using var labeller = Service.CreateClient(Service.LabellerKey);
        foreach (var path in new[] { "/v1/feedback", "/v1/streams/dev-tz/feedback" })
        {
            using var response = await labeller.PostAsync(path, Labels(from, to), Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path} {from} … {to}: {(int)response.StatusCode} {text}");
        }
    }

    private StringContent Labels(string from, string to) => ServiceFixture.Json(
        $$"""{"labels": [{"stream_id": "dev-tz", "activity": "{{fixture.Champion.Labels[0]}}", "from": "{{from}}", "to": "{{to}}"}]}""");
}
