using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Har.Service.Tests.Streams;

namespace Har.Service.Tests.Security;

/// <summary>
/// Found from outside (docs/hardening.md point 50): after rounds of prediction bodies that filled the service's
/// <c>MaxArrivingBodyBytes</c>, the idle process kept about a gigabyte resident (955 MB against 225 MB before the
/// floods): an idle process runs no collection, so the last round's buffers stayed. Once a flood is over, the service now
/// runs the same compacting collection it runs after a mass eviction of streams. Real process, started with the GC
/// settings of <c>deploy/Dockerfile</c>.
/// </summary>
public sealed class BodyFloodMemoryTests
{
    private const int Bodies = 24;
    private const int Length = (4 * 1024 * 1024) - 1;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AFloodOfRequestBodies_IsGivenBackOnceItIsOver_RssWithinTenPercentOfIdleBaseline()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("RSS is read from /proc (Linux).");
        }

        await using var service = await ServiceProcess.StartAsync(
            new Dictionary<string, string>
            {
                ["Har:Service:MaxArrivingBodyBytes"] = (128L * 1024 * 1024).ToString(CultureInfo.InvariantCulture),
                ["Har:Service:MaxArrivingBodyBytesPerClient"] = (128L * 1024 * 1024).ToString(CultureInfo.InvariantCulture),
                ["Har:Service:MinRequestBodyBytesPerSecond"] = "0",
                ["Har:Service:PredictionBodySeconds"] = "600",
                ["Har:Service:StreamIdleTimeout"] = "00:00:20", // the maintenance loop looks every 5 s
            },
            environment: StreamMemoryTests.DockerfileGcSettings(),
            cancellationToken: Ct);
        using var client = service.CreateClient();

        // A first flood warms the process (JIT, Kestrel's and the pools' buffers); its release makes the baseline an idle
        // process after a full collection.
        await FloodAsync(service, client, "warm");
        Assert.True(await ServiceQueries.EventuallyAsync(async () => await ReleasesAsync(client) >= 1, TimeSpan.FromSeconds(120), Ct), "no memory release followed the first flood of bodies");
        var baseline = await StreamMemoryTests.SteadyRssAsync(service.ProcessId);

        var loaded = await FloodAsync(service, client, "flood");

        long rss = 0;
        var back = await ServiceQueries.EventuallyAsync(
            async () => await ReleasesAsync(client) >= 2 && (rss = StreamMemoryTests.Rss(service.ProcessId)) <= baseline * 1.10,
            TimeSpan.FromSeconds(120),
            Ct);
        var releases = await ReleasesAsync(client);
        var message = string.Create(CultureInfo.InvariantCulture,
            $"idle baseline {baseline / 1048576.0:F1} MiB; with {Bodies} bodies of 4 MiB arriving {loaded / 1048576.0:F1} MiB; after the flood {rss / 1048576.0:F1} MiB ({100.0 * rss / baseline:F1} % of baseline); releases {releases}");
        TestContext.Current.SendDiagnosticMessage(message);
        Console.WriteLine(message);
        Assert.True(loaded > baseline * 1.10, $"the flood did not measurably raise RSS, so the test proves nothing: {message}");
        Assert.True(back, $"RSS did not come back within 10 % of the idle baseline within 120 s of the flood's end: {message}");
        Assert.Contains("Released memory after a flood of prediction request bodies", service.Output, StringComparison.Ordinal);
        Assert.Equal(0, (await ServiceQueries.MetricAsync(client, "har_service_arriving_body_bytes", Ct)).Values.Sum());
    }

    /// <summary>
    /// <see cref="Bodies"/> stream appends of 4 MiB each, all but the last byte sent, held until every buffer is charged;
    /// then the connections are dropped. Returns the RSS while they were held.
    /// </summary>
    private static async Task<long> FloodAsync(ServiceProcess service, HttpClient client, string prefix)
    {
        var body = new byte[Length];
        var connections = new List<TcpClient>();
        try
        {
            for (var i = 0; i < Bodies; i++)
            {
                var tcp = new TcpClient();
                connections.Add(tcp);
                await tcp.ConnectAsync(service.BaseAddress.Host, service.BaseAddress.Port, Ct);
                var head = $"POST /v1/streams/{prefix}-{i}/samples HTTP/1.1\r\nHost: {service.BaseAddress.Authority}\r\nContent-Type: application/octet-stream\r\nContent-Length: {Length}\r\nConnection: close\r\n\r\n";
                await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes(head), Ct);
                await tcp.GetStream().WriteAsync(body.AsMemory(0, Length - 1), Ct);
            }

            Assert.True(
                await ServiceQueries.EventuallyAsync(async () => (await ServiceQueries.MetricAsync(client, "har_service_arriving_body_bytes", Ct)).Values.Sum() >= Bodies * (double)(Length - 1), TimeSpan.FromSeconds(120), Ct),
                $"the {Bodies} bodies' buffers were never all charged");
            return StreamMemoryTests.Rss(service.ProcessId);
        }
        finally
        {
            foreach (var tcp in connections)
            {
                tcp.Dispose();
            }
        }
    }

    private static async Task<double> ReleasesAsync(HttpClient client) =>
        (await ServiceQueries.MetricAsync(client, "har_service_memory_releases_total", Ct)).Where(kv => kv.Key.Contains("cause=\"request_bodies\"", StringComparison.Ordinal)).Sum(kv => kv.Value);
}
