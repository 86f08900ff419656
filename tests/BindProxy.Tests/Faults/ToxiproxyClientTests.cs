using System.Diagnostics;
using System.Net;
using System.Text.Json;
using BindProxy.Tests.Configuration;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Faults;

/// <summary>toxiproxy's own clients work against the fault API unchanged: its Node client, run as is, and the requests its Go client sends.</summary>
public sealed class ToxiproxyClientTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Toxiproxys_node_client_creates_lists_disables_enables_adds_updates_and_removes_toxics_populates_and_resets()
    {
        var node = ExternalTool.Require("node");
        var dir = Path.Combine(ShippedConfigTests.RepositoryRoot(), "tests", "toxiproxy-node");
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "toxiproxy-node-client")))
        {
            ExternalTool.Unavailable($"toxiproxy-node-client is not installed: run npm ci in {dir} (.ci/run does)");
        }

        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address);

        var start = new ProcessStartInfo(node, [Path.Combine(dir, "compat.js"), $"http://{faults.Api}", upstream.Address])
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        output.WriteLine(await stdout);
        Assert.True(process.ExitCode == 0, $"node exited {process.ExitCode}:\n{await stdout}\n{await stderr}");
        Assert.EndsWith("ok\n", await stdout, StringComparison.Ordinal);
        foreach (var type in new[] { "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data" })
        {
            Assert.Contains($"toxic {type}: added", await stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_request_shapes_of_toxiproxys_go_client_work()
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address);

        // client.CreateProxy: POST /proxies with the whole proxy.
        var (status, proxy) = await faults.SendAsync(HttpMethod.Post, "proxies",
            JsonSerializer.Serialize(new { name = "go", listen = "127.0.0.1:0", upstream = upstream.Address, enabled = true }));
        Assert.Equal(HttpStatusCode.Created, status);
        var listen = proxy.GetProperty("listen").GetString();

        // proxy.Save / Disable: the whole proxy again, toxics included, by POST (older clients) or PATCH.
        var saved = JsonSerializer.Serialize(new { name = "go", listen, upstream = upstream.Address, enabled = false, toxics = Array.Empty<object>() });
        (status, proxy) = await faults.SendAsync(HttpMethod.Post, "proxies/go", saved);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(proxy.GetProperty("enabled").GetBoolean());
        (status, proxy) = await faults.SendAsync(HttpMethod.Patch, "proxies/go", saved.Replace("\"enabled\":false", "\"enabled\":true", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(proxy.GetProperty("enabled").GetBoolean());

        // proxy.AddToxic: POST with name, type, stream, toxicity and attributes.
        (status, var toxic) = await faults.SendAsync(HttpMethod.Post, "proxies/go/toxics",
            """{"name":"lat","type":"latency","stream":"upstream","toxicity":1,"attributes":{"latency":10,"jitter":1}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("upstream", toxic.GetProperty("stream").GetString());

        // proxy.UpdateToxic: PATCH with toxicity and attributes.
        (status, toxic) = await faults.SendAsync(HttpMethod.Patch, "proxies/go/toxics/lat", """{"toxicity":0.25,"attributes":{"latency":20}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(20, toxic.GetProperty("attributes").GetProperty("latency").GetInt64());
        Assert.Equal(1, toxic.GetProperty("attributes").GetProperty("jitter").GetInt64());

        // proxy.Toxics, client.Proxies, proxy.RemoveToxic, client.ResetState, proxy.Delete.
        (status, var toxics) = await faults.SendAsync(HttpMethod.Get, "proxies/go/toxics");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, toxics.GetArrayLength());
        (status, var proxies) = await faults.SendAsync(HttpMethod.Get, "proxies");
        Assert.Equal(1, proxies.GetProperty("go").GetProperty("toxics").GetArrayLength());
        Assert.Equal(HttpStatusCode.NoContent, (await faults.SendAsync(HttpMethod.Delete, "proxies/go/toxics/lat")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await faults.SendAsync(HttpMethod.Post, "reset", "")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await faults.SendAsync(HttpMethod.Delete, "proxies/go")).Status);
    }
}
