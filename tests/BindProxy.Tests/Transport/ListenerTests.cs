using System.Net;
using System.Net.Sockets;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Tests.Infrastructure;
using BindProxy.Transport;
using BindProxy.Transport.Linux;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;

namespace BindProxy.Tests.Transport;

/// <summary>The proxy's own listeners, driven the way Kestrel's accept loop drives them.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ListenerTests : IAsyncDisposable
{
    private readonly RelayEngine _relays = new(new TransportOptions(), NullLogger<RelayEngine>.Instance);

    private readonly ListenerRegistry _registry = new();

    /// <summary>A configured route of that name (its definition does not matter to a listener).</summary>
    private static ServedRoute Served(string name)
    {
        Assert.True(BindProxy.Addressing.UpstreamSpec.TryParse("127.0.0.1:9", out var upstream, out var e1), e1);
        Assert.True(BindProxy.Addressing.AddressSet.TryParse("127.0.0.1", out var sources, out var e2), e2);
        Assert.True(BindProxy.Addressing.EndpointSpec.TryParse("127.0.0.1:0", allowPortZero: true, out var listen, out var e3), e3);
        return ServedRoute.Configured(new RouteModel { Name = name, Listen = listen, Upstream = upstream, Sources = new BindProxy.Addressing.SourcePool(sources) });
    }

    private readonly DescriptorBudget _budget = new(100_000, 0, NullLogger<DescriptorBudget>.Instance);

    private RouteListenerFactory Factory => new(new TransportOptions(), _registry,
        EngineSettings.RelayRuns ? new RelayEngineListeners(_relays) : new SocketEngineListeners(), _budget, NullLogger<RouteListenerFactory>.Instance);

    [Fact]
    public async Task A_backlog_of_connections_is_accepted_whole_with_each_clients_address()
    {
        var listener = await Factory.BindAsync(new RouteEndPoint(Served("burst"), new IPEndPoint(IPAddress.Loopback, 0)), TestContext.Current.CancellationToken);
        var address = ((RouteEndPoint)listener.EndPoint).Address;
        var clients = new List<Socket>();
        var accepted = new List<ConnectionContext>();
        try
        {
            // More than one burst of accepts on the loop's thread, all queued before the first accept.
            for (int i = 0; i < 100; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(address, TestContext.Current.CancellationToken);
            }

            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            for (int i = 0; i < clients.Count; i++)
            {
                var connection = await listener.AcceptAsync(deadline.Token).AsTask().WaitAsync(deadline.Token);
                Assert.NotNull(connection);
                accepted.Add(connection);
            }

            var expected = clients.Select(c => c.LocalEndPoint!.ToString()!).Order().ToList();
            var seen = accepted.Select(c => c.Features.Get<IInboundSocketFeature>()!.Client.ToString()).Order().ToList();
            Assert.Equal(expected, seen);
            Assert.All(accepted, c => Assert.Equal(address, c.Features.Get<IInboundSocketFeature>()!.Listener));

            // One more arriving while an accept waits wakes it.
            var waiting = listener.AcceptAsync(deadline.Token).AsTask();
            Assert.False(await Poll.SteadyAsync(() => waiting.IsCompleted, TimeSpan.FromMilliseconds(100), "the accept to stay waiting with nobody to accept"));
            var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            clients.Add(late);
            await late.ConnectAsync(address, TestContext.Current.CancellationToken);
            var lateConnection = await waiting.WaitAsync(deadline.Token);
            Assert.NotNull(lateConnection);
            accepted.Add(lateConnection);
            Assert.Equal(late.LocalEndPoint, lateConnection.Features.Get<IInboundSocketFeature>()!.Client);
        }
        finally
        {
            foreach (var connection in accepted)
            {
                await connection.DisposeAsync();
            }

            clients.ForEach(c => c.Dispose());
            await listener.DisposeAsync();
        }
    }

    [Fact]
    public async Task Unbind_ends_a_waiting_accept_and_closes_the_port()
    {
        var listener = await Factory.BindAsync(new RouteEndPoint(Served("unbind"), new IPEndPoint(IPAddress.Loopback, 0)), TestContext.Current.CancellationToken);
        var address = ((RouteEndPoint)listener.EndPoint).Address;
        var waiting = listener.AcceptAsync(TestContext.Current.CancellationToken).AsTask();
        Assert.False(await Poll.SteadyAsync(() => waiting.IsCompleted, TimeSpan.FromMilliseconds(100), "the accept to stay waiting with nobody to accept"));

        await listener.UnbindAsync(TestContext.Current.CancellationToken);

        Assert.Null(await waiting.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
        Assert.Null(await listener.AcceptAsync(TestContext.Current.CancellationToken));
        Assert.Empty(_registry.For("unbind"));
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await client.ConnectAsync(address, TestContext.Current.CancellationToken));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task A_connection_the_pipe_path_takes_reads_and_writes_through_a_socket_made_from_its_descriptor()
    {
        var listener = await Factory.BindAsync(new RouteEndPoint(Served("pipe"), new IPEndPoint(IPAddress.Loopback, 0)), TestContext.Current.CancellationToken);
        try
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(((RouteEndPoint)listener.EndPoint).Address, TestContext.Current.CancellationToken);
            await using var connection = (await listener.AcceptAsync(TestContext.Current.CancellationToken))!;
            var inbound = connection.Features.Get<IInboundSocketFeature>()!;

            var socket = inbound.Socket;
            if (OperatingSystem.IsLinux())
            {
                Assert.False(Assert.IsType<DescriptorInbound>(inbound).TryDetach(out _, out _)); // the descriptor is the stream's now
            }

            await client.SendAsync("ping"u8.ToArray(), TestContext.Current.CancellationToken);
            var read = await socket.Input.ReadAtLeastAsync(4, TestContext.Current.CancellationToken);
            Assert.Equal("ping"u8.ToArray(), System.Buffers.BuffersExtensions.ToArray(read.Buffer.Slice(0, 4)));
            socket.Input.AdvanceTo(read.Buffer.GetPosition(4));

            await socket.Socket.SendAsync("pong"u8.ToArray(), TestContext.Current.CancellationToken);
            var buffer = new byte[4];
            Assert.Equal(4, await client.ReceiveAsync(buffer, TestContext.Current.CancellationToken));
            Assert.Equal("pong"u8.ToArray(), buffer);
        }
        finally
        {
            await listener.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_client_that_reset_before_the_pipe_path_took_its_socket_keeps_its_address()
    {
        var listener = await Factory.BindAsync(new RouteEndPoint(Served("reset"), new IPEndPoint(IPAddress.Loopback, 0)), TestContext.Current.CancellationToken);
        try
        {
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(((RouteEndPoint)listener.EndPoint).Address, TestContext.Current.CancellationToken);
            var clientAddress = (IPEndPoint)client.LocalEndPoint!;
            await using var connection = (await listener.AcceptAsync(TestContext.Current.CancellationToken))!;
            var listening = ((RouteEndPoint)listener.EndPoint).Address;
            Assert.Contains(SocketTable.Read(), e => e.Local.Equals(listening) && e.Remote.Equals(clientAddress));
            client.LingerState = new LingerOption(true, 0);
            client.Dispose(); // RST before the proxy makes a socket of the descriptor

            // The reset reached the proxy's end: the kernel has dropped the connection from its table.
            await Poll.UntilAsync(() => !SocketTable.Read().Any(e => e.Local.Equals(listening) && e.Remote.Equals(clientAddress)),
                "the client's reset to reach the proxy's socket");

            var inbound = connection.Features.Get<IInboundSocketFeature>()!;
            Assert.Equal(clientAddress, inbound.Client);
            Assert.Equal(clientAddress, inbound.Socket.RemoteEndPoint);
            Assert.Equal(((RouteEndPoint)listener.EndPoint).Address, inbound.Socket.LocalEndPoint);
        }
        finally
        {
            await listener.DisposeAsync();
        }
    }

    public ValueTask DisposeAsync()
    {
        _relays.Dispose();
        return ValueTask.CompletedTask;
    }
}
