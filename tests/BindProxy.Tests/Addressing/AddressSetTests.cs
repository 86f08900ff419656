using System.Net;
using BindProxy.Addressing;
using BindProxy.Wireshark;

namespace BindProxy.Tests.Addressing;

public sealed class AddressSetTests
{
    [Theory]
    [InlineData("127.0.0.2", 1, "127.0.0.2", "127.0.0.2")]
    [InlineData("127.0.0.2-127.0.0.40", 39, "127.0.0.2", "127.0.0.40")]
    [InlineData("127.0.0.2-40", 39, "127.0.0.2", "127.0.0.40")]
    [InlineData("127.0.1.0/24", 254, "127.0.1.1", "127.0.1.254")]
    [InlineData("127.0.1.4/31", 2, "127.0.1.4", "127.0.1.5")]
    [InlineData("127.0.0.2, 127.0.0.9,127.0.0.20-21", 4, "127.0.0.2", "127.0.0.21")]
    [InlineData("::1", 1, "::1", "::1")]
    [InlineData("[::1]", 1, "::1", "::1")]
    [InlineData("fd00::1-fd00::4", 4, "fd00::1", "fd00::4")]
    [InlineData("fd00::/126", 4, "fd00::", "fd00::3")]
    public void Parses_every_form(string text, long count, string first, string last)
    {
        Assert.True(AddressSet.TryParse(text, out var set, out var error), error);
        Assert.Equal(count, set.Count);
        Assert.Equal(IPAddress.Parse(first), set[0]);
        Assert.Equal(IPAddress.Parse(last), set[count - 1]);
    }

    [Fact]
    public void A_slash_8_costs_no_memory_and_indexes_anywhere()
    {
        Assert.True(AddressSet.TryParse("127.0.0.0/8", out var set, out _));
        Assert.Equal((1L << 24) - 2, set.Count);
        Assert.Equal(IPAddress.Parse("127.1.0.0"), set[65535]);
        Assert.True(set.Contains(IPAddress.Parse("127.200.1.1")));
        Assert.False(set.Contains(IPAddress.Parse("128.0.0.1")));
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("127.0.0", "'127.0.0' is not an IP address")]
    [InlineData("localhost", "'localhost' is not an IP address")]
    [InlineData("127.0.0.9-127.0.0.2", "ends before it starts")]
    [InlineData("127.0.0.2-::1", "is not a range")]
    [InlineData("127.0.1.5/24", "has host bits set; the block starts at 127.0.1.0/24")]
    [InlineData("127.0.1.0/33", "prefix length 33")]
    [InlineData("127.0.0.2,::1", "mixes IPv4 and IPv6")]
    [InlineData("127.0.0.2-5,127.0.0.4", "lists '127.0.0.4' twice")]
    public void Rejects_bad_specs_with_a_reason(string text, string expected)
    {
        Assert.False(AddressSet.TryParse(text, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.2", "ip.addr==127.0.0.2")]
    [InlineData("127.0.0.2-127.0.0.4,127.0.0.9", "ip.addr in {127.0.0.2..127.0.0.4,127.0.0.9}")]
    [InlineData("::1", "ipv6.addr==::1")]
    public void Builds_a_wireshark_filter(string text, string filter)
    {
        Assert.True(AddressSet.TryParse(text, out var set, out _));
        Assert.Equal(filter, set.ToWiresharkFilter());
    }

    [Fact]
    public void Source_pool_walks_round_robin_and_wraps()
    {
        Assert.True(AddressSet.TryParse("127.0.0.2-4", out var set, out _));
        var pool = new SourcePool(set);
        Assert.Equal([0L, 1, 2, 0, 1], Enumerable.Range(0, 5).Select(_ => pool.NextIndex()));
    }
}
