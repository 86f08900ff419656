using System.Net.Sockets;
using BindProxy.Forwarding;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Forwarding;

/// <summary>The epoll relay engine that forwards plain Tcp routes on Linux.</summary>
public sealed class RelayTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Tcp_routes_are_relayed_and_release_their_counts_when_closed()
    {
        Assert.SkipUnless(RelayEngine.IsSupported, "the relay engine runs on Linux only");
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "127.0.0.2");

        var clients = new List<Socket>();
        for (int i = 0; i < 20; i++)
        {
            var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
            await client.SendAsync(new[] { (byte)i });
            Assert.Equal(new[] { (byte)i }, await client.ReadExactlyAsync(1));
            clients.Add(client);
        }

        var live = proxy.Connections.Snapshot();
        Assert.Equal(20, live.Count);
        Assert.All(live, c => Assert.IsType<TcpRelay>(c.Legs));
        Assert.All(live, c => Assert.Equal("open", c.Legs.State));
        Assert.All(live, c => Assert.Equal(1, c.BytesToUpstream));

        foreach (var client in clients)
        {
            client.Shutdown(SocketShutdown.Send);
            Assert.Empty(await client.ReadToEndAsync());
            client.Dispose();
        }

        // Closing runs on the loops: every count the handler took is given back.
        for (int i = 0; i < 100 && (proxy.Connections.Count > 0 || proxy.Connections.CountOf("test") > 0); i++)
        {
            await Task.Delay(50);
        }

        Assert.Equal(0, proxy.Connections.Count);
        Assert.Equal(0, proxy.Connections.CountOf("test"));
    }

    [Fact]
    public async Task A_stalled_direction_holds_at_most_one_read_in_the_proxy()
    {
        Assert.SkipUnless(RelayEngine.IsSupported, "the relay engine runs on Linux only");
        var upstreamWrote = new TestServer.SentCounter();
        await using var upstream = TestServer.Flood(upstreamWrote);
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "127.0.0.2");
        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());

        long last = await upstreamWrote.WaitUntilStalledAsync();

        var connection = Assert.Single(proxy.Connections.Snapshot());
        Assert.True(last > 0, "the upstream never sent anything");
        Assert.InRange(connection.BufferedBytes, 0, new BindProxy.Transport.TransportOptions().ReceiveBufferSize);

        // The client reads again: everything held flows on, in order, and the direction resumes.
        var received = await client.ReadExactlyAsync(4 * 1024 * 1024, Prompt);
        Assert.Equal(4 * 1024 * 1024, received.Length);
    }
}

/// <summary>The engine is disposed by the container twice (singleton and hosted service).</summary>
public sealed class RelayEngineDisposalTests
{
    [Fact]
    public void A_second_dispose_leaves_descriptors_opened_in_between_alone()
    {
        Assert.SkipUnless(RelayEngine.IsSupported, "the relay engine runs on Linux only");
        var engine = new RelayEngine(new BindProxy.Transport.TransportOptions(), new ConnectionRegistry(),
            new BindProxy.Hosting.ShutdownSettings(TimeSpan.FromSeconds(1)), Microsoft.Extensions.Logging.Abstractions.NullLogger<RelayEngine>.Instance);
        engine.NextLoop();
        engine.Dispose();

        // These take the lowest free numbers: the ones the loops' epoll and eventfd descriptors had.
        var sockets = Enumerable.Range(0, 8).Select(_ => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)).ToList();
        try
        {
            engine.Dispose();
            foreach (var socket in sockets)
            {
                socket.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0)); // EBADF if its number was closed
            }
        }
        finally
        {
            sockets.ForEach(s => s.Dispose());
        }
    }
}
