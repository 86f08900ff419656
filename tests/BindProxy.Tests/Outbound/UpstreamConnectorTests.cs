using System.Net;
using System.Net.Sockets;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Outbound;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace BindProxy.Tests.Outbound;

public sealed class UpstreamConnectorTests
{
    // An address this machine does not have fails to bind with EADDRNOTAVAIL every time:
    // a deterministic stand-in for a source address that has run out of ports.
    private static readonly string[] Dead = TestAddresses.Unassigned(2);

    private static RouteModel Route(string upstream, string sources)
    {
        Assert.True(UpstreamSpec.TryParse(upstream, out var up, out var e1), e1);
        Assert.True(AddressSet.TryParse(sources, out var set, out var e2), e2);
        Assert.True(EndpointSpec.TryParse("127.0.0.1:0", allowPortZero: true, out var listen, out var e3), e3);
        return new RouteModel { Name = "test", Listen = listen, Upstream = up, Sources = new SourcePool(set), ConnectTimeout = TimeSpan.FromSeconds(5) };
    }

    [Fact]
    public async Task An_unusable_source_fails_over_to_the_next_address_of_the_pool()
    {
        await using var upstream = TestServer.Echo();
        var connector = new UpstreamConnector(NullLogger<UpstreamConnector>.Instance);
        var result = await connector.ConnectAsync(Route(upstream.Address, $"{Dead[0]},127.0.0.3"), CancellationToken.None);

        Assert.True(result.IsConnected, result.Detail);
        using var socket = result.Connection!;
        Assert.Equal(IPAddress.Parse("127.0.0.3"), ((IPEndPoint)socket.LocalEndPoint!).Address);
    }

    [Fact]
    public async Task When_every_source_is_exhausted_the_failure_names_them_all()
    {
        await using var upstream = TestServer.Echo();
        var connector = new UpstreamConnector(NullLogger<UpstreamConnector>.Instance);
        var result = await connector.ConnectAsync(Route(upstream.Address, $"{Dead[0]},{Dead[1]}"), CancellationToken.None);

        Assert.False(result.IsConnected);
        Assert.Equal(ConnectError.SourcesExhausted, result.Error);
        Assert.Contains($"{Dead[0]} (", result.Detail, StringComparison.Ordinal);
        Assert.Contains($"{Dead[1]} (", result.Detail, StringComparison.Ordinal);
        Assert.Empty(upstream.Accepted);
    }

    [Fact]
    public async Task Exhaustion_through_the_proxy_closes_the_client_with_a_log_line()
    {
        await using var upstream = TestServer.Echo();
        var model = new ProxyModel([Route(upstream.Address, $"{Dead[0]},{Dead[1]}")]);
        await using var proxy = await TestProxy.StartAsync(model);

        var closed = await SocketExtensions.ConnectAndWaitForCloseAsync(proxy.Endpoint(), TimeSpan.FromSeconds(5));
        Assert.Equal(SocketError.ConnectionReset, closed);
        var line = await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(5), "source addresses exhausted");
        Assert.Contains(Dead[0], line, StringComparison.Ordinal);
        Assert.Contains(Dead[1], line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_kernel_picks_the_port_at_connect_so_one_source_reaches_many_destinations()
    {
        // With IP_BIND_ADDRESS_NO_PORT, bind(127.0.0.2:0) reserves no port; the same local port
        // may then be reused towards different destinations. Check that the option is set.
        Assert.SkipUnless(OperatingSystem.IsLinux(), "IP_BIND_ADDRESS_NO_PORT is Linux-only");
        await using var upstream = TestServer.Echo();
        var connector = new UpstreamConnector(NullLogger<UpstreamConnector>.Instance);
        var result = await connector.ConnectAsync(Route(upstream.Address, "127.0.0.2"), CancellationToken.None);
        using var socket = result.Connection!;
        var value = new byte[4];
        Assert.Equal(4, socket.GetRawSocketOption(0, 24, value));
        Assert.Equal(1, BitConverter.ToInt32(value));
    }
}
