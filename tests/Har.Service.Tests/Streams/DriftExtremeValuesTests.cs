using System.Net;

namespace Har.Service.Tests.Streams;

/// <summary>
/// Finite but extreme sensor values (±3.4e38, the float range; 0 on every channel; one channel stuck) streamed by a
/// device reach its drift monitor: every check (quantile bins, KS, saturation, orientation from the gravity vector)
/// must still give a report that JSON can hold, and the drift routes and <c>/metrics</c> keep answering.
/// </summary>
public sealed class DriftExtremeValuesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ExtremeFiniteValues_DriftReportsAndMetricsStillAnswer()
    {
        var work = Directory.CreateTempSubdirectory("har-drift-extreme-");
        try
        {
            await using var service = await DriftCapacityTests.StartAsync(work);
            using var client = service.CreateClient(service.PredictorKey);
            var card = DriftCapacityTests.Card;
            var patterns = new Dictionary<string, Func<int, int, float>>
            {
                ["max"] = (f, c) => (f + c) % 2 == 0 ? float.MaxValue : -float.MaxValue,
                ["zero"] = (_, _) => 0f,
                ["stuck"] = (f, c) => c == 0 ? 1e30f : (float)Math.Sin(f * 0.1 + c),
                ["tiny"] = (f, c) => float.Epsilon * ((f + c) % 3),
            };
            foreach (var (device, value) in patterns)
            {
                var frames = 1200;
                var values = new float[frames * card.ChannelCount];
                for (var f = 0; f < frames; f++)
                {
                    for (var c = 0; c < card.ChannelCount; c++)
                    {
                        values[f * card.ChannelCount + c] = value(f, c);
                    }
                }

                var bytes = new byte[values.Length * sizeof(float)];
                Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
                for (var offset = 0; offset < bytes.Length; offset += 400 * card.ChannelCount * sizeof(float))
                {
                    using var append = await client.PostAsync($"/v1/streams/{device}/samples", ServiceFixture.Bytes(bytes[offset..Math.Min(bytes.Length, offset + 400 * card.ChannelCount * sizeof(float))], "application/octet-stream"), Ct);
                    Assert.True(append.StatusCode == HttpStatusCode.OK, $"{device}: {(int)append.StatusCode} {await append.Content.ReadAsStringAsync(Ct)}");
                }
            }

            // Each device is scored (bounded wait, real clock); every drift route and /metrics answer.
            foreach (var device in patterns.Keys)
            {
                Assert.True(
                    await ServiceQueries.EventuallyAsync(
                        async () =>
                        {
                            using var report = await client.GetAsync($"/v1/drift?device={device}", Ct);
                            var body = await report.Content.ReadAsStringAsync(Ct);
                            Assert.True(report.StatusCode == HttpStatusCode.OK, $"{device}: {(int)report.StatusCode} {body}");
                            return body.Contains("\"scored\":true", StringComparison.Ordinal);
                        },
                        TimeSpan.FromSeconds(60),
                        Ct),
                    $"device {device} was never scored:\n{service.Output}");
            }

            using (var alarms = await client.GetAsync("/v1/drift/alarms", Ct))
            {
                Assert.True(alarms.StatusCode == HttpStatusCode.OK, $"{(int)alarms.StatusCode} {await alarms.Content.ReadAsStringAsync(Ct)}");
            }

            using (var overall = await client.GetAsync("/v1/drift", Ct))
            {
                Assert.True(overall.StatusCode == HttpStatusCode.OK, $"{(int)overall.StatusCode} {await overall.Content.ReadAsStringAsync(Ct)}");
            }

            var metrics = await client.GetStringAsync("/metrics", Ct);
            Assert.Contains("har_drift", metrics, StringComparison.Ordinal);
            Assert.DoesNotContain("\"LogLevel\":\"Error\"", service.Output, StringComparison.Ordinal);
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }
}
