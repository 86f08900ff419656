using System.Net;
using BindProxy.Addressing;
using BindProxy.Configuration;
using Microsoft.Extensions.Configuration;

namespace BindProxy.Tests.Admin;

/// <summary>The <c>Admin</c> section: read, validated with every problem reported at once, overridden by <c>--admin</c>.</summary>
public sealed class AdminConfigTests
{
    private static readonly RouteConfig Route = new() { Name = "kafka", Listen = "127.0.0.1:19092", Upstream = "127.0.0.1:9092", Source = "127.0.0.2" };

    private static async Task<ValidationResult> ValidateAsync(AdminConfig? admin, params RouteConfig[] routes) =>
        await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(
            new ProxyConfig { Routes = routes.Length == 0 ? [Route] : routes, Admin = admin }, CancellationToken.None);

    [Fact]
    public async Task A_loopback_endpoint_builds_an_admin_model()
    {
        var result = await ValidateAsync(new AdminConfig { Listen = "127.0.0.1:9901" });
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9901), result.Model!.Admin!.Listen);
        Assert.False(result.Model.Admin.AllowNonLoopback);
        Assert.Empty(result.Warnings);

        var v6 = await ValidateAsync(new AdminConfig { Listen = "[::1]:9901" });
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 9901), v6.Model!.Admin!.Listen);
    }

    [Fact]
    public async Task No_section_or_off_means_no_admin_endpoint()
    {
        Assert.Null((await ValidateAsync(null)).Model!.Admin);
        Assert.Null((await ValidateAsync(new AdminConfig { Listen = "off" })).Model!.Admin);
    }

    [Theory]
    [InlineData("0.0.0.0:9901")]
    [InlineData("192.0.2.1:9901")]
    [InlineData("[::]:9901")]
    public async Task A_non_loopback_endpoint_is_refused_without_AllowNonLoopback(string listen)
    {
        var result = await ValidateAsync(new AdminConfig { Listen = listen });

        Assert.Null(result.Model);
        var error = Assert.Single(result.Errors);
        Assert.Equal("", error.Route);
        Assert.Equal("Admin:Listen", error.Field);
        Assert.StartsWith($"Admin:Listen: {IPEndPoint.Parse(listen)} is not a loopback address", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("Admin:AllowNonLoopback", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AllowNonLoopback_lets_it_listen_anywhere_with_a_warning()
    {
        var result = await ValidateAsync(new AdminConfig { Listen = "0.0.0.0:9901", AllowNonLoopback = "true" });

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.True(result.Model!.Admin!.AllowNonLoopback);
        Assert.False(result.Model.Admin.IsLoopback);
        Assert.Contains(result.Warnings, w => w.Contains("0.0.0.0:9901 is reachable from other machines", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Every_admin_problem_is_reported_together_with_route_problems()
    {
        var result = await ValidateAsync(
            new AdminConfig { Listen = "localhost", AllowNonLoopback = "maybe", UnknownFields = ["Port"] },
            Route with { Listen = "127.0.0.1:99999" });

        Assert.Equal(
        [
            "route 'kafka': Listen: '127.0.0.1:99999' has port 99999, out of range 0-65535",
            "Admin:Port: unknown field; known fields are Listen, AllowNonLoopback",
            "Admin:AllowNonLoopback: 'maybe' is not true or false",
            "Admin:Listen: 'localhost' has no port; expected ADDR:PORT (IPv6 in brackets: [::1]:9092)",
        ], result.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public async Task Missing_listen_and_several_endpoints_are_errors()
    {
        var missing = await ValidateAsync(new AdminConfig { AllowNonLoopback = "false" });
        Assert.StartsWith("Admin:Listen: is missing", Assert.Single(missing.Errors).ToString(), StringComparison.Ordinal);

        var range = await ValidateAsync(new AdminConfig { Listen = "127.0.0.1-127.0.0.2:9901" });
        Assert.StartsWith("Admin:Listen: '127.0.0.1-127.0.0.2:9901' is 2 endpoints", Assert.Single(range.Errors).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_admin_endpoint_may_not_take_a_route_listen_endpoint()
    {
        var result = await ValidateAsync(new AdminConfig { Listen = "127.0.0.1:19092" });
        Assert.Equal("Admin:Listen: 127.0.0.1:19092 is also a listen endpoint of route 'kafka'", Assert.Single(result.Errors).ToString());
    }

    [Fact]
    public void The_section_is_read_from_the_file_and_the_option_replaces_its_address()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BindProxy:Routes:kafka:Listen"] = "127.0.0.1:19092",
            ["Admin:Listen"] = "127.0.0.1:9901",
            ["Admin:AllowNonLoopback"] = "false",
            ["Admin:Prot"] = "9901",
        }).Build();

        var fromFile = ConfigLoader.Read(configuration, new QuickRoute(null, null, null, null, null));
        Assert.Equal("127.0.0.1:9901", fromFile.Admin!.Listen);
        Assert.Equal("false", fromFile.Admin.AllowNonLoopback);
        Assert.Equal(["Prot"], fromFile.Admin.UnknownFields);

        var overridden = ConfigLoader.Read(configuration, new QuickRoute(null, null, null, null, null), admin: "127.0.0.1:9911");
        Assert.Equal("127.0.0.1:9911", overridden.Admin!.Listen);
        Assert.Equal("false", overridden.Admin.AllowNonLoopback);

        var quick = ConfigLoader.Read(configuration, new QuickRoute("127.0.0.1:0", "127.0.0.1:9", "127.0.0.2", null, null));
        Assert.Equal("127.0.0.1:9901", quick.Admin!.Listen);

        var none = ConfigLoader.Read(new ConfigurationBuilder().Build(), new QuickRoute("127.0.0.1:0", "127.0.0.1:9", "127.0.0.2", null, null));
        Assert.Null(none.Admin);
    }
}
