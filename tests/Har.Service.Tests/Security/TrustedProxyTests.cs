using System.Diagnostics;
using System.Net;

namespace Har.Service.Tests.Security;

/// <summary>
/// <c>Har:Service:TrustedProxies</c>: behind nginx or an ingress every anonymous client had the proxy's address, so all of
/// them shared one request budget, one window budget and one stream quota (docs/fleet.md). A request from a trusted proxy
/// now counts as coming from the address its <c>X-Forwarded-For</c> names; the header from any other address is ignored.
/// The proxy is 127.0.0.1 and the untrusted client 127.0.6.1 (Linux routes every 127.x.y.z to the loopback).
/// </summary>
public sealed class TrustedProxyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ClientsBehindATrustedProxy_EachHaveTheirOwnBudget_AHeaderFromAnyoneElseIsIgnored()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "other loopback addresses (127.0.x.y) are routed on Linux");

        // A request budget of 2 per client, refilled at 1 a second.
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:TrustedProxies:0"] = "127.0.0.1",
            ["Har:Service:RateLimitPerSecond"] = "1",
            ["Har:Service:RateLimitBurst"] = "2",
        }, cancellationToken: Ct);

        // Ten clients behind the proxy: each is served its own 2 requests (as one client they would share 2, plus 1 a second).
        using var proxy = service.CreateClientFrom(IPAddress.Loopback);
        for (var i = 1; i <= 10; i++)
        {
            var client = $"203.0.113.{i}";
            Assert.Equal([HttpStatusCode.NotFound, HttpStatusCode.NotFound], [await GetAsync(proxy, client), await GetAsync(proxy, client)]);
        }

        // A client that is not a trusted proxy cannot choose its address: ten "clients" it names share its one budget.
        using var untrusted = service.CreateClientFrom(IPAddress.Parse("127.0.6.1"));
        var elapsed = Stopwatch.StartNew();
        var served = 0;
        for (var i = 1; i <= 10; i++)
        {
            for (var r = 0; r < 2; r++)
            {
                served += await GetAsync(untrusted, $"198.51.100.{i}") == HttpStatusCode.TooManyRequests ? 0 : 1;
            }
        }

        var bound = 2 + (int)Math.Ceiling(elapsed.Elapsed.TotalSeconds) + 1;
        Assert.True(served <= bound, $"{served} of 20 requests naming 10 addresses from one untrusted client were served in {elapsed.Elapsed.TotalSeconds:0.0} s; its one budget serves at most {bound}");
        Assert.False(service.HasExited, service.Output);
    }

    [Fact]
    public async Task TrustedProxies_AnEntryThatIsNotAnAddressOrNetwork_StopsTheStartWithExitCode2NamingIt()
    {
        var (exitCode, output) = await ServiceProcess.RunUntilExitAsync(new Dictionary<string, string>
        {
            ["Har:Service:TrustedProxies:0"] = "10.0.0.0/33",
        }, Ct);

        Assert.Equal(2, exitCode); // a configuration mistake: one line saying what is wrong, no stack trace
        Assert.Contains("Har:Service:TrustedProxies contains \\u002710.0.0.0/33\\u0027", output, StringComparison.Ordinal); // the JSON log's escaping of '...'
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
    }

    private static async Task<HttpStatusCode> GetAsync(HttpClient client, string forwardedFor)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/no-such-resource");
        request.Headers.Add("X-Forwarded-For", forwardedFor);
        using var response = await client.SendAsync(request, Ct);
        return response.StatusCode;
    }
}
