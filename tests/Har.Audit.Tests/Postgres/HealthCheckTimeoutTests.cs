using System.Net;
using System.Net.Sockets;
using Har.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Har.Audit.Tests.Postgres;

/// <summary>
/// The health check of a log in PostgreSQL gives up within its registration's timeout when the database stops answering
/// without closing the connection (packets dropped: a network partition). Found from outside: with a replica's database
/// connection blackholed, its <c>/ready</c> took 15–30 s to answer. The database is reached through a TCP relay that
/// the test can stop relaying, keeping both connections open.
/// </summary>
public sealed class HealthCheckTimeoutTests(PostgresCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task DatabaseStopsAnswering_TheCheckReportsItsFailureStatusWithinItsTimeout_NotWhenTheDriverGivesUp()
    {
        var direct = new NpgsqlConnectionStringBuilder(await cluster.CreateDatabaseAsync());
        await using var relay = new BlackholeRelay(Path.Combine(direct.Host!, $".s.PGSQL.{direct.Port}"));
        var viaRelay = new NpgsqlConnectionStringBuilder(direct.ConnectionString) { Host = "127.0.0.1", Port = relay.Port, Timeout = 60, CommandTimeout = 120 }.ConnectionString;

        var services = new ServiceCollection();
        services.AddSingleton(AuditLog.Open(new AuditLogOptions { ConnectionString = viaRelay, MetricsRegistry = new Prometheus.CollectorRegistry() }));
        await using var provider = services.BuildServiceProvider();
        var check = new AuditLogHealthCheck(provider);
        var context = new HealthCheckContext { Registration = new HealthCheckRegistration("audit", check, HealthStatus.Degraded, null, TimeSpan.FromSeconds(2)) };

        var before = await check.CheckHealthAsync(context, Ct);
        Assert.Equal(HealthStatus.Healthy, before.Status);

        relay.Blackhole();

        // The health check service cancels a check at its registration's timeout (here 2 s) and reports the failure status:
        // the check must give up then. Bounded far above that and far below the driver's own timeouts (60 s connect,
        // 120 s command): a check that waited for the driver is not cancelled in time and fails here.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(context.Registration.Timeout);
        var during = Task.Run(() => check.CheckHealthAsync(context, timeout.Token), Ct); // a check that blocks its caller counts as not cancelled
        var finished = await Task.WhenAny(during, Task.Delay(TimeSpan.FromSeconds(45), Ct));
        Assert.Same(during, finished);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => during);
    }

    /// <summary>Relays TCP connections to a Unix socket until <see cref="Blackhole"/>; then keeps them open and drops every byte.</summary>
    private sealed class BlackholeRelay : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly string _socketPath;
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Socket> _sockets = [];
        private readonly Task _accepting;
        private volatile bool _blackholed;

        public BlackholeRelay(string socketPath)
        {
            _socketPath = socketPath;
            _listener.Start();
            _accepting = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public void Blackhole() => _blackholed = true;

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            lock (_sockets)
            {
                foreach (var s in _sockets)
                {
                    s.Dispose();
                }
            }

            await _accepting.ContinueWith(static _ => { }, TaskScheduler.Default);
            _stop.Dispose();
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await _listener.AcceptSocketAsync(_stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                var server = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await server.ConnectAsync(new UnixDomainSocketEndPoint(_socketPath), _stop.Token);
                lock (_sockets)
                {
                    _sockets.Add(client);
                    _sockets.Add(server);
                }

                _ = PumpAsync(client, server);
                _ = PumpAsync(server, client);
            }
        }

        private async Task PumpAsync(Socket from, Socket to)
        {
            var buffer = new byte[16384];
            try
            {
                while (true)
                {
                    var n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                    if (n == 0)
                    {
                        return;
                    }

                    if (!_blackholed)
                    {
                        await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
