using BindProxy.Addressing;
using BindProxy.Configuration;

namespace BindProxy.Tests.Configuration;

/// <summary>A route whose upstream is one of the proxy's own listeners is refused before anything listens.</summary>
public sealed class SelfLoopConfigTests
{
    private static async Task<IReadOnlyList<string>> ErrorsAsync(AdminConfig? admin, params RouteConfig[] routes)
    {
        var result = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(new ProxyConfig { Routes = routes, Admin = admin }, CancellationToken.None);
        return [.. result.Errors.Select(e => e.ToString())];
    }

    private static RouteConfig Route(string name, string listen, string upstream, string? protocol = null, string? brokerPorts = null) =>
        new() { Name = name, Listen = listen, Upstream = upstream, Source = "127.0.0.2", Protocol = protocol, BrokerPorts = brokerPorts };

    private const string Loop = "of this proxy: every connection would come back into the proxy and connect again, without end";

    [Fact]
    public async Task An_upstream_that_is_the_route_s_own_listen_endpoint_is_refused() =>
        Assert.Equal([$"route 'a': Upstream: 127.0.0.1:19092 is a listen endpoint of route 'a' {Loop}"],
            await ErrorsAsync(null, Route("a", "127.0.0.1:19092", "127.0.0.1:19092")));

    [Fact]
    public async Task A_host_name_is_checked_as_it_resolves() =>
        Assert.Equal([$"route 'a': Upstream: 'localhost' resolves to 127.0.0.1:19092, which is a listen endpoint of route 'a' {Loop}"],
            await ErrorsAsync(null, Route("a", "127.0.0.1:19092", "localhost:19092")));

    [Fact]
    public async Task Another_route_s_listener_a_wildcard_listener_broker_ports_and_the_admin_endpoint_count_too()
    {
        var errors = await ErrorsAsync(new AdminConfig { Listen = "127.0.0.1:9901" },
            Route("a", "127.0.0.1:19092", "127.0.0.1:19093"),
            Route("b", "0.0.0.0:19093", "127.0.0.1:9092"),
            Route("k", "127.0.0.1:19100", "127.0.0.1:19105", protocol: "Kafka", brokerPorts: "19101-19110"),
            Route("c", "127.0.0.1:19111", "127.0.0.1:9901"));
        Assert.Equal(
        [
            $"route 'a': Upstream: 127.0.0.1:19093 is a listen endpoint of route 'b' {Loop}",
            $"route 'k': Upstream: 127.0.0.1:19105 is a broker port of route 'k' (BrokerPorts 19101-19110) {Loop}",
            "route 'c': Upstream: 127.0.0.1:9901 is the admin endpoint of this proxy: the route would hand its clients to the proxy's own status page",
        ], errors);
    }

    [Fact]
    public async Task The_same_port_on_another_address_is_no_loop()
    {
        Assert.Empty(await ErrorsAsync(new AdminConfig { Listen = "127.0.0.1:9901" },
            Route("a", "127.0.0.1:9093", "127.0.0.5:9093"),
            Route("b", "127.0.0.1:19092", "localhost:9092", protocol: "Kafka")));
    }

    [Fact]
    public void A_wildcard_listener_takes_connections_to_this_machine_only()
    {
        var any = System.Net.IPAddress.Any;
        Assert.True(OwnListeners.Covers(any, System.Net.IPAddress.Parse("127.0.0.9"), _ => false));
        Assert.True(OwnListeners.Covers(any, System.Net.IPAddress.Parse("10.1.2.3"), _ => true));
        Assert.False(OwnListeners.Covers(any, System.Net.IPAddress.Parse("10.1.2.3"), _ => false));
        Assert.False(OwnListeners.Covers(System.Net.IPAddress.IPv6Any, System.Net.IPAddress.Loopback, _ => true));
        Assert.True(OwnListeners.Covers(System.Net.IPAddress.Loopback, any, _ => false));
    }
}
