using System.Net;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Forwarding;

/// <summary>
/// The point of the proxy, checked on the wire: in a capture on <c>lo</c>, the display filter
/// the proxy prints for a route shows that route's upstream traffic and nothing else.
/// </summary>
public sealed class WiresharkIsolationTests
{
    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task The_printed_filter_isolates_the_routes_traffic_in_a_real_capture(string engine)
    {
        // The server gets an address of its own, so other tests running alongside never show up.
        await using var upstream = TestServer.Echo(IPAddress.Parse("127.0.0.77"));
        int port = upstream.Endpoint.Port;
        // The "other client": straight to the server from 127.0.0.1, also used to see the capture start.
        async Task OtherClientAsync()
        {
            using var other = await SocketExtensions.ConnectAsync(upstream.Endpoint);
            await other.SendAsync(new byte[100]);
            await other.ReadExactlyAsync(100);
        }

        await using var capture = await PacketCapture.StartAsync($"host 127.0.0.77 and tcp port {port}", OtherClientAsync);
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "127.0.0.2-127.0.0.4", engine: engine);

        // Six clients through the proxy, and the other client once more.
        for (int i = 0; i < 6; i++)
        {
            using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
            await client.SendAsync(new byte[100]);
            await client.ReadExactlyAsync(100);
            client.Shutdown(SocketShutdown.Send);
            await client.ReadToEndAsync();
        }

        await OtherClientAsync();
        await capture.StopAsync();

        var filter = (await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(1), "Wireshark: "))
            .Split("Wireshark: ")[1].Split("; ")[0];
        Assert.Equal($"ip.addr in {{127.0.0.2..127.0.0.4}} && tcp.port=={port}", filter);

        var all = await capture.ReadAsync(null, "ip.src", "ip.dst", "tcp.stream");
        var isolated = await capture.ReadAsync(filter, "ip.src", "ip.dst", "tcp.stream");

        // Every packet to or from the server is either the other client's (127.0.0.1 on one end)
        // or the route's, and the filter keeps exactly the route's: 6 streams, 3 sources.
        var routePackets = all.Where(p => p[0] != "127.0.0.1" && p[1] != "127.0.0.1").ToList();
        Assert.Equal(routePackets.Count, isolated.Count);
        Assert.Equal(6, isolated.Select(p => p[2]).Distinct().Count());
        Assert.Equal(["127.0.0.2", "127.0.0.3", "127.0.0.4"], isolated.Select(p => p[0] == "127.0.0.77" ? p[1] : p[0]).Distinct().Order());
        Assert.DoesNotContain(isolated, p => p[0] == "127.0.0.1" || p[1] == "127.0.0.1");
        Assert.Contains(all, p => p[0] == "127.0.0.1");
    }
}
