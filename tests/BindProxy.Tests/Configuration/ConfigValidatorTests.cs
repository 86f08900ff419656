using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Tests.Infrastructure;
using BindProxy.Wireshark;
using Microsoft.Extensions.Configuration;

namespace BindProxy.Tests.Configuration;

public sealed class ConfigValidatorTests
{
    private static async Task<ValidationResult> ValidateAsync(params RouteConfig[] routes) =>
        await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(new ProxyConfig { Routes = routes }, CancellationToken.None);

    private static RouteConfig Route(string name = "kafka") => new()
    {
        Name = name,
        Listen = "127.0.0.1:19092",
        Upstream = "127.0.0.1:9092",
        Source = "127.0.0.2",
    };

    [Fact]
    public async Task A_good_route_builds_a_model()
    {
        var result = await ValidateAsync(Route() with { Source = "127.0.0.2-127.0.0.4", ConnectTimeout = "00:00:03", Protocol = "kafka" });
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var route = Assert.Single(result.Model!.Routes);
        Assert.Equal(3, route.Sources.Addresses.Count);
        Assert.Equal(TimeSpan.FromSeconds(3), route.ConnectTimeout);
        Assert.Equal(RouteProtocol.Kafka, route.Protocol);
        // Broker ports are whatever the cluster advertises: a Kafka route's filter is its sources.
        Assert.Equal("ip.addr in {127.0.0.2..127.0.0.4}", route.WiresharkFilter);
        Assert.Equal("tshark -i lo -Y 'ip.addr in {127.0.0.2..127.0.0.4}'", route.TsharkCommand);
    }

    [Theory]
    [InlineData("tcp", "ip.addr==127.0.0.2 && tcp.port==9092", "tshark -i lo -f 'host 127.0.0.2 and tcp port 9092'")]
    [InlineData("kafka", "ip.addr==127.0.0.2", "tshark -i lo -f 'host 127.0.0.2'")]
    public async Task A_route_says_how_to_see_its_upstream_traffic(string protocol, string wireshark, string tshark)
    {
        var result = await ValidateAsync(Route() with { Source = "127.0.0.2", Protocol = protocol });
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var route = Assert.Single(result.Model!.Routes);
        Assert.Equal(wireshark, route.WiresharkFilter);
        Assert.Equal(tshark, route.TsharkCommand);
    }

    [Fact]
    public async Task Every_problem_is_reported_at_once_naming_route_and_field()
    {
        var result = await ValidateAsync(
            Route("a") with { Listen = "127.0.0.1:99999", Upstream = "127.0.0.1", Source = "127.0.0.300" },
            Route("b") with { Protocol = "udp", ConnectTimeout = "soon" });

        var errors = result.Errors.Select(e => e.ToString()).ToList();
        Assert.Null(result.Model);
        Assert.Contains(errors, e => e.StartsWith("route 'a': Listen: '127.0.0.1:99999' has port 99999, out of range 0-65535", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("route 'a': Upstream: '127.0.0.1' has no port", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("route 'a': Source: '127.0.0.300' is not an IP address", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("route 'b': Protocol: 'udp' is not a protocol; expected Tcp, Kafka or Http", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("route 'b': ConnectTimeout: 'soon' is not a positive duration", StringComparison.Ordinal));
        Assert.Equal(5, errors.Count);
    }

    [Fact]
    public async Task Missing_fields_are_named()
    {
        var result = await ValidateAsync(new RouteConfig { Name = "empty" });
        Assert.Equal(
            ["route 'empty': Listen: is missing", "route 'empty': Upstream: is missing", "route 'empty': Source: is missing"],
            result.Errors.Select(e => e.ToString()[..e.ToString().IndexOf(';', StringComparison.Ordinal)]));
    }

    [Fact]
    public async Task Duplicate_listen_endpoints_are_reported_across_routes()
    {
        var result = await ValidateAsync(Route("a"), Route("b") with { Listen = "127.0.0.1-127.0.0.2:19092" });
        Assert.Equal("route 'b': Listen: 127.0.0.1:19092 is also a listen endpoint of route 'a'", Assert.Single(result.Errors).ToString());
    }

    [Fact]
    public async Task A_wildcard_listener_clashes_with_a_specific_one_on_the_same_port()
    {
        var result = await ValidateAsync(Route("a"), Route("b") with { Listen = "0.0.0.0:19092" });
        Assert.Contains("also a listen endpoint of route 'a'", Assert.Single(result.Errors).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_source_not_assigned_to_this_machine_is_reported()
    {
        var dead = TestAddresses.Unassigned(2);
        var result = await ValidateAsync(Route() with { Source = $"{dead[0]}-{dead[1]}" });
        var error = Assert.Single(result.Errors).ToString();
        Assert.StartsWith($"route 'kafka': Source: {dead[0]}, {dead[1]} are not assigned to this machine (bind failed:", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_source_family_that_cannot_reach_the_upstream_is_reported()
    {
        var result = await ValidateAsync(Route() with { Upstream = "[::1]:9092" });
        Assert.Equal("route 'kafka': Source: 127.0.0.2 is IPv4 but Upstream [::1]:9092 is IPv6; a socket bound to one family cannot reach the other",
            Assert.Single(result.Errors).ToString());
    }

    [Fact]
    public async Task Unknown_fields_are_reported_as_typos()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BindProxy:Routes:r:Listen"] = "127.0.0.1:19092",
            ["BindProxy:Routes:r:Upstream"] = "127.0.0.1:9092",
            ["BindProxy:Routes:r:Source"] = "127.0.0.2",
            ["BindProxy:Routes:r:Sauce"] = "127.0.0.3",
        }).Build();
        var result = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(ConfigReader.Read(configuration), CancellationToken.None);
        Assert.Equal("route 'r': Sauce: unknown field; did you mean Source?", Assert.Single(result.Errors).ToString());
    }

    [Fact]
    public async Task Json_arrays_read_as_lists()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BindProxy:Routes:r:Listen:0"] = "127.0.0.1:19092",
            ["BindProxy:Routes:r:Listen:1"] = "127.0.0.1:19093",
            ["BindProxy:Routes:r:Upstream"] = "127.0.0.1:9092",
            ["BindProxy:Routes:r:Source:0"] = "127.0.0.2",
            ["BindProxy:Routes:r:Source:1"] = "127.0.0.5-127.0.0.6",
        }).Build();
        var result = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(ConfigReader.Read(configuration), CancellationToken.None);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.Equal(2, result.Model!.Routes[0].Listen.Count);
        Assert.Equal(3, result.Model.Routes[0].Sources.Addresses.Count);
    }

    [Fact]
    public async Task Kafka_fields_are_checked_and_refused_on_tcp_routes()
    {
        var result = await ValidateAsync(
            Route("k") with { Protocol = "Kafka", BrokerPorts = "19100-19050", MaxFrameSize = "12", AdvertisedHost = "bad host!" },
            Route("t") with { Listen = "127.0.0.1:19093", BrokerPorts = "19093-19120" },
            Route("m") with { Listen = "127.0.0.1:19094", MaxConnections = "-1" });
        Assert.Equal(
        [
            "route 'k': BrokerPorts: '19100-19050' is not a port range such as 19093-19120",
            "route 'k': AdvertisedHost: 'bad host!' is neither a host name nor an IP address",
            "route 'k': MaxFrameSize: '12' is not a size in bytes of at least 1024 (default 104857600)",
            "route 't': BrokerPorts: applies to Kafka routes only; set \"Protocol\": \"Kafka\" or remove it",
            "route 'm': MaxConnections: '-1' is not a positive whole number",
        ], result.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public async Task Broker_ports_may_not_overlap_the_bootstrap_port()
    {
        var result = await ValidateAsync(Route() with { Protocol = "Kafka", BrokerPorts = "19090-19100" });
        Assert.Equal("route 'kafka': BrokerPorts: 19090-19100 overlaps the route's own Listen port", Assert.Single(result.Errors).ToString());
    }

    [Fact]
    public async Task Assignment_fields_are_checked()
    {
        var result = await ValidateAsync(
            Route("a") with { Assign = "sticky" },
            Route("b") with { Listen = "127.0.0.1:19095", Assign = "kafka-client-id" },
            Route("c") with
            {
                Listen = "127.0.0.1:19096", Protocol = "Kafka", Assign = "kafka-client-id", Source = "127.0.0.2-127.0.0.4",
                WhenExhausted = "panic", AssignmentIdleTimeout = "0",
                ClientIds = new Dictionary<string, string?> { ["x"] = "127.0.0.9", ["y"] = "nope", ["z"] = "127.0.0.3", ["w"] = "127.0.0.3" },
            },
            Route("d") with { Listen = "127.0.0.1:19097", ClientIds = new Dictionary<string, string?> { ["x"] = "127.0.0.2" } });
        Assert.Equal(
        [
            "route 'a': Assign: 'sticky' is not a policy; expected one of round-robin, client-address, process, kafka-client-id",
            "route 'b': Assign: kafka-client-id needs \"Protocol\": \"Kafka\"",
            "route 'c': WhenExhausted: 'panic' is not a fallback; expected share or refuse",
            "route 'c': AssignmentIdleTimeout: '0' is not a positive duration such as 00:10:00",
            "route 'c': ClientIds:x: 127.0.0.9 is not in the route's Source pool 127.0.0.2-127.0.0.4",
            "route 'c': ClientIds:y: 'nope' is not an IP address",
            "route 'c': ClientIds:w: 127.0.0.3 is already pinned to client 'z'",
            "route 'd': ClientIds: applies only with \"Assign\": \"kafka-client-id\"",
        ], result.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public async Task AllowedBrokers_is_checked_and_only_for_Kafka_routes()
    {
        var result = await ValidateAsync(
            Route("k") with { Protocol = "Kafka", AllowedBrokers = "localhost, bad host!" },
            Route("t") with { Listen = "127.0.0.1:19098", AllowedBrokers = "localhost" });
        Assert.Equal(
        [
            "route 'k': AllowedBrokers: 'bad host!' is neither a host name nor an address, range or CIDR block",
            "route 't': AllowedBrokers: applies to Kafka routes only; set \"Protocol\": \"Kafka\" or remove it",
        ], result.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public async Task No_routes_is_an_error()
    {
        var result = await ValidateAsync();
        Assert.StartsWith("BindProxy:Routes: no routes are configured", Assert.Single(result.Errors).ToString(), StringComparison.Ordinal);
    }
}
