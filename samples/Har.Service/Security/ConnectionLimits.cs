using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Prometheus;

namespace Har.Service.Security;

/// <summary>
/// Open connections: at most <see cref="Capacity"/> in all and <see cref="PerAddress"/> from one remote address. A
/// connection beyond either is closed as soon as it is accepted, before any request is read (as Kestrel's own
/// <c>MaxConcurrentConnections</c> does: no HTTP is spoken yet, so there is no status to send), and counted in
/// <c>har_service_connections_refused_total{reason}</c>.
/// <para>
/// Without them one client on one address that opened connections and sent nothing held each for Kestrel's keep-alive
/// timeout (130 s): 20,100 idle connections exhausted the process's open-file limit (20,000 on the probe's machine), so
/// <c>/health</c> timed out, the audit checkpoint could not be signed ("Too many open files"), the rollout controller's
/// loop faulted and the runtime stopped the process ("Out of memory."). The capacity is therefore also kept below the
/// open-file limit, leaving <see cref="Reserved"/> of it for the service's own files (models, audit log, registry,
/// backups, drift state; an idle service holds about 300 descriptors).
/// </para>
/// </summary>
internal sealed class ConnectionLimits
{
    /// <summary>Open files kept for the service itself when the capacity is derived from the open-file limit.</summary>
    public const int ReservedFileDescriptors = 1024;

    /// <summary>The open files kept for the service under <paramref name="openFileLimit"/>: 1,024, or half the limit when it is below 2,048.</summary>
    public static long Reserved(long openFileLimit) => Math.Min(ReservedFileDescriptors, openFileLimit / 2);

    private static readonly Counter Refused = Metrics.CreateCounter(
        "har_service_connections_refused_total",
        "Connections closed as soon as they were accepted: capacity (Har:Service:MaxConnections, or the open-file limit, was reached) or address (the remote address held Har:Service:MaxConnectionsPerAddress).",
        new CounterConfiguration { LabelNames = ["reason"] });

    private static readonly Gauge Open = Metrics.CreateGauge("har_service_connections", "Connections open now (admitted by the connection limits).");

    private static readonly Gauge CapacityGauge = Metrics.CreateGauge(
        "har_service_connection_capacity",
        "Connections the service admits at once: Har:Service:MaxConnections, lowered to the process's open-file limit less the files the service keeps for itself.");

    private readonly Lock _gate = new();
    private readonly Dictionary<IPAddress, int> _perAddress = [];
    private readonly Counter.Child _refusedCapacity = Refused.WithLabels("capacity");
    private readonly Counter.Child _refusedAddress = Refused.WithLabels("address");
    private readonly int _ipv6PrefixLength;
    private int _open;

    public ConnectionLimits(int maxConnections, int perAddress, long? openFileLimit, int ipv6PrefixLength = ClientAddress.DefaultIPv6PrefixLength)
    {
        _ipv6PrefixLength = ipv6PrefixLength;
        Capacity = openFileLimit is { } limit && limit - Reserved(limit) < maxConnections
            ? (int)Math.Max(1, limit - Reserved(limit))
            : maxConnections;
        PerAddress = perAddress;
        OpenFileLimit = openFileLimit;
        CapacityGauge.Set(Capacity);
        Open.Set(0);
        _refusedCapacity.Inc(0);
        _refusedAddress.Inc(0);
    }

    /// <summary>Gets the connections admitted at once.</summary>
    public int Capacity { get; }

    /// <summary>Gets the connections one remote address (IPv4) or IPv6 prefix (<see cref="ClientAddress"/>) may hold (0: no limit).</summary>
    public int PerAddress { get; }

    /// <summary>Gets the process's open-file limit, when it is known (Linux).</summary>
    public long? OpenFileLimit { get; }

    /// <summary>The connection middleware: admits the connection or closes it at once.</summary>
    public ConnectionDelegate Middleware(ConnectionDelegate next) => async connection =>
    {
        // Per anonymous client: an IPv4 address or an IPv6 /64 (ClientAddress); one entry per client with an open
        // connection, so the table holds at most Capacity entries whatever the number of addresses.
        var address = connection.RemoteEndPoint is IPEndPoint { Address: var remote } ? ClientAddress.Group(remote, _ipv6PrefixLength) : null;
        if (!TryAdmit(address))
        {
            // Closing without reading: the client sees the connection end before any response.
            connection.Abort(new ConnectionAbortedException("Connection limit reached."));
            return;
        }

        try
        {
            await next(connection);
        }
        finally
        {
            Release(address);
        }
    };

    private bool TryAdmit(IPAddress? address)
    {
        lock (_gate)
        {
            if (_open >= Capacity)
            {
                _refusedCapacity.Inc();
                return false;
            }

            if (address is not null && PerAddress > 0)
            {
                _perAddress.TryGetValue(address, out var held);
                if (held >= PerAddress)
                {
                    _refusedAddress.Inc();
                    return false;
                }

                _perAddress[address] = held + 1;
            }

            Open.Set(++_open);
            return true;
        }
    }

    private void Release(IPAddress? address)
    {
        lock (_gate)
        {
            Open.Set(--_open);
            if (address is not null && PerAddress > 0 && _perAddress.TryGetValue(address, out var held))
            {
                if (held <= 1)
                {
                    _perAddress.Remove(address);
                }
                else
                {
                    _perAddress[address] = held - 1;
                }
            }
        }
    }

    /// <summary>The soft open-file limit of this process (<c>/proc/self/limits</c>), or null when it is unknown or unlimited.</summary>
    public static long? ReadOpenFileLimit()
    {
        try
        {
            if (!OperatingSystem.IsLinux() || !File.Exists("/proc/self/limits"))
            {
                return null;
            }

            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (line.StartsWith("Max open files", StringComparison.Ordinal))
                {
                    var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return fields.Length > 0 && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var soft) ? soft : null;
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }
}
