using System.Net;

namespace Har.Service.Tests.Streams;

/// <summary>
/// Point 54 of docs/hardening.md: glibc kept the pages freed inside its malloc arenas (one per thread that allocated
/// native memory, up to 8 per core: ONNX Runtime's runs, the runtime's own), and under a steady soak the service's native
/// memory grew about 1 MiB a minute and was not returned at idle. The service gives those pages back every
/// <c>Har:Service:NativeMemoryTrimInterval</c> (<c>malloc_trim(0)</c>), counted on <c>/metrics</c>.
/// </summary>
public sealed class NativeMemoryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AfterConcurrentPredictions_TheFreePagesOfTheMallocArenasAreGivenBackOnTheInterval()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("malloc_trim is glibc's (Linux).");
        }

        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:KeyedWindowsPerSecond"] = "1000000",
            ["Har:Service:MaxConcurrentPredictionsPerClient"] = "64",
            ["Har:Service:PredictionQueuePerClient"] = "64",
            ["Har:Service:NativeMemoryTrimInterval"] = "00:00:01",
        }, cancellationToken: Ct);
        Assert.Contains("Native memory: the free pages of glibc\\u0027s malloc arenas are given back every 00:00:01 (Har:Service:NativeMemoryTrimInterval)", service.Output, StringComparison.Ordinal);

        // 24 clients at once, 8 windows a request: the thread pool and ONNX Runtime's threads all allocate.
        using var client = service.CreateClient(service.PredictorKey);
        var card = ServiceFixture.ChampionCard(service.ModelsDirectory);
        var values = new float[8 * card.WindowLength * card.ChannelCount];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (i % card.ChannelCount == 2 ? 1f : 0f) + (MathF.Sin(i * 0.37f) * 0.2f);
        }

        var body = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, body, 0, body.Length);
        await Parallel.ForEachAsync(Enumerable.Range(0, 24 * 40), new ParallelOptions { MaxDegreeOfParallelism = 24, CancellationToken = Ct }, async (_, ct) =>
        {
            using var response = await client.PostAsync("/v1/predict", ServiceFixture.Bytes(body, "application/octet-stream"), ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        });

        // Every second here (every minute by default), with the time it took.
        var before = (await ServiceQueries.MetricAsync(client, "har_service_native_memory_trims_total", Ct)).Values.Sum();
        Assert.True(
            await ServiceQueries.EventuallyAsync(async () => (await ServiceQueries.MetricAsync(client, "har_service_native_memory_trims_total", Ct)).Values.Sum() >= before + 2, TimeSpan.FromSeconds(60), Ct),
            "no malloc_trim counted on /metrics after the load within 60 s at a 1-second interval");
        Assert.True((await ServiceQueries.MetricAsync(client, "har_service_native_memory_trim_seconds_total", Ct)).Values.Sum() > 0, "the time spent trimming is not counted");
        Assert.False(service.HasExited);
    }

    [Fact]
    public async Task ATrimIntervalOfZero_TurnsTheTrimOff()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { ["Har:Service:NativeMemoryTrimInterval"] = "00:00:00" }, cancellationToken: Ct);
        using var client = service.CreateClient();
        using (var ready = await client.GetAsync("/ready", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        Assert.DoesNotContain("malloc arenas are given back", service.Output, StringComparison.Ordinal);
        Assert.Equal(0, (await ServiceQueries.MetricAsync(client, "har_service_native_memory_trims_total", Ct)).Values.Sum());
    }
}
