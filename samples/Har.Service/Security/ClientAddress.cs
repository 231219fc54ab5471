using System.Net;
using System.Net.Sockets;

namespace Har.Service.Security;

/// <summary>
/// The anonymous client a remote address belongs to, for every limit the service keeps per anonymous client (request
/// rate, window budget, prediction concurrency, streams, connections, the refusal summary): an IPv4 address is its own
/// client; an IPv6 address is grouped with the others of its prefix (<c>Har:Service:AnonymousIPv6PrefixLength</c>,
/// /64 by default), since one customer line routinely gets a whole /64 (2^64 addresses) and per address each of them
/// was a fresh client with a fresh budget; an IPv4-mapped IPv6 address (<c>::ffff:192.0.2.1</c>, a dual-stack socket)
/// is the IPv4 address.
/// </summary>
internal static class ClientAddress
{
    /// <summary>The prefix length IPv6 clients are grouped by unless configured (a customer line's /64).</summary>
    public const int DefaultIPv6PrefixLength = 64;

    /// <summary>
    /// The client of <paramref name="address"/>: the IPv4 address (mapped ones unmapped), or the IPv6 address with every
    /// bit after <paramref name="ipv6PrefixLength"/> cleared and no scope id. An unknown address is <see cref="IPAddress.None"/>.
    /// </summary>
    public static IPAddress Group(IPAddress? address, int ipv6PrefixLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ipv6PrefixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ipv6PrefixLength, 128);
        if (address is null)
        {
            return IPAddress.None;
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        var whole = ipv6PrefixLength / 8;
        if (whole < 16)
        {
            bytes[whole] &= (byte)(0xFF << (8 - (ipv6PrefixLength % 8)));
            bytes[(whole + 1)..].Clear();
        }

        return new IPAddress(bytes);
    }

    /// <summary>How a client is named in the refusal summary: <c>192.0.2.1</c>, <c>2001:db8:1:2::/64</c>, or <c>unknown</c>.</summary>
    public static string Describe(IPAddress group, int ipv6PrefixLength) =>
        group.Equals(IPAddress.None) ? "unknown"
        : group.AddressFamily == AddressFamily.InterNetworkV6 && ipv6PrefixLength < 128 ? $"{group}/{ipv6PrefixLength}"
        : group.ToString();
}
