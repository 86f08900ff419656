using System.Net;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Forwarding;

/// <summary>
/// A connection is over only when its bytes are delivered: once both sides have ended, the proxy
/// keeps each socket until its peer has acknowledged everything sent to it. A socket closed with
/// bytes still queued is an orphan, which the kernel may drop without FIN or RST (a slow reader's
/// zero window backing off past two minutes, or memory pressure), and the client would then wait
/// for those bytes forever.
/// </summary>
public sealed class FlushTests
{
    private const int Size = 768 * 1024;

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task A_slow_reader_gets_every_byte_and_the_proxy_holds_its_socket_until_then(string engine)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "the flush waits on the kernel's send queue, which only Linux reports");
        var pattern = new byte[Size];
        new Random(11).NextBytes(pattern);

        // The upstream sends everything and closes at once; the client sends nothing and half-closes.
        var sentAll = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            await socket.SendAsync(pattern, SocketFlags.None, ct);
            socket.Shutdown(SocketShutdown.Send);
            sentAll.SetResult();
            await socket.ReceiveAsync(new byte[1], SocketFlags.None, ct);
        });
        await using var proxy = await TestProxy.StartAsync(upstream.Address, engine: engine);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 2048 };
        await client.ConnectAsync(proxy.Endpoint());
        int clientPort = ((IPEndPoint)client.LocalEndPoint!).Port;
        client.Shutdown(SocketShutdown.Send);

        // Both sides have ended and most of the bytes wait in the kernel for a client that is not
        // reading: the connection is still the proxy's, and so is the socket holding them.
        await sentAll.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(10), "test:", " open (connect");
        var connection = await Poll.UntilAsync(
            () => proxy.Connections.Snapshot().FirstOrDefault(),
            c => c is null || c.Legs.State == "flushing",
            "the connection to wait for its client (or to be let go)");
        Assert.True(connection is not null, "the proxy let the connection go while its client had read nothing");
        var towardClient = SocketTable.Read().Single(e => e.Remote.Port == clientPort && e.Local.Port == proxy.Endpoint().Port);
        Assert.True(towardClient.TxQueue > 0, "the test needs bytes queued towards the client");
        Assert.NotEqual(0, towardClient.Inode); // not an orphan

        // The client reads at last: everything arrives, then the FIN, then the proxy lets go.
        var received = await client.ReadToEndAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Size, received.Length);
        Assert.True(received.AsSpan().SequenceEqual(pattern), "the bytes arrived changed or out of order");
        await Poll.UntilAsync(() => proxy.Connections.Count == 0, "the proxy to let the connection go once the client has everything");
        await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(5), "closed: client FIN");
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task A_client_that_never_reads_the_rest_is_reset_after_the_flush_timeout_and_that_is_said(string engine)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "the flush waits on the kernel's send queue, which only Linux reports");
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            await socket.SendAsync(new byte[Size], SocketFlags.None, ct);
            socket.Shutdown(SocketShutdown.Send);
            await socket.ReceiveAsync(new byte[1], SocketFlags.None, ct);
        });
        var config = new BindProxy.Configuration.ProxyConfig
        {
            Engine = engine,
            FlushTimeout = "00:00:02",
            Routes = [new BindProxy.Configuration.RouteConfig { Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.2" }],
        };
        await using var proxy = await TestProxy.StartAsync(config);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 2048 };
        await client.ConnectAsync(proxy.Endpoint());
        client.Shutdown(SocketShutdown.Send);

        var line = await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(20), "stayed unacknowledged for 2 s; reset");
        Assert.Contains("test:", line, StringComparison.Ordinal);
        await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(5), "closed: flush timeout");
        await Poll.UntilAsync(() => proxy.Connections.Count == 0, "the reset connection to leave the registry");
        var reset = await Assert.ThrowsAsync<SocketException>(async () => await client.ReadToEndAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task A_client_that_resets_while_the_proxy_waits_for_it_is_let_go_at_once_not_at_the_flush_timeout(string engine)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "the flush waits on the kernel's send queue, which only Linux reports");
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            await socket.SendAsync(new byte[64 * 1024], SocketFlags.None, ct);
            socket.Shutdown(SocketShutdown.Send);
            await socket.ReceiveAsync(new byte[1], SocketFlags.None, ct);
        });
        await using var proxy = await TestProxy.StartAsync(upstream.Address, engine: engine);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 2048 };
        await client.ConnectAsync(proxy.Endpoint());
        client.Shutdown(SocketShutdown.Send);
        await Poll.UntilAsync(() => proxy.Connections.Snapshot().Any(c => c.Legs.State == "flushing"), "the connection to wait for its client");

        // The client closes without reading: its kernel resets, and nothing more can be delivered.
        client.Dispose();
        await Poll.UntilAsync(() => proxy.Connections.Count == 0, "the proxy to let the reset connection go", TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(proxy.Logs.Messages, m => m.Contains("flush timeout", StringComparison.Ordinal));
    }
}
