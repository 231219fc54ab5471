using System.Net;
using Har.Service.Security;

namespace Har.Service.Tests.Security;

/// <summary>
/// The anonymous client an address belongs to. Per address, an IPv6 /64 (one customer line) was 2^64 anonymous clients,
/// each with a fresh budget, stream quota and connection share, and an entry of its own in each table. Loopback has one
/// IPv6 address (::1), so the grouping is tested here and the service's use of it with 127.x addresses over HTTP
/// (<see cref="TrackedClientTests"/>).
/// </summary>
public sealed class ClientAddressTests
{
    [Theory]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::")]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2:8000::", "2001:db8:1:2::")]
    [InlineData("2001:db8:ffff:ffff:abcd:ef01:2345:6789", "2001:db8:ffff:ffff::", "2001:db8:ffff:ffff::")]
    public void Group_AddressesInOneSlash64_AreOneClient(string a, string b, string prefix)
    {
        var first = ClientAddress.Group(IPAddress.Parse(a), 64);
        var second = ClientAddress.Group(IPAddress.Parse(b), 64);
        Assert.Equal(IPAddress.Parse(prefix), first);
        Assert.Equal(first, second);
        Assert.Equal(first.GetHashCode(), second.GetHashCode()); // one partition key in the rate limiters' dictionaries
    }

    [Theory]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:3::1")]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:8002::1")]
    [InlineData("2001:db8:1:2::1", "2001:db9:1:2::1")]
    public void Group_DifferentSlash64s_AreDifferentClients(string a, string b) =>
        Assert.NotEqual(ClientAddress.Group(IPAddress.Parse(a), 64), ClientAddress.Group(IPAddress.Parse(b), 64));

    [Fact]
    public void Group_IPv4MappedIPv6_IsTheIPv4Address()
    {
        var mapped = ClientAddress.Group(IPAddress.Parse("::ffff:192.0.2.7"), 64);
        Assert.Equal(IPAddress.Parse("192.0.2.7"), mapped);
        Assert.Equal(ClientAddress.Group(IPAddress.Parse("192.0.2.7"), 64), mapped);

        // Per address: another IPv4 address (also mapped, which a /64 would have merged) is another client.
        Assert.NotEqual(mapped, ClientAddress.Group(IPAddress.Parse("::ffff:192.0.2.8"), 64));
        Assert.NotEqual(ClientAddress.Group(IPAddress.Parse("192.0.2.7"), 64), ClientAddress.Group(IPAddress.Parse("192.0.2.8"), 64));
    }

    [Fact]
    public void Group_PrefixOption_IsHonoured()
    {
        var a = IPAddress.Parse("2001:db8:1:200::1");
        var b = IPAddress.Parse("2001:db8:1:2ff::1");

        // A /56 holds both /64s; a /64 or /128 keeps them apart, and /128 keeps every address apart.
        Assert.Equal(ClientAddress.Group(a, 56), ClientAddress.Group(b, 56));
        Assert.Equal(IPAddress.Parse("2001:db8:1:200::"), ClientAddress.Group(b, 56));
        Assert.NotEqual(ClientAddress.Group(a, 64), ClientAddress.Group(b, 64));
        Assert.Equal(a, ClientAddress.Group(a, 128));
        Assert.NotEqual(ClientAddress.Group(a, 128), ClientAddress.Group(IPAddress.Parse("2001:db8:1:200::2"), 128));

        // A prefix that is not a whole number of bytes: /60 keeps 2001:db8:1:20 and clears the last nibble.
        Assert.Equal(IPAddress.Parse("2001:db8:1:200::"), ClientAddress.Group(IPAddress.Parse("2001:db8:1:20f::1"), 60));
        Assert.NotEqual(ClientAddress.Group(a, 60), ClientAddress.Group(IPAddress.Parse("2001:db8:1:210::1"), 60));
    }

    [Fact]
    public void Group_LinkLocalScopes_AreIgnored_AndNamedByPrefix()
    {
        var a = IPAddress.Parse("fe80::1%2");
        var b = IPAddress.Parse("fe80::2%3");
        Assert.Equal(ClientAddress.Group(a, 64), ClientAddress.Group(b, 64));
        Assert.Equal("fe80::/64", ClientAddress.Describe(ClientAddress.Group(a, 64), 64));
        Assert.Equal("192.0.2.7", ClientAddress.Describe(ClientAddress.Group(IPAddress.Parse("::ffff:192.0.2.7"), 64), 64));
        Assert.Equal("unknown", ClientAddress.Describe(ClientAddress.Group(null, 64), 64));
    }
}
