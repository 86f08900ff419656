using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Forwarding;

/// <summary>End to end over real loopback sockets: client → proxy → upstream.</summary>
public sealed class ForwardingTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Upstream_sees_the_configured_source_address()
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "127.0.0.2");

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.SendAsync("ping"u8.ToArray());
        Assert.Equal("ping"u8.ToArray(), await client.ReadExactlyAsync(4));

        Assert.True(upstream.Accepted.TryPeek(out var seen));
        Assert.Equal(IPAddress.Parse("127.0.0.2"), seen.Address);
        var open = await proxy.Logs.WaitForAsync(Prompt, "open", "127.0.0.2:");
        Assert.Contains(upstream.Endpoint.ToString(), open, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_source_pool_is_used_round_robin()
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "127.0.0.2-127.0.0.4");

        for (int i = 0; i < 6; i++)
        {
            using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
            await client.SendAsync(new byte[] { 1 });
            await client.ReadExactlyAsync(1);
        }

        var sources = upstream.Accepted.Select(e => e.Address.ToString()).ToList();
        Assert.Equal(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2", "127.0.0.3", "127.0.0.4"], sources);
    }

    [Fact]
    public async Task IPv6_loopback_works_end_to_end()
    {
        await using var upstream = TestServer.Echo(IPAddress.IPv6Loopback);
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "::1", listen: "[::1]:0");

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.SendAsync("v6"u8.ToArray());
        Assert.Equal("v6"u8.ToArray(), await client.ReadExactlyAsync(2));
        Assert.True(upstream.Accepted.TryPeek(out var seen));
        Assert.Equal(IPAddress.IPv6Loopback, seen.Address);
    }

    [Fact]
    public async Task A_listen_range_gives_one_listener_per_address()
    {
        await using var upstream = TestServer.Echo();
        await using var sacrificial = TestServer.Echo();
        int port = sacrificial.Endpoint.Port; // a port known free on 127.0.0.1 is very likely free on .5-.7 too
        await sacrificial.DisposeAsync();
        await using var proxy = await TestProxy.StartAsync(upstream.Address, listen: $"127.0.0.5-127.0.0.7:{port}");

        Assert.Equal(["127.0.0.5", "127.0.0.6", "127.0.0.7"], proxy.Endpoints().Select(e => e.Address.ToString()));
        foreach (var endpoint in proxy.Endpoints())
        {
            using var client = await SocketExtensions.ConnectAsync(endpoint);
            await client.SendAsync(new byte[] { 7 });
            Assert.Equal(7, (await client.ReadExactlyAsync(1))[0]);
        }
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Large_transfers_arrive_intact_both_ways(string engine)
    {
        const long Total = 256L * 1024 * 1024;

        // Upstream: hashes what it receives while sending its own 256 MiB stream, then FIN.
        var upstreamReceived = new TaskCompletionSource<byte[]>();
        byte[]? upstreamSentHash = null;
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            var receive = HashUntilFinAsync(socket, ct);
            upstreamSentHash = await SendPatternAsync(socket, Total, seed: 2, ct);
            socket.Shutdown(SocketShutdown.Send);
            upstreamReceived.SetResult((await receive).Hash);
        });
        await using var proxy = await TestProxy.StartAsync(upstream.Address, engine: engine);

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var clientReceive = HashUntilFinAsync(client, cts.Token);
        var clientSentHash = await SendPatternAsync(client, Total, seed: 1, cts.Token);
        client.Shutdown(SocketShutdown.Send);

        var (clientGotHash, clientGotBytes) = await clientReceive;
        Assert.Equal(Total, clientGotBytes);
        Assert.Equal(upstreamSentHash, clientGotHash);
        Assert.Equal(clientSentHash, await upstreamReceived.Task.WaitAsync(TimeSpan.FromMinutes(1)));

        var closed = await proxy.Logs.WaitForAsync(Prompt, "closed");
        Assert.Contains($"{Total} B up, {Total} B down", closed, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Hundred_concurrent_connections_each_get_their_own_bytes(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "127.0.0.2-127.0.0.5", engine: engine);

        var clients = Enumerable.Range(0, 100).Select(async i =>
        {
            using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
            var payload = RandomNumberGenerator.GetBytes(64 * 1024 + i);
            var echo = client.ReadExactlyAsync(payload.Length);
            await client.SendAsync(payload);
            Assert.Equal(payload, await echo);
            client.Shutdown(SocketShutdown.Send);
            Assert.Empty(await client.ReadToEndAsync());
        });
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(100, upstream.Accepted.Count);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Client_half_close_reaches_upstream_and_the_reply_still_flows(string engine)
    {
        // Upstream reads until FIN, then answers with what it got, reversed, then closes.
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            var got = await socket.ReadToEndAsync();
            Array.Reverse(got);
            await socket.SendAsync(got, SocketFlags.None, ct);
            socket.Shutdown(SocketShutdown.Send);
        });
        await using var proxy = await TestProxy.StartAsync(upstream.Address, engine: engine);

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.SendAsync("abc"u8.ToArray());
        client.Shutdown(SocketShutdown.Send);
        Assert.Equal("cba"u8.ToArray(), await client.ReadToEndAsync());
        Assert.Contains("client FIN", await proxy.Logs.WaitForAsync(Prompt, "closed"), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Upstream_half_close_reaches_client_and_the_client_can_still_send(string engine)
    {
        // Upstream sends a greeting and FIN at once, then keeps reading until the client's FIN.
        var upstreamGot = new TaskCompletionSource<byte[]>();
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            await socket.SendAsync("hello"u8.ToArray(), SocketFlags.None, ct);
            socket.Shutdown(SocketShutdown.Send);
            upstreamGot.SetResult(await socket.ReadToEndAsync());
        });
        await using var proxy = await TestProxy.StartAsync(upstream.Address, engine: engine);

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        Assert.Equal("hello"u8.ToArray(), await client.ReadToEndAsync()); // FIN seen
        await client.SendAsync("after-fin"u8.ToArray());
        client.Shutdown(SocketShutdown.Send);
        Assert.Equal("after-fin"u8.ToArray(), await upstreamGot.Task.WaitAsync(Prompt));
        Assert.Contains("upstream FIN", await proxy.Logs.WaitForAsync(Prompt, "closed"), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Client_reset_resets_the_upstream(string engine)
    {
        var upstreamSaw = new TaskCompletionSource<SocketError>();
        await using var upstream = TestServer.Start(async (socket, ct) => upstreamSaw.SetResult(await socket.WaitForCloseAsync(Prompt)));
        await using var proxy = await TestProxy.StartAsync(upstream.Address, engine: engine);

        var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.SendAsync("x"u8.ToArray());
        await proxy.Logs.WaitForAsync(Prompt, "open");
        client.Reset();

        Assert.Equal(SocketError.ConnectionReset, await upstreamSaw.Task.WaitAsync(Prompt));
        Assert.Contains("reset by client", await proxy.Logs.WaitForAsync(Prompt, "closed"), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Upstream_reset_resets_the_client(string engine)
    {
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            await socket.ReadExactlyAsync(1);
            socket.Reset();
        });
        await using var proxy = await TestProxy.StartAsync(upstream.Address, engine: engine);

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.SendAsync("x"u8.ToArray());
        Assert.Equal(SocketError.ConnectionReset, await client.WaitForCloseAsync(Prompt));
        Assert.Contains("reset by upstream", await proxy.Logs.WaitForAsync(Prompt, "closed"), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task A_refusing_upstream_closes_the_client_promptly_and_says_why(string engine)
    {
        int deadPort;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            deadPort = ((IPEndPoint)probe.LocalEndPoint!).Port; // bound, never listening: connects are refused
            await using var proxy = await TestProxy.StartAsync($"127.0.0.1:{deadPort}", engine: engine);

            var closed = await SocketExtensions.ConnectAndWaitForCloseAsync(proxy.Endpoint(), Prompt);
            Assert.Equal(SocketError.ConnectionReset, closed);
            var line = await proxy.Logs.WaitForAsync(Prompt, "connect refused", $"127.0.0.1:{deadPort}");
            Assert.Contains("refused", line, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task An_upstream_that_never_answers_closes_the_client_at_the_connect_timeout(string engine)
    {
        // A listener whose accept queue is full and never drained: further SYNs go unanswered.
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        silent.Listen(0);
        var fillers = new List<Socket>();
        try
        {
            var connects = new List<Task>();
            for (int i = 0; i < 4; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                connects.Add(filler.ConnectAsync(silent.LocalEndPoint!));
            }

            // A filler that got in has taken the queue's one place; the SYNs of the others go unanswered.
            await Poll.UntilAsync(() => connects.Any(c => c.IsCompletedSuccessfully), "a filler to take the silent listener's accept queue");
            await using var proxy = await TestProxy.StartAsync(silent.LocalEndPoint!.ToString()!, connectTimeout: "00:00:01", engine: engine);

            using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
            var started = DateTime.UtcNow;
            var closed = await client.WaitForCloseAsync(TimeSpan.FromSeconds(10));
            var elapsed = DateTime.UtcNow - started;
            Assert.Equal(SocketError.ConnectionReset, closed);
            Assert.InRange(elapsed, TimeSpan.FromMilliseconds(800), TimeSpan.FromSeconds(5));
            await proxy.Logs.WaitForAsync(Prompt, "connect timeout", "within 1 s");
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task A_client_that_stops_reading_does_not_make_the_proxy_buffer_without_bound(string engine)
    {
        // Upstream writes as fast as it can; the client never reads.
        var upstreamWrote = new TestServer.SentCounter();
        await using var upstream = TestServer.Flood(upstreamWrote);
        var transport = new BindProxy.Transport.TransportOptions { MaxBufferedBytes = 256 * 1024 };
        var validated = await new BindProxy.Configuration.ConfigValidator(new BindProxy.Addressing.SourceAddressProbe()).ValidateAsync(
            new BindProxy.Configuration.ProxyConfig { Engine = engine, Routes = [new() { Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.2" }] },
            CancellationToken.None);
        await using var proxy = await TestProxy.StartAsync(validated.Model!, transport);

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        client.ReceiveBufferSize = 64 * 1024;

        // Wait until the upstream is stalled: its byte count stops growing.
        long last = await upstreamWrote.WaitUntilStalledAsync();

        var connection = Assert.Single(proxy.Connections.Snapshot());
        Assert.True(last > 0, "the upstream never sent anything");

        // User-space holding is bounded by the pipe threshold plus one receive buffer...
        Assert.InRange(connection.BufferedBytes, 0, transport.MaxBufferedBytes + transport.ReceiveBufferSize);

        // ...and the whole path (kernel buffers included) stalled far below what a runaway buffer would take.
        Assert.InRange(upstreamWrote.Value, 1, 64L * 1024 * 1024);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task At_MaxConnections_new_clients_are_refused_with_one_log_line_and_others_keep_working(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(new BindProxy.Configuration.ProxyConfig { Engine = engine, Routes = [new BindProxy.Configuration.RouteConfig
        {
            Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.2", MaxConnections = "2",
        }] });

        using var first = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        using var second = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        foreach (var held in new[] { first, second })
        {
            await held.SendAsync(new byte[] { 1 });
            await held.ReadExactlyAsync(1);
        }

        for (int i = 0; i < 3; i++)
        {
            var closed = await SocketExtensions.ConnectAndWaitForCloseAsync(proxy.Endpoint(), Prompt);
            Assert.Equal(SocketError.ConnectionReset, closed);
        }

        Assert.Single(proxy.Logs.Messages, m => m.Contains("at MaxConnections 2", StringComparison.Ordinal));
        Assert.Equal(2, upstream.Accepted.Count);

        // The held connections still work, and once one closes a new client gets in.
        await first.SendAsync(new byte[] { 2 });
        Assert.Equal(2, (await first.ReadExactlyAsync(1))[0]);
        first.Shutdown(SocketShutdown.Send);
        await first.ReadToEndAsync();
        await proxy.Logs.WaitForAsync(Prompt, "closed: client FIN");
        using var third = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await third.SendAsync(new byte[] { 3 });
        Assert.Equal(3, (await third.ReadExactlyAsync(1))[0]);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task MaxConnectionsPerClient_caps_one_client_address_without_touching_another(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(new BindProxy.Configuration.ProxyConfig { Engine = engine, Routes = [new BindProxy.Configuration.RouteConfig
        {
            Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.2", MaxConnectionsPerClient = "1",
        }] });

        async Task<Socket> FromAsync(string address)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Parse(address), 0));
            await socket.ConnectAsync(proxy.Endpoint()).WaitAsync(Prompt);
            return socket;
        }

        using var first = await FromAsync("127.0.0.80");
        await first.SendAsync(new byte[] { 1 });
        await first.ReadExactlyAsync(1);

        SocketError closed;
        try
        {
            using var second = await FromAsync("127.0.0.80");
            closed = await second.WaitForCloseAsync(Prompt);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            closed = SocketError.ConnectionReset;
        }

        Assert.Equal(SocketError.ConnectionReset, closed);
        await proxy.Logs.WaitForAsync(Prompt, "at MaxConnectionsPerClient 1; refused 127.0.0.80:");

        using var other = await FromAsync("127.0.0.81");
        await other.SendAsync(new byte[] { 2 });
        Assert.Equal(2, (await other.ReadExactlyAsync(1))[0]);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task An_idle_connection_is_closed_after_the_routes_IdleTimeout(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(new BindProxy.Configuration.ProxyConfig { Engine = engine, Routes = [new BindProxy.Configuration.RouteConfig
        {
            Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.2", IdleTimeout = "00:00:01",
        }] });

        using var idle = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await idle.SendAsync(new byte[] { 1 });
        await idle.ReadExactlyAsync(1);
        var lastByte = Stopwatch.StartNew();

        // The proxy's own sweeper, once a second, closes it: not before a second without a byte.
        Assert.Equal(SocketError.ConnectionReset, await idle.WaitForCloseAsync(Prompt));
        Assert.True(lastByte.Elapsed >= TimeSpan.FromMilliseconds(950), $"closed {lastByte.ElapsedMilliseconds} ms after its last byte, inside the 1 s IdleTimeout");
        await proxy.Logs.WaitForAsync(Prompt, "closed: idle timeout");

        using var next = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await next.SendAsync(new byte[] { 9 });
        Assert.Equal(9, (await next.ReadExactlyAsync(1))[0]);
    }

    /// <summary>
    /// A byte in one direction alone, at every sweep, keeps a connection from its IdleTimeout for
    /// 3.6 s on the sweeper's clock, while a connection beside it with no byte is closed; once its
    /// bytes stop, it is closed too. The sweeps are the test's own, with the test's clock.
    /// </summary>
    [Theory]
    [MemberData(nameof(Engines.TcpWithFlag), MemberType = typeof(Engines))]
    public async Task Bytes_in_one_direction_alone_keep_a_connection_from_its_IdleTimeout(string engine, bool upward)
    {
        var servers = System.Threading.Channels.Channel.CreateUnbounded<Socket>();
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            servers.Writer.TryWrite(socket);
            await Task.Delay(Timeout.Infinite, ct); // held open until the server stops
        });
        await using var proxy = await TestProxy.StartAsync(
            new BindProxy.Configuration.ProxyConfig { Engine = engine, Routes = [new BindProxy.Configuration.RouteConfig
            {
                Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.2", IdleTimeout = "00:00:01",
            }] },
            services: WithoutSweeper);
        using var reading = new CancellationTokenSource(Prompt);

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        var server = await servers.Reader.ReadAsync(reading.Token);
        using var idle = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await servers.Reader.ReadAsync(reading.Token);
        var (sender, receiver) = upward ? (client, server) : (server, client);

        // Both are in the registry before the first sweep (a connection joins it once its upstream is open).
        await Poll.UntilAsync(() => proxy.Connections.Count == 2, () => $"both connections in the registry; {proxy.Connections.Count} are");
        var sweeper = new BindProxy.Forwarding.ConnectionSweeper(proxy.Connections);
        long now = Environment.TickCount64;
        sweeper.Sweep(now);
        for (int i = 0; i < 12; i++)
        {
            await sender.SendAsync(new[] { (byte)i });
            Assert.Equal((byte)i, (await receiver.ReadExactlyAsync(1, Prompt))[0]);
            sweeper.Sweep(now += 300);
        }

        Assert.Equal(SocketError.ConnectionReset, await idle.WaitForCloseAsync(Prompt));
        await proxy.Logs.WaitForAsync(Prompt, "closed: idle timeout");
        await Poll.UntilAsync(() => proxy.Connections.Count == 1, "the idle connection to leave the registry");
        Assert.Single(proxy.Logs.Messages, m => m.Contains("closed: idle timeout", StringComparison.Ordinal));
        await sender.SendAsync(new byte[] { 99 });
        Assert.Equal(99, (await receiver.ReadExactlyAsync(1, Prompt))[0]);

        // Its bytes stop: a sweep past the IdleTimeout closes it as well.
        sweeper.Sweep(now += 300);
        sweeper.Sweep(now += 1100);
        Assert.Equal(SocketError.ConnectionReset, await client.WaitForCloseAsync(Prompt));
        await Poll.UntilAsync(() => proxy.Logs.Messages.Count(m => m.Contains("closed: idle timeout", StringComparison.Ordinal)) == 2, "the second idle timeout to be logged");
    }

    /// <summary>The proxy without its own sweeper, so a test sweeps with a clock of its own.</summary>
    private static void WithoutSweeper(Microsoft.Extensions.DependencyInjection.IServiceCollection services) =>
        services.Remove(services.Single(d => d.ServiceType == typeof(Microsoft.Extensions.Hosting.IHostedService) && d.ImplementationType == typeof(BindProxy.Forwarding.ConnectionSweeper)));

    [Fact]
    public async Task A_kafka_client_that_stalls_mid_frame_is_closed_after_FrameTimeout()
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(new BindProxy.Configuration.RouteConfig
        {
            Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.2", Protocol = "Kafka", FrameTimeout = "00:00:01",
        });

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.SendAsync(new byte[] { 0, 0, 0, 40, 0, 18 }); // a 40-byte request, 2 bytes of it sent
        Assert.Equal(SocketError.ConnectionReset, await client.WaitForCloseAsync(Prompt));
        await proxy.Logs.WaitForAsync(Prompt, "closed: stalled mid-frame");
    }

    private static async Task<byte[]> SendPatternAsync(Socket socket, long total, int seed, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var random = new Random(seed);
        var chunk = new byte[256 * 1024];
        for (long sent = 0; sent < total; sent += chunk.Length)
        {
            random.NextBytes(chunk);
            hash.AppendData(chunk);
            await socket.SendAsync(chunk, SocketFlags.None, ct);
        }

        return hash.GetHashAndReset();
    }

    private static async Task<(byte[] Hash, long Bytes)> HashUntilFinAsync(Socket socket, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[256 * 1024];
        long total = 0;
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0)
            {
                return (hash.GetHashAndReset(), total);
            }

            hash.AppendData(buffer, 0, n);
            total += n;
        }
    }
}
