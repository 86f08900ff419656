using System.Net.Sockets;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Tests.Infrastructure;
using BindProxy.Transport;
using BindProxy.Transport.Linux;

namespace BindProxy.Tests.Forwarding;

/// <summary>The epoll relay engine that forwards plain Tcp routes on Linux.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class RelayTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Tcp_routes_are_relayed_and_release_their_counts_when_closed()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
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
        await Poll.UntilAsync(() => proxy.Connections.Count == 0 && proxy.CountOf("test") == 0,
            () => $"every count given back; registry {proxy.Connections.Count}, route {proxy.CountOf("test")}");
    }

    [Fact]
    public async Task A_stalled_direction_holds_at_most_one_read_in_the_proxy()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
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

    [Fact]
    public async Task A_burst_the_client_sends_before_the_upstream_reads_arrives_whole_and_in_order()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        const int Size = 8 * 1024 * 1024;
        var pattern = new byte[Size];
        new Random(6).NextBytes(pattern);

        // The upstream takes nothing until its socket is full (what waits for it stops growing),
        // so the relay's first sends (made before its sockets are registered) fill the upstream
        // socket and have to wait for it to drain.
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            int queued = await Poll.SteadyAsync(() => socket.Available, TimeSpan.FromMilliseconds(200), "the bytes queued for the upstream to stop growing", Prompt);
            Assert.True(queued > 0, "nothing reached the upstream");
            var received = new byte[Size + 1];
            int total = 0;
            int n;
            while ((n = await socket.ReceiveAsync(received.AsMemory(total), SocketFlags.None, ct)) > 0)
            {
                total += n;
            }

            bool same = total == Size && received.AsSpan(0, total).SequenceEqual(pattern);
            await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(same ? "same" : $"diff {total}"), SocketFlags.None, ct);
            socket.Shutdown(SocketShutdown.Send);
        });
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "127.0.0.2");
        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());

        int sent = 0;
        while (sent < Size)
        {
            sent += await client.SendAsync(pattern.AsMemory(sent), SocketFlags.None).AsTask().WaitAsync(Prompt);
        }

        client.Shutdown(SocketShutdown.Send);
        Assert.Equal("same", System.Text.Encoding.ASCII.GetString(await client.ReadToEndAsync(Prompt)));
    }
}

/// <summary>The engine is disposed by the container twice (singleton and hosted service).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class RelayEngineDisposalTests
{
    [Fact]
    public void A_second_dispose_leaves_descriptors_opened_in_between_alone()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var engine = new RelayEngine(new BindProxy.Transport.TransportOptions(), Microsoft.Extensions.Logging.Abstractions.NullLogger<RelayEngine>.Instance);
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

/// <summary>A relay started on sockets that already hold more than the other side can take.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TcpRelayStartTests : IAsyncDisposable
{
    private readonly RelayEngine _engine = new(new BindProxy.Transport.TransportOptions(), Microsoft.Extensions.Logging.Abstractions.NullLogger<RelayEngine>.Instance);

    [Fact]
    public async Task Bytes_waiting_when_the_relay_starts_reach_an_upstream_that_fills_up_first()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        const int Size = 4 * 1024 * 1024;
        var pattern = new byte[Size];
        new Random(7).NextBytes(pattern);
        // Small buffers on the upstream side: the relay's first sends fill them at once.
        using var legs = await Legs.ConnectAsync(upstreamBuffers: 4096);
        var (client, server) = (legs.Client, legs.Server);

        // The client's bytes queue in the proxy's socket before the relay exists.
        var sending = Task.Run(async () =>
        {
            int sent = 0;
            while (sent < Size)
            {
                sent += await client.SendAsync(pattern.AsMemory(sent), SocketFlags.None);
            }

            client.Shutdown(SocketShutdown.Send);
        });
        await Poll.UntilAsync(() => legs.QueuedAtProxy >= 64 * 1024, () => $"64 KiB queued at the proxy before the start; {legs.QueuedAtProxy} are");

        var owner = new Owner();
        var relay = legs.Relay(_engine.NextLoop());
        relay.Start(owner, Registered(relay));

        var received = await server.ReadToEndAsync(TimeSpan.FromSeconds(20));
        await sending.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(Size, received.Length);
        Assert.True(received.AsSpan().SequenceEqual(pattern), "the bytes arrived changed or out of order");

        // The upstream ends too: the relay closes both sockets and says so once.
        server.Shutdown(SocketShutdown.Send);
        Assert.Empty(await client.ReadToEndAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(CloseReason.ClientClosed, await owner.Closed.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_relay_asked_to_move_while_connecting_hands_its_open_sockets_over_once_started_and_never_closes_them()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        using var legs = await Legs.ConnectAsync();
        await legs.Client.SendAsync("unread"u8.ToArray());
        var owner = new Owner();
        var relay = legs.Relay(_engine.NextLoop());

        relay.RequestMove();
        relay.RequestMove();
        Assert.Equal(BindProxy.Transport.Linux.RelayState.Connecting, relay.Phase);
        relay.Start(owner, Registered(relay));
        var handover = await owner.Moved.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(BindProxy.Transport.Linux.RelayState.Moved, relay.Phase);
        Assert.Empty(handover.HeldForUpstream);
        Assert.Equal(0, handover.ClientReceived);

        // An abort, and a later move, find nothing of theirs: the sockets are the owner's.
        relay.Abort();
        relay.RequestMove();
        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        relay.Loop.Post(_ => ran.SetResult(), null);
        await ran.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(owner.Closed.Task.IsCompleted);

        // Open, out of the loop's set, with the client's bytes still unread in them.
        using var client = new Socket(handover.Client.ToSafeSocketHandle());
        using var upstream = new Socket(handover.Upstream.ToSafeSocketHandle());
        Assert.Equal("unread"u8.ToArray(), await client.ReadExactlyAsync(6, TimeSpan.FromSeconds(5)));
        await upstream.SendAsync("moved"u8.ToArray());
        Assert.Equal("moved"u8.ToArray(), await legs.Server.ReadExactlyAsync(5, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_relay_whose_upstream_is_gone_when_it_starts_resets_the_client()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        using var legs = await Legs.ConnectAsync();
        var client = legs.Client;
        legs.Server.LingerState = new LingerOption(true, 0);
        legs.Server.Dispose(); // the upstream resets before the relay starts

        await client.SendAsync(new byte[1000]);
        await Poll.UntilAsync(() => legs.QueuedAtProxy >= 1000, () => $"the client's 1000 bytes queued at the proxy; {legs.QueuedAtProxy} are");
        await Poll.UntilAsync(() => legs.UpstreamEnded, "the upstream's reset to reach the proxy's upstream socket");
        var owner = new Owner();
        var relay = legs.Relay(_engine.NextLoop());

        relay.Start(owner, Registered(relay));

        // The loop registers both sockets, the first send to the upstream fails, and both are reset.
        Assert.Equal(CloseReason.UpstreamReset, await owner.Closed.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(BindProxy.Transport.Linux.RelayState.Closed, relay.Phase);
        var reset = await Assert.ThrowsAsync<SocketException>(async () => await client.ReadToEndAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
    }

    [Fact]
    public async Task A_bulk_transfer_gives_its_loop_back_after_each_turn()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        using var loop = new BindProxy.Transport.Linux.EpollLoop("fair loop", 64 * 1024, e => throw e);

        // Bulk: the server sends as fast as it can and the client reads as fast as it can, so the
        // relay nearly always has more to read.
        using var bulk = await Legs.ConnectAsync();
        var relay = bulk.Relay(loop);
        relay.Start(new Owner(), Registered(relay));
        using var stop = new CancellationTokenSource();
        var pump = Task.WhenAll(
            Task.Run(async () =>
            {
                var chunk = new byte[256 * 1024];
                while (!stop.IsCancellationRequested)
                {
                    await bulk.Server.SendAsync(chunk, SocketFlags.None, stop.Token);
                }
            }),
            Task.Run(async () =>
            {
                var buffer = new byte[256 * 1024];
                while (!stop.IsCancellationRequested)
                {
                    await bulk.Client.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                }
            }));
        long turn = TcpRelay.MaxReadsPerTurn * 64 * 1024;
        await Poll.UntilAsync(() => relay.BytesToClient > 16 * turn, () => $"the bulk transfer to be under way; it moved {relay.BytesToClient} bytes");

        // Work posted to the loop runs when the loop next looks for events: how far the bulk
        // transfer got in between is how long it kept the loop. Only the relay's own thread moves
        // its counter, so this does not depend on how busy the machine is.
        long worst = 0;
        for (int i = 0; i < 100; i++)
        {
            // Read after the post: were this thread held up in between, the loop would only have
            // had more time to reach the posted work.
            var ran = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            loop.Post(static s => { var (r, done) = ((TcpRelay, TaskCompletionSource<long>))s!; done.SetResult(r.BytesToClient); }, (relay, ran));
            long before = relay.BytesToClient;
            long at = await ran.Task.WaitAsync(TimeSpan.FromSeconds(20));
            worst = Math.Max(worst, at - before);

            // The next post goes in once the bulk transfer has held the loop again (a read more).
            await Poll.UntilAsync(() => relay.BytesToClient >= at + 64 * 1024, "the bulk transfer to move on between posts");
        }

        stop.Cancel();
        try
        {
            await pump;
        }
        catch (OperationCanceledException)
        {
        }

        relay.Abort();
        TestContext.Current.TestOutputHelper?.WriteLine($"most moved between a post and its run: {worst / 1024} KiB (a turn: {turn / 1024} KiB)");
        Assert.True(relay.BytesToClient > 0, "the bulk transfer did not move");
        Assert.InRange(worst, 0, 2 * turn);
    }

    [Fact]
    public async Task Bytes_draining_to_a_slow_reader_keep_the_connection_from_its_IdleTimeout()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        // Small buffers towards the client: the relay soon holds a read the client has not taken,
        // stops reading the upstream, and sends the rest on only as fast as the client reads. For
        // a while nothing new is read, yet bytes keep moving.
        using var legs = await Legs.ConnectAsync(clientBuffers: 4096);
        var registry = new ConnectionRegistry();
        var route = Route(idleTimeout: TimeSpan.FromSeconds(1));
        var relay = legs.Relay(_engine.NextLoop());
        var owner = new Owner();
        var connection = registry.Add(BindProxy.Transport.ServedRoute.Configured(route), route, relay);
        relay.Start(owner, connection);
        var flood = Task.Run(async () =>
        {
            try
            {
                await legs.Server.SendAsync(new byte[8 * 1024 * 1024], SocketFlags.None);
            }
            catch (SocketException)
            {
            }
        });

        // The sweeper's clock is the test's: 600 ms pass between sweeps, 4.8 s in all, while the
        // client takes a little of what the relay holds before each.
        var sweeper = new ConnectionSweeper(registry);
        long now = Environment.TickCount64;
        var buffer = new byte[1024];
        long read = 0;
        int drainingOnly = 0;
        for (int i = 0; i < 8; i++)
        {
            long received = relay.BytesReceived, sent = relay.BytesToClient;
            while (relay.BytesToClient == sent)
            {
                int n = await legs.Client.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(10));
                Assert.True(n > 0, $"the client's side was closed after {read} bytes");
                read += n;
                if (relay.BytesToClient == sent)
                {
                    await Poll.UntilAsync(() => relay.BytesToClient != sent || legs.Client.Available > 0, "the relay to send on what it holds, or the client to have more to read");
                }
            }

            if (relay.BytesReceived == received)
            {
                drainingOnly++;
            }

            sweeper.Sweep(now += 600);
            Assert.True(connection.ProxyReason is null, $"closed ({connection.ProxyReason}) after {read} bytes, {(i + 1) * 600} ms on the sweeper's clock");
        }

        Assert.InRange(read, 1, 8 * 1024 * 1024 - 1);
        Assert.True(drainingOnly > 0, "the relay read the upstream again between every two sweeps; nothing tested bytes sent alone");

        // The client stops reading: once nothing moves either way, the next sweep past the
        // IdleTimeout closes the connection.
        await Poll.SteadyAsync(() => (relay.BytesReceived, relay.BytesToClient), TimeSpan.FromMilliseconds(100), "the relay to stall with the client no longer reading");
        sweeper.Sweep(now += 600);
        sweeper.Sweep(now += 1100);
        await owner.Closed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(CloseReason.IdleTimeout, connection.ProxyReason);
        legs.Server.Dispose();
        await flood.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>
    /// Two real loopback connections, client ↔ proxy and proxy ↔ server, whose proxy ends become a
    /// relay's descriptors.
    /// </summary>
    private sealed class Legs : IDisposable
    {
        private readonly Socket _clientListener;
        private readonly Socket _upstreamListener;
        private readonly Socket _proxyClient;
        private readonly Socket _proxyUpstream;
        private readonly System.Net.IPEndPoint[] _ends;

        private Legs(Socket clientListener, Socket upstreamListener, Socket client, Socket proxyClient, Socket proxyUpstream, Socket server)
        {
            (_clientListener, _upstreamListener, Client, _proxyClient, _proxyUpstream, Server) = (clientListener, upstreamListener, client, proxyClient, proxyUpstream, server);

            // Read now: a socket that has been reset no longer tells its peer.
            _ends = [(System.Net.IPEndPoint)proxyClient.RemoteEndPoint!, (System.Net.IPEndPoint)proxyClient.LocalEndPoint!,
                (System.Net.IPEndPoint)proxyUpstream.LocalEndPoint!, (System.Net.IPEndPoint)proxyUpstream.RemoteEndPoint!];
        }

        public Socket Client { get; }

        public Socket Server { get; }

        /// <summary>Bytes the client sent that wait in the proxy's socket.</summary>
        public int QueuedAtProxy => _proxyClient.Available;

        /// <summary>The server's FIN or reset has reached the proxy's upstream socket (poll(2) reports it readable; nothing is read).</summary>
        public bool UpstreamEnded => _proxyUpstream.Poll(0, SelectMode.SelectRead);

        /// <param name="upstreamBuffers">Send and receive buffer size between proxy and server; the system's when null.</param>
        /// <param name="clientBuffers">Send and receive buffer size between proxy and client; the system's when null.</param>
        public static async Task<Legs> ConnectAsync(int? upstreamBuffers = null, int? clientBuffers = null)
        {
            var loopback = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0);
            var clientListener = Listen(loopback, clientBuffers);
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            if (clientBuffers is { } clientSize)
            {
                client.ReceiveBufferSize = clientSize;
            }

            await client.ConnectAsync(clientListener.LocalEndPoint!);
            var proxyClient = await clientListener.AcceptAsync();
            if (clientBuffers is { } sent)
            {
                proxyClient.SendBufferSize = sent;
            }

            var upstreamListener = Listen(loopback, upstreamBuffers);
            var proxyUpstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            if (upstreamBuffers is { } size)
            {
                proxyUpstream.SendBufferSize = size;
            }

            await proxyUpstream.ConnectAsync(upstreamListener.LocalEndPoint!);
            var server = await upstreamListener.AcceptAsync();
            return new Legs(clientListener, upstreamListener, client, proxyClient, proxyUpstream, server);
        }

        private static Socket Listen(System.Net.IPEndPoint address, int? receiveBuffer)
        {
            var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            if (receiveBuffer is { } size)
            {
                listener.ReceiveBufferSize = size; // accepted sockets inherit it
            }

            listener.Bind(address);
            listener.Listen();
            return listener;
        }

        /// <summary>A relay on the proxy ends, which it owns from now on (their sockets are never used or disposed again).</summary>
        public TcpRelay Relay(BindProxy.Transport.Linux.EpollLoop loop)
        {
            var relay = new TcpRelay(loop, Detach(_proxyClient), default, _ends[0], _ends[1]);
            relay.Connected(Detach(_proxyUpstream), _ends[2], _ends[3]);
            return relay;
        }

        private static BindProxy.Transport.Linux.SocketHandle Detach(Socket socket)
        {
            BindProxy.Transport.Linux.RawSocket.SetNonBlocking(socket.SafeHandle);
            int fd = (int)socket.SafeHandle.DangerousGetHandle();
            socket.SafeHandle.SetHandleAsInvalid();
            GC.SuppressFinalize(socket);
            return new BindProxy.Transport.Linux.SocketHandle(fd);
        }

        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
            _clientListener.Dispose();
            _upstreamListener.Dispose();
        }
    }

    /// <summary>The relay as a registered connection of a route of its own.</summary>
    private static ProxiedConnection Registered(TcpRelay relay)
    {
        var route = Route();
        return new ConnectionRegistry().Add(BindProxy.Transport.ServedRoute.Configured(route), route, relay);
    }

    private static BindProxy.Configuration.RouteModel Route(TimeSpan? idleTimeout = null)
    {
        Assert.True(BindProxy.Addressing.UpstreamSpec.TryParse("127.0.0.1:9", out var up, out var e1), e1);
        Assert.True(BindProxy.Addressing.AddressSet.TryParse("127.0.0.1", out var set, out var e2), e2);
        Assert.True(BindProxy.Addressing.EndpointSpec.TryParse("127.0.0.1:0", allowPortZero: true, out var listen, out var e3), e3);
        return new BindProxy.Configuration.RouteModel { Name = "start", Listen = listen, Upstream = up, Sources = new BindProxy.Addressing.SourcePool(set), IdleTimeout = idleTimeout };
    }

    public ValueTask DisposeAsync()
    {
        _engine.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class Owner : IRelayOwner
    {
        public TaskCompletionSource<CloseReason> Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<RelayHandover> Moved { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void OnRelayClosed(TcpRelay relay, object? state, CloseReason reason)
        {
            if (Moved.Task.IsCompleted || !Closed.TrySetResult(reason))
            {
                throw new InvalidOperationException("told twice");
            }
        }

        public void OnRelayMoved(TcpRelay relay, object? state, RelayHandover handover)
        {
            if (Closed.Task.IsCompleted || !Moved.TrySetResult(handover))
            {
                throw new InvalidOperationException("told twice");
            }
        }
    }
}
