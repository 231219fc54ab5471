using System.Net;
using System.Net.Sockets;

namespace Har.Testing;

/// <summary>
/// Ports for the servers the tests start (the service, a fleet's replicas and proxy, Prometheus), on 127.0.0.1.
/// They are taken below the kernel's ephemeral range (Linux: <c>/proc/sys/net/ipv4/ip_local_port_range</c>, 32768 by
/// default), which the kernel hands out as the source port of every outgoing connection: a port picked there and
/// bound seconds later (a fleet's replicas start after PostgreSQL) was taken in CI by a client connection of the tests
/// running beside it, and the replica failed with "address already in use". Below that range only an explicit bind
/// can take a port, and the run is checked free before it is returned.
/// </summary>
internal static class LoopbackPorts
{
    private const int Lowest = 10_000;

    /// <summary>A port P such that P … P + <paramref name="count"/> − 1 on 127.0.0.1 are all free now, below the ephemeral range.</summary>
    public static int FreeRun(int count = 1)
    {
        var highest = EphemeralStart() - count;
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var start = Random.Shared.Next(Lowest, highest);
            var listeners = new List<TcpListener>();
            try
            {
                for (var p = start; p < start + count; p++)
                {
                    var listener = new TcpListener(IPAddress.Loopback, p);
                    listener.Start();
                    listeners.Add(listener);
                }

                return start;
            }
            catch (SocketException)
            {
                // taken: try another run
            }
            finally
            {
                foreach (var l in listeners)
                {
                    l.Stop();
                }
            }
        }

        throw new InvalidOperationException($"No run of {count} free loopback ports found below {highest + count} in 100 attempts.");
    }

    /// <summary>The first port of the ephemeral range (32768 where it cannot be read).</summary>
    private static int EphemeralStart()
    {
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            return int.TryParse(range[0], out var first) && first > Lowest + 1_000 ? first : 32_768;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or IndexOutOfRangeException)
        {
            return 32_768;
        }
    }
}
