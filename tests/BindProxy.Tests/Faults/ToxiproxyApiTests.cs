using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using BindProxy.Configuration;
using BindProxy.Addressing;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Faults;

/// <summary>The fault API speaks toxiproxy's v2 HTTP API: its routes, shapes, status codes and error bodies.</summary>
public sealed class ToxiproxyApiTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Routes_are_proxies_and_toxics_are_added_changed_and_removed_with_toxiproxys_shapes()
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address);

        var (status, proxies) = await faults.SendAsync(HttpMethod.Get, "proxies");
        Assert.Equal(HttpStatusCode.OK, status);
        var test = proxies.GetProperty("test");
        Assert.Equal("test", test.GetProperty("name").GetString());
        Assert.Equal(faults.Proxy.Endpoint().ToString(), test.GetProperty("listen").GetString());
        Assert.Equal(upstream.Address, test.GetProperty("upstream").GetString());
        Assert.True(test.GetProperty("enabled").GetBoolean());
        Assert.Equal(0, test.GetProperty("toxics").GetArrayLength());

        (status, var toxic) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics", """{"type":"latency","attributes":{"latency":100}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("latency_downstream", toxic.GetProperty("name").GetString());
        Assert.Equal("downstream", toxic.GetProperty("stream").GetString());
        Assert.Equal(1.0, toxic.GetProperty("toxicity").GetDouble());
        Assert.Equal(100, toxic.GetProperty("attributes").GetProperty("latency").GetInt64());
        Assert.Equal(0, toxic.GetProperty("attributes").GetProperty("jitter").GetInt64());

        (status, var conflict) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics", """{"type":"latency"}""");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Equal("toxic already exists", conflict.GetProperty("error").GetString());
        Assert.Equal(409, conflict.GetProperty("status").GetInt32());

        // toxiproxy's Go client updates with PATCH, its Node client with POST: both merge attributes.
        (status, toxic) = await faults.SendAsync(HttpMethod.Patch, "proxies/test/toxics/latency_downstream", """{"attributes":{"jitter":5}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(100, toxic.GetProperty("attributes").GetProperty("latency").GetInt64());
        Assert.Equal(5, toxic.GetProperty("attributes").GetProperty("jitter").GetInt64());
        (status, toxic) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics/latency_downstream", """{"toxicity":0.5}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(0.5, toxic.GetProperty("toxicity").GetDouble());

        (status, var list) = await faults.SendAsync(HttpMethod.Get, "proxies/test/toxics");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("latency_downstream", Assert.Single(list.EnumerateArray()).GetProperty("name").GetString());
        await faults.Proxy.Logs.WaitForAsync(Prompt, "toxic latency_downstream changed", "jitter=5");

        (status, _) = await faults.SendAsync(HttpMethod.Delete, "proxies/test/toxics/latency_downstream");
        Assert.Equal(HttpStatusCode.NoContent, status);
        (status, var missing) = await faults.SendAsync(HttpMethod.Get, "proxies/test/toxics/latency_downstream");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("toxic not found", missing.GetProperty("error").GetString());
        await faults.Proxy.Logs.WaitForAsync(Prompt, "toxic latency_downstream removed");
    }

    [Theory]
    [InlineData("{not json", "bad request body")]
    [InlineData("""{"type":"earthquake"}""", "invalid toxic type")]
    [InlineData("""{"type":"latency","stream":"sideways"}""", "stream was invalid")]
    [InlineData("""{"type":"latency","toxicity":2}""", "toxicity must be")]
    [InlineData("""{"type":"latency","attributes":{"latency":-1}}""", "whole number")]
    [InlineData("""{"type":"latency","attributes":{"delay":1}}""", "has no attribute 'delay'")]
    public async Task Bad_toxics_get_toxiproxys_400_with_a_message(string body, string message)
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address);

        var (status, error) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics", body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(400, error.GetProperty("status").GetInt32());
        Assert.Contains(message, error.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, error) = await faults.SendAsync(HttpMethod.Get, "proxies/nosuch");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("proxy not found", error.GetProperty("error").GetString());
        Assert.Equal(404, error.GetProperty("status").GetInt32());
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Disabling_a_proxy_stops_its_listener_and_resets_its_connections_and_enabling_restores_them(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        var listen = faults.Proxy.Endpoint();

        using var open = await SocketExtensions.ConnectAsync(listen);
        await open.SendAsync("a"u8.ToArray());
        await open.ReadExactlyAsync(1);

        var (status, proxy) = await faults.SendAsync(HttpMethod.Post, "proxies/test", """{"enabled":false}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(proxy.GetProperty("enabled").GetBoolean());
        Assert.Equal(SocketError.ConnectionReset, await open.WaitForCloseAsync(Prompt));
        var refused = await Assert.ThrowsAsync<SocketException>(() => SocketExtensions.ConnectAsync(listen));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "route test disabled", "1 connection(s) reset");

        (status, proxy) = await faults.SendAsync(HttpMethod.Patch, "proxies/test", """{"enabled":true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(proxy.GetProperty("enabled").GetBoolean());
        Assert.Equal(listen.ToString(), proxy.GetProperty("listen").GetString());
        using var again = await SocketExtensions.ConnectAsync(listen);
        await again.SendAsync("b"u8.ToArray());
        Assert.Equal("b"u8.ToArray(), await again.ReadExactlyAsync(1));
    }

    [Fact]
    public async Task A_proxy_created_at_run_time_forwards_is_marked_in_api_routes_and_goes_when_deleted()
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, admin: true);

        var body = JsonSerializer.Serialize(new { name = "made", listen = "127.0.0.1:0", upstream = upstream.Address, enabled = true });
        var (status, proxy) = await faults.SendAsync(HttpMethod.Post, "proxies", body);
        Assert.Equal(HttpStatusCode.Created, status);
        var listen = IPEndPoint.Parse(proxy.GetProperty("listen").GetString()!);
        Assert.NotEqual(0, listen.Port);

        using (var client = await SocketExtensions.ConnectAsync(listen))
        {
            await client.SendAsync("made"u8.ToArray());
            Assert.Equal("made"u8.ToArray(), await client.ReadExactlyAsync(4));
        }

        (status, _) = await faults.SendAsync(HttpMethod.Post, "proxies", body);
        Assert.Equal(HttpStatusCode.Conflict, status);

        var admin = faults.Proxy.Services.GetService(typeof(BindProxy.Admin.AdminEndpoint)) as BindProxy.Admin.AdminEndpoint;
        using var http = new HttpClient { BaseAddress = new Uri($"http://{admin!.BoundEndPoint}/") };
        var routes = JsonDocument.Parse(await http.GetStringAsync("api/routes")).RootElement;
        var made = routes.EnumerateArray().Single(r => r.GetProperty("name").GetString() == "made");
        Assert.True(made.GetProperty("runtime").GetBoolean());
        Assert.False(routes.EnumerateArray().Single(r => r.GetProperty("name").GetString() == "test").GetProperty("runtime").GetBoolean());

        // A route of the configuration file is not the API's to delete.
        (status, var error) = await faults.SendAsync(HttpMethod.Delete, "proxies/test");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("configuration file", error.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, _) = await faults.SendAsync(HttpMethod.Delete, "proxies/made");
        Assert.Equal(HttpStatusCode.NoContent, status);
        (status, _) = await faults.SendAsync(HttpMethod.Get, "proxies/made");
        Assert.Equal(HttpStatusCode.NotFound, status);
        var refused = await Assert.ThrowsAsync<SocketException>(() => SocketExtensions.ConnectAsync(listen));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task Populate_creates_proxies_and_reset_enables_all_and_removes_every_toxic()
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address);

        var body = JsonSerializer.Serialize(new object[]
        {
            new { name = "one", listen = "127.0.0.1:0", upstream = upstream.Address },
            new { name = "test", listen = "127.0.0.1:0", upstream = upstream.Address, enabled = false },
        });
        var (status, populated) = await faults.SendAsync(HttpMethod.Post, "populate", body);
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal(["one", "test"], populated.GetProperty("proxies").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        await faults.AddToxicAsync("""{"type":"timeout","attributes":{"timeout":0}}""", "one");

        (status, _) = await faults.SendAsync(HttpMethod.Post, "reset");
        Assert.Equal(HttpStatusCode.NoContent, status);
        (_, var proxies) = await faults.SendAsync(HttpMethod.Get, "proxies");
        Assert.True(proxies.GetProperty("test").GetProperty("enabled").GetBoolean());
        Assert.Equal(0, proxies.GetProperty("one").GetProperty("toxics").GetArrayLength());

        (status, var version) = await faults.SendAsync(HttpMethod.Get, "version");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(string.IsNullOrEmpty(version.GetProperty("version").GetString()));
    }

    [Fact]
    public async Task The_fault_api_is_off_unless_configured_and_loopback_unless_opted_in()
    {
        var validator = new ConfigValidator(new SourceAddressProbe());
        RouteConfig[] routes = [new RouteConfig { Name = "r", Listen = "127.0.0.1:0", Upstream = "127.0.0.1:9", Source = "127.0.0.2" }];
        Assert.Null((await validator.ValidateAsync(new ProxyConfig { Routes = routes }, CancellationToken.None)).Model!.Faults);

        var exposed = await validator.ValidateAsync(new ProxyConfig { Routes = routes, Faults = new FaultsConfig { Listen = "0.0.0.0:8474" } }, CancellationToken.None);
        Assert.False(exposed.IsValid);
        var error = Assert.Single(exposed.Errors);
        Assert.Equal("Faults:Listen", error.Field);
        Assert.Contains("not a loopback address", error.Message, StringComparison.Ordinal);

        var optedIn = await validator.ValidateAsync(new ProxyConfig { Routes = routes, Faults = new FaultsConfig { Listen = "0.0.0.0:8474", AllowNonLoopback = "true" } }, CancellationToken.None);
        Assert.True(optedIn.IsValid);
        Assert.Contains(optedIn.Warnings, w => w.Contains("Faults:Listen", StringComparison.Ordinal));
    }
}
