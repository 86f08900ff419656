using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Forwarding;

/// <summary>Per-client source assignment: several clients on one listener, each on its own address.</summary>
public sealed class AssignmentTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    /// <summary>An echo server that notes, per connection, the first byte (the client's tag) and the source address.</summary>
    private static TestServer TaggingServer(ConcurrentQueue<(char Tag, IPAddress Source)> seen) => TestServer.Start(async (socket, ct) =>
    {
        var tag = await socket.ReadExactlyAsync(1);
        seen.Enqueue(((char)tag[0], ((IPEndPoint)socket.RemoteEndPoint!).Address));
        await socket.SendAsync(tag, SocketFlags.None, ct);
        await socket.ReadToEndAsync(TimeSpan.FromSeconds(60));
    });

    private static async Task<Socket> ConnectFromAsync(string source, IPEndPoint proxy)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Parse(source), 0));
        await socket.ConnectAsync(proxy).WaitAsync(Prompt);
        return socket;
    }

    private static async Task ExchangeAsync(Socket socket, char tag)
    {
        await socket.SendAsync(new[] { (byte)tag });
        Assert.Equal((byte)tag, (await socket.ReadExactlyAsync(1))[0]);
    }

    [Fact]
    public async Task Client_address_policy_is_sticky_per_client_and_separates_clients()
    {
        var seen = new ConcurrentQueue<(char Tag, IPAddress Source)>();
        await using var upstream = TaggingServer(seen);
        await using var proxy = await TestProxy.StartAsync(new RouteConfig
        {
            Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.20-127.0.0.23", Assign = "client-address",
        });

        var sockets = new List<Socket>();
        foreach (var (client, tag) in new[] { ("127.0.0.50", 'a'), ("127.0.0.51", 'b'), ("127.0.0.50", 'a'), ("127.0.0.51", 'b'), ("127.0.0.50", 'a') })
        {
            var socket = await ConnectFromAsync(client, proxy.Endpoint());
            sockets.Add(socket);
            await ExchangeAsync(socket, tag);
        }

        var byClient = seen.GroupBy(s => s.Tag).ToDictionary(g => g.Key, g => g.Select(s => s.Source).Distinct().ToList());
        Assert.Single(byClient['a']);
        Assert.Single(byClient['b']);
        Assert.NotEqual(byClient['a'][0], byClient['b'][0]);
        await proxy.Logs.WaitForAsync(Prompt, "client 127.0.0.50 →", "Wireshark: ip.addr==");
        Assert.Single(proxy.Logs.Messages, m => m.Contains("client 127.0.0.50 →", StringComparison.Ordinal));
        sockets.ForEach(s => s.Dispose());
    }

    [Theory]
    [InlineData("share")]
    [InlineData("refuse")]
    public async Task When_the_pool_is_exhausted_the_fallback_applies_and_is_logged_once(string whenExhausted)
    {
        var seen = new ConcurrentQueue<(char Tag, IPAddress Source)>();
        await using var upstream = TaggingServer(seen);
        await using var proxy = await TestProxy.StartAsync(new RouteConfig
        {
            Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.30-127.0.0.31",
            Assign = "client-address", WhenExhausted = whenExhausted,
        });

        var sockets = new List<Socket>();
        foreach (var (client, tag) in new[] { ("127.0.0.60", 'a'), ("127.0.0.61", 'b') })
        {
            var socket = await ConnectFromAsync(client, proxy.Endpoint());
            sockets.Add(socket);
            await ExchangeAsync(socket, tag);
        }

        for (int i = 0; i < 2; i++)
        {
            Socket third;
            try
            {
                third = await ConnectFromAsync("127.0.0.62", proxy.Endpoint());
            }
            catch (SocketException e) when (whenExhausted == "refuse" && e.SocketErrorCode == SocketError.ConnectionReset)
            {
                continue; // refused so fast that the reset beat the connect's completion
            }

            sockets.Add(third);
            if (whenExhausted == "share")
            {
                await ExchangeAsync(third, 'c');
            }
            else
            {
                var closed = await third.WaitForCloseAsync(Prompt);
                Assert.Equal(SocketError.ConnectionReset, closed);
            }
        }

        Assert.Single(proxy.Logs.Messages, m => m.Contains("every one of the 2 source addresses is assigned", StringComparison.Ordinal));
        if (whenExhausted == "share")
        {
            var third = seen.Where(s => s.Tag == 'c').Select(s => s.Source).Distinct().ToList();
            Assert.Single(third);
            Assert.Contains(third[0], seen.Where(s => s.Tag != 'c').Select(s => s.Source));
            await proxy.Logs.WaitForAsync(Prompt, "client 127.0.0.62 →", "(shared: the pool is exhausted)");
        }
        else
        {
            Assert.DoesNotContain(seen, s => s.Tag == 'c');
            await proxy.Logs.WaitForAsync(Prompt, "127.0.0.62", "refused: every source address is assigned");
        }

        sockets.ForEach(s => s.Dispose());
    }

    [Fact]
    public async Task Process_policy_gives_each_local_process_its_own_address_for_all_its_connections()
    {
        Assert.SkipUnless(ProcessLookup.IsSupported, "process lookup reads Linux's /proc");
        var bash = ExternalTool.Require("bash");
        var seen = new ConcurrentQueue<(char Tag, IPAddress Source)>();
        await using var upstream = TaggingServer(seen);
        await using var proxy = await TestProxy.StartAsync(new RouteConfig
        {
            Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.40-127.0.0.43", Assign = "process",
        });
        var endpoint = proxy.Endpoint();

        // Two separate processes, each opening two connections through the same listener.
        var children = new[] { 'x', 'y' }.Select(tag =>
        {
            var script = $"exec 3<>/dev/tcp/{endpoint.Address}/{endpoint.Port}; printf {tag} >&3; read -n1 a <&3; " +
                         $"exec 4<>/dev/tcp/{endpoint.Address}/{endpoint.Port}; printf {tag} >&4; read -n1 b <&4; echo \"$a$b\"";
            var info = new ProcessStartInfo(bash, ["-c", script]) { RedirectStandardOutput = true };
            return Process.Start(info)!;
        }).ToList();

        foreach (var child in children)
        {
            var output = await child.StandardOutput.ReadToEndAsync().WaitAsync(Prompt);
            await child.WaitForExitAsync().WaitAsync(Prompt);
            Assert.Equal(2, output.Trim().Length);
        }

        var byProcess = seen.GroupBy(s => s.Tag).ToDictionary(g => g.Key, g => g.Select(s => s.Source).ToList());
        Assert.Equal(2, byProcess['x'].Count);
        Assert.Equal(2, byProcess['y'].Count);
        Assert.Single(byProcess['x'].Distinct());
        Assert.Single(byProcess['y'].Distinct());
        Assert.NotEqual(byProcess['x'][0], byProcess['y'][0]);
        var line = await proxy.Logs.WaitForAsync(Prompt, $"pid {children[0].Id} bash →");
        Assert.Contains("Wireshark: ip.addr==127.0.0.4", line, StringComparison.Ordinal);
        children.ForEach(c => c.Dispose());
    }

    [Fact]
    public async Task The_registry_lists_assignments_with_their_filters()
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(new RouteConfig
        {
            Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.44-127.0.0.45", Assign = "client-address",
        });
        using var client = await ConnectFromAsync("127.0.0.70", proxy.Endpoint());
        await client.SendAsync(new byte[] { 1 });
        await client.ReadExactlyAsync(1);

        var assignment = Assert.Single(proxy.Services.GetRequiredService<AssignmentRegistry>().Snapshot());
        Assert.Equal("test", assignment.Route);
        Assert.Equal("client 127.0.0.70", assignment.Client.Display);
        Assert.Equal(IPAddress.Parse("127.0.0.44"), assignment.Address);
        Assert.Equal(1, assignment.ActiveConnections);
    }
}
