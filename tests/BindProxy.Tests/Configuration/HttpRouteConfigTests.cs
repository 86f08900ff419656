using BindProxy.Addressing;
using BindProxy.Configuration;
using Microsoft.Extensions.Configuration;

namespace BindProxy.Tests.Configuration;

/// <summary>Validation of the fields Http routes add.</summary>
public sealed class HttpRouteConfigTests
{
    private static async Task<ValidationResult> ValidateAsync(params RouteConfig[] routes) =>
        await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(new ProxyConfig { Routes = routes }, CancellationToken.None);

    private static RouteConfig Route(string name = "registry", string protocol = "Http") => new()
    {
        Name = name,
        Listen = "127.0.0.1:18081",
        Upstream = "127.0.0.1:8081",
        Source = "127.0.0.2",
        Protocol = protocol,
    };

    [Fact]
    public async Task An_Http_route_gets_defaults_X_Forwarded_on_and_a_100_s_request_timeout()
    {
        var result = await ValidateAsync(Route() with { Protocol = "http" });
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var route = Assert.Single(result.Model!.Routes);
        Assert.Equal(RouteProtocol.Http, route.Protocol);
        Assert.Equal(new HttpRouteSettings { XForwarded = true, RequestTimeout = TimeSpan.FromSeconds(100) }, route.Http);
        Assert.Null(route.Kafka);
    }

    [Fact]
    public async Task Http_fields_are_read_from_the_file_and_applied()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BindProxy:Routes:registry:Listen"] = "127.0.0.1:18081",
            ["BindProxy:Routes:registry:Upstream"] = "localhost:8081",
            ["BindProxy:Routes:registry:Source"] = "127.0.0.2",
            ["BindProxy:Routes:registry:Protocol"] = "Http",
            ["BindProxy:Routes:registry:XForwarded"] = "false",
            ["BindProxy:Routes:registry:RequestTimeout"] = "00:00:30",
        }).Build();

        var result = await ValidateAsync([.. ConfigReader.Read(configuration).Routes]);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.Equal(new HttpRouteSettings { XForwarded = false, RequestTimeout = TimeSpan.FromSeconds(30) }, Assert.Single(result.Model!.Routes).Http);
    }

    [Fact]
    public async Task Bad_Http_fields_are_all_reported()
    {
        var result = await ValidateAsync(Route() with { XForwarded = "yes", RequestTimeout = "forever" }, Route("zero") with { Listen = "127.0.0.1:18082", RequestTimeout = "00:00:00" });
        Assert.Equal(
            [
                "route 'registry': XForwarded: 'yes' is neither true nor false",
                "route 'registry': RequestTimeout: 'forever' is not a positive duration such as 00:01:40",
                "route 'zero': RequestTimeout: '00:00:00' is not a positive duration such as 00:01:40",
            ],
            result.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public async Task Http_fields_on_other_routes_are_errors_and_Kafka_fields_on_Http_routes_too()
    {
        var result = await ValidateAsync(
            Route("tcp", "Tcp") with { XForwarded = "true", RequestTimeout = "00:00:05" },
            Route("http") with { Listen = "127.0.0.1:18082", BrokerPorts = "19093-19095" });
        Assert.Equal(
            [
                "route 'tcp': XForwarded: applies to Http routes only; set \"Protocol\": \"Http\" or remove it",
                "route 'tcp': RequestTimeout: applies to Http routes only; set \"Protocol\": \"Http\" or remove it",
                "route 'http': BrokerPorts: applies to Kafka routes only; set \"Protocol\": \"Kafka\" or remove it",
            ],
            result.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public async Task An_unknown_protocol_lists_Http_among_the_choices()
    {
        var result = await ValidateAsync(Route() with { Protocol = "https" });
        Assert.Equal("route 'registry': Protocol: 'https' is not a protocol; expected Tcp, Kafka or Http", Assert.Single(result.Errors).ToString());
    }
}
