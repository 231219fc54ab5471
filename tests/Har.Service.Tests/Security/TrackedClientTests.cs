using System.Diagnostics;
using System.Net;

namespace Har.Service.Tests.Security;

/// <summary>
/// Anonymous clients the rate limiters keep state for. The hostile-client probe found the service kept a partition per
/// remote address in each rate limiter, bounded by the request rate and the idle time only: an attacker with many
/// addresses (an IPv6 /64 is 2^64 of them) got a fresh budget per address and one more entry of memory per address.
/// Now anonymous clients are IPv4 addresses or IPv6 /64s (<see cref="ClientAddressTests"/>), and at most
/// <c>MaxTrackedClients</c> of them have partitions of their own; the others share one overflow partition until tracked
/// clients go idle. Addresses here are 127.0.x.y, which Linux routes to the loopback.
/// </summary>
public sealed class TrackedClientTests
{
    private const int MaxTrackedClients = 20;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ManyAddresses_EachTrackedOneHasItsOwnBudget_BeyondTheBoundTheyShareOne_IdleOnesMakeRoom()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "other loopback addresses (127.0.x.y) are routed on Linux");

        // A request budget of 2, refilled at 1 a second. The window budget's bucket (16 windows at 1/s) sets how long a
        // client must be idle before its entry may be dropped: 10 s (the framework's) + 16 s + 5 s.
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxTrackedClients"] = MaxTrackedClients.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Har:Service:RateLimitPerSecond"] = "1",
            ["Har:Service:RateLimitBurst"] = "2",
            ["Har:Service:AnonymousWindowsPerSecond"] = "1",
            ["Har:Service:MaxWindowsPerRequest"] = "8",
        }, cancellationToken: Ct);
        using var metrics = service.CreateClient(); // /metrics is not rate limited and takes no entry

        // Twenty addresses: each is a client of its own, with its own budget of 2 requests.
        for (var i = 1; i <= MaxTrackedClients; i++)
        {
            using var client = service.CreateClientFrom(IPAddress.Parse($"127.0.1.{i}"));
            Assert.Equal([HttpStatusCode.NotFound, HttpStatusCode.NotFound], [await GetAsync(client), await GetAsync(client)]);
        }

        Assert.Equal(MaxTrackedClients, await MetricAsync(metrics, "har_service_tracked_clients", "rate_limits"));
        Assert.Equal(0, await MetricAsync(metrics, "har_service_client_overflow_total", "rate_limits"));

        // Forty more addresses while the table is full: they share one budget (2, plus 1 a second) instead of 2 each.
        var elapsed = Stopwatch.StartNew();
        var served = 0;
        for (var i = 1; i <= 40; i++)
        {
            using var client = service.CreateClientFrom(IPAddress.Parse($"127.0.2.{i}"));
            for (var r = 0; r < 2; r++)
            {
                served += await GetAsync(client) == HttpStatusCode.TooManyRequests ? 0 : 1;
            }
        }

        var bound = 2 + (int)Math.Ceiling(elapsed.Elapsed.TotalSeconds) + 1;
        TestContext.Current.SendDiagnosticMessage($"40 untracked addresses: {served} of 80 requests served in {elapsed.Elapsed.TotalSeconds:0.0} s (one shared budget: at most {bound})");
        Assert.True(served <= bound, $"{served} of 80 requests of 40 untracked addresses were served in {elapsed.Elapsed.TotalSeconds:0.0} s; one shared budget serves at most {bound}");
        Assert.Equal(MaxTrackedClients, await MetricAsync(metrics, "har_service_tracked_clients", "rate_limits"));
        Assert.Equal(80, await MetricAsync(metrics, "har_service_client_overflow_total", "rate_limits"));

        // A tracked address keeps its own budget meanwhile (refilled: it waited; bounded wait on the real clock).
        using (var tracked = service.CreateClientFrom(IPAddress.Parse("127.0.1.1")))
        {
            Assert.True(
                await ServiceQueries.EventuallyAsync(async () => await GetAsync(tracked) == HttpStatusCode.NotFound, TimeSpan.FromSeconds(30), Ct),
                "a tracked address was never served again");
        }

        Assert.Equal(80, await MetricAsync(metrics, "har_service_client_overflow_total", "rate_limits"));

        // Once the tracked clients have been idle long enough, a new address takes the place of one of them (bounded wait).
        using var newcomer = service.CreateClientFrom(IPAddress.Parse("127.0.3.1"));
        var waited = Stopwatch.StartNew();
        Assert.True(
            await ServiceQueries.EventuallyAsync(
                async () =>
                {
                    var before = await MetricAsync(metrics, "har_service_client_overflow_total", "rate_limits");
                    await GetAsync(newcomer);
                    return await MetricAsync(metrics, "har_service_client_overflow_total", "rate_limits") == before;
                },
                TimeSpan.FromSeconds(120),
                Ct),
            "a new address never got an entry after the tracked ones went idle");
        TestContext.Current.SendDiagnosticMessage($"a new address got an entry {waited.Elapsed.TotalSeconds:0} s after the table was last used by the tracked clients but one");
        Assert.InRange(await MetricAsync(metrics, "har_service_tracked_clients", "rate_limits"), 1, MaxTrackedClients);
        Assert.False(service.HasExited, service.Output);
    }

    private static async Task<HttpStatusCode> GetAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/v1/no-such-resource", Ct);
        return response.StatusCode;
    }

    private static async Task<double> MetricAsync(HttpClient client, string name, string table) =>
        (await ServiceQueries.MetricAsync(client, name, Ct)).GetValueOrDefault($"{{table=\"{table}\"}}", double.NaN);
}
