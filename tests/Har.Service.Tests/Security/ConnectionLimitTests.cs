using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Har.Service.Tests.Security;

/// <summary>
/// Open connections. The hostile-client probe opened idle connections from one address and sent nothing: Kestrel kept
/// each for its keep-alive timeout, and 20,100 of them exhausted the process's open-file limit (20,000): <c>/health</c>
/// timed out, the audit checkpoint was not signed ("Too many open files"), the rollout loop faulted and the process
/// stopped ("Out of memory."). Now one address holds at most <c>MaxConnectionsPerAddress</c>, the service at most
/// <c>MaxConnections</c> kept 1,024 below the open-file limit; a connection beyond either is closed when it is accepted.
/// Connections of "another client" come from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to the loopback).
/// </summary>
public sealed class ConnectionLimitTests
{
    private static readonly IPAddress OtherAddress = IPAddress.Parse("127.0.0.2");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AddressAtItsConnectionLimit_NextConnectionClosed_ItsConnectionsAndOtherAddressesServed()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "other loopback addresses (127.0.0.2) are routed on Linux");
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxConnectionsPerAddress"] = "20",
        }, cancellationToken: Ct);
        using var other = service.CreateClientFrom(OtherAddress);

        // Only the query's own connection is open (the start-up poll's connection was closed), bounded wait.
        Assert.True(
            await ServiceQueries.EventuallyAsync(async () => (await ServiceQueries.MetricAsync(other, "har_service_connections", Ct)).Values.Single() == 1, TimeSpan.FromSeconds(30), Ct),
            "connections of the start-up poll were never released");

        var held = new List<Socket>();
        try
        {
            for (var i = 0; i < 20; i++)
            {
                held.Add(await ConnectAsync(service));
            }

            // Kestrel hands each accepted connection to the thread pool, so on a busy machine the 21st can reach the limit
            // before one of the 20 does, and that one is refused instead. Wait until the service holds all 20 (and the
            // query's own connection from the other address), bounded.
            Assert.True(
                await ServiceQueries.EventuallyAsync(async () => (await ServiceQueries.MetricAsync(other, "har_service_connections", Ct)).Values.Single() == 21, TimeSpan.FromSeconds(30), Ct),
                "the service never held the address's 20 connections");

            // The 21st connection from this address is closed before any request is read (a reset can already reach the
            // client while its connect completes).
            Socket? refused = null;
            try
            {
                refused = await ConnectAsync(service);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
            {
            }

            using (refused)
            {
                Assert.True(refused is null || await IsClosedByServerAsync(refused), "the connection beyond MaxConnectionsPerAddress was not closed by the service");
            }

            // The address's open connections keep working, and another address is served.
            Assert.StartsWith("HTTP/1.1 200", await GetOnAsync(held[0], "/health"), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await other.GetAsync("/health", Ct)).StatusCode);
            var refusals = await ServiceQueries.MetricAsync(other, "har_service_connections_refused_total", Ct);
            Assert.Equal(1, refusals["{reason=\"address\"}"]);
            Assert.Equal(0, refusals["{reason=\"capacity\"}"]);

            // Closing some frees the address's share (released when the service sees them close: bounded wait).
            foreach (var socket in held.Take(5))
            {
                socket.Dispose();
            }

            using var again = service.CreateClient();
            Assert.True(
                await ServiceQueries.EventuallyAsync(async () => await IsHealthyAsync(again), TimeSpan.FromSeconds(30), Ct),
                "the address never got a connection again after closing five");
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }

        Assert.False(service.HasExited, service.Output);
    }

    [Fact]
    public async Task IdleConnectionFloodPastTheOpenFileLimit_ServiceStaysUp_ServesAndWritesFilesAfterwards()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "the open-file limit is set with ulimit and read from /proc");
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxConnectionsPerAddress"] = "0",
        }, cancellationToken: Ct, openFileLimit: 2048);
        using var operatorClient = service.CreateClient(service.OperatorKey);

        // The default MaxConnections (20,000) is lowered to stay 1,024 below the limit, and the start log says so.
        var capacity = await ServiceQueries.MetricAsync(operatorClient, "har_service_connection_capacity", Ct);
        Assert.Equal(1024, capacity.Values.Single());
        Assert.Contains("At most 1024 connections at once", service.Output, StringComparison.Ordinal);
        operatorClient.Dispose();

        // One client opens more idle connections than the process may open files, and holds them.
        var flood = new List<Socket>();
        try
        {
            for (var i = 0; i < 2300; i++)
            {
                try
                {
                    flood.Add(await ConnectAsync(service));
                }
                catch (SocketException)
                {
                    // A refused connection may be reset before the connect completes.
                }
                catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
                {
                    // Or wait in a full accept queue until the connect times out.
                }
            }

            Assert.False(service.HasExited, service.Output);
        }
        finally
        {
            flood.ForEach(s => s.Dispose());
        }

        // Once they are gone, the service answers and writes files (the audit log, a backup archive), no restart.
        using var client = service.CreateClient(service.OperatorKey);
        Assert.True(
            await ServiceQueries.EventuallyAsync(async () => await IsHealthyAsync(client), TimeSpan.FromSeconds(60), Ct),
            "the service did not answer after the flood:\n" + service.Output);
        using (var backup = await client.PostAsync("/v1/backups", null, Ct))
        {
            Assert.True(backup.StatusCode == HttpStatusCode.Created, $"{(int)backup.StatusCode} {await backup.Content.ReadAsStringAsync(Ct)}");
        }

        var refusals = await ServiceQueries.MetricAsync(client, "har_service_connections_refused_total", Ct);
        Assert.True(refusals["{reason=\"capacity\"}"] >= 1, "no connection was refused for capacity");
        Assert.False(service.HasExited, service.Output);
        Assert.DoesNotContain("Too many open files", service.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Out of memory", service.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SmallOpenFileLimit_KeepsHalfForTheService_StillServes()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "the open-file limit is set with ulimit and read from /proc");
        await using var service = await ServiceProcess.StartAsync(openFileLimit: 1024, cancellationToken: Ct);
        using var client = service.CreateClient(service.OperatorKey);
        var capacity = await ServiceQueries.MetricAsync(client, "har_service_connection_capacity", Ct);
        Assert.Equal(512, capacity.Values.Single());
        using var backup = await client.PostAsync("/v1/backups", null, Ct);
        Assert.True(backup.StatusCode == HttpStatusCode.Created, $"{(int)backup.StatusCode} {await backup.Content.ReadAsStringAsync(Ct)}");
    }

    private static async Task<Socket> ConnectAsync(ServiceProcess service)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, service.BaseAddress.Port), timeout.Token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Whether the service closes (or resets) the connection without a word, within a bounded wait.</summary>
    private static async Task<bool> IsClosedByServerAsync(Socket socket)
    {
        var buffer = new byte[256];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            return await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) == 0;
        }
        catch (SocketException)
        {
            return true; // reset
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            return false; // still open after 30 s
        }
    }

    /// <summary>Sends a GET on an open connection and returns the start of the response.</summary>
    private static async Task<string> GetOnAsync(Socket socket, string path)
    {
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), SocketFlags.None, Ct);
        var buffer = new byte[512];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.ASCII.GetString(buffer, 0, read);
    }

    private static async Task<bool> IsHealthyAsync(HttpClient client)
    {
        try
        {
            using var response = await client.GetAsync("/health", Ct);
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException)
        {
            return false; // the connection was refused
        }
    }

}
