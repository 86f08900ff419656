using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using BindProxy.Forwarding;
using BindProxy.Tests.Capture;
using BindProxy.Tests.Infrastructure;
using BindProxy.Transport;
using BindProxy.Transport.Linux;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Faults;

/// <summary>
/// A toxic added to a route reaches the connections already open on the relay engine, as in
/// toxiproxy: each moves from its relay to the pipe path with its held bytes, counts and capture,
/// and stays the same registered connection. One that has passed a FIN on finishes on its relay.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class RelayMoveTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(20);

    private static ProxiedConnection Single(FaultProxy faults) => Assert.Single(faults.Proxy.Connections.Snapshot());

    /// <summary>Waits until the connection is on the pipe path, the same registered connection as before.</summary>
    private static Task<IConnectionLegs> MovedAsync(ProxiedConnection live) =>
        Poll.UntilAsync(() => live.Legs, legs => legs is PipeLegs, $"connection {live.Id} to move to the pipe path");

    [Fact]
    public async Task Latency_added_reaches_an_open_relay_connection_and_every_byte_crosses_the_move_in_order()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, "relay");
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        double baseline = await client.MedianRoundTripMsAsync(11);
        var live = Single(faults);
        Assert.IsType<TcpRelay>(live.Legs);

        // A few MB each way, echoed, with the toxic added half way through.
        var payload = RandomNumberGenerator.GetBytes(6 * 1024 * 1024);
        var stream = EchoTransfer.Start(client, payload, Prompt);

        await Poll.UntilAsync(() => stream.Echoed >= payload.Length / 3, "a third of the bytes echoed");
        await faults.AddToxicAsync("""{"type":"latency","attributes":{"latency":100}}""");
        await MovedAsync(live);
        var back = await stream.CompleteAsync(Prompt);
        Assert.True(SHA256.HashData(payload).AsSpan().SequenceEqual(SHA256.HashData(back)), "the echo differs from what was sent");

        double withToxic = await client.MedianRoundTripMsAsync(11);
        output.WriteLine($"round trip {baseline:0.0} ms on the relay, {withToxic:0.0} ms after latency 100 was added: +{withToxic - baseline:0.0} ms");
        Assert.InRange(withToxic - baseline, 85, 115);

        // The same connection, its counts continued across the move.
        Assert.Same(live, Single(faults));
        long sent = payload.Length + 22;
        Assert.Equal(sent, live.BytesToUpstream);
        Assert.Equal(sent, live.BytesToClient);

        client.Shutdown(SocketShutdown.Send);
        Assert.Empty(await client.ReadToEndAsync(Prompt));
        await Poll.UntilAsync(() => faults.Proxy.Connections.Count == 0 && faults.Proxy.CountOf("test") == 0,
            () => $"the moved connection to leave the registry and give its counts back; registry {faults.Proxy.Connections.Count}, route {faults.Proxy.CountOf("test")}");
        // One close line, with the counts of its whole life; the move said once.
        await faults.Proxy.Logs.WaitForAsync(Prompt, "closed: client FIN", $"{sent} B up, {sent} B down");
        Assert.Single(faults.Proxy.Logs.Entries, e => e.EventId == 201);
        Assert.Single(faults.Proxy.Logs.Entries, e => e.EventId == 213);
    }

    [Fact]
    public async Task Bytes_the_relay_holds_for_slow_readers_both_ways_when_it_moves_are_all_delivered()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var up = RandomNumberGenerator.GetBytes(8 * 1024 * 1024);
        var down = RandomNumberGenerator.GetBytes(8 * 1024 * 1024);
        var readUpstream = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var upstreamGot = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);

        // Sends its bytes, and reads the client's only when told to: a slow reader on each side.
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            var sending = socket.SendAsync(down, SocketFlags.None, ct).AsTask();
            await readUpstream.Task.WaitAsync(ct);
            upstreamGot.TrySetResult(await socket.ReadExactlyAsync(up.Length, Prompt));
            await sending;
            socket.Shutdown(SocketShutdown.Send);
            await socket.ReceiveAsync(new byte[1], SocketFlags.None, ct);
        });
        await using var faults = await FaultProxy.StartAsync(upstream.Address, "relay");
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        var sendingUp = client.SendAsync(up, SocketFlags.None);

        var live = (await Poll.UntilAsync(() => faults.Proxy.Connections.Snapshot(), c => c.Count == 1, "the connection registered")).Single();
        var relay = Assert.IsType<TcpRelay>(live.Legs);
        await Poll.UntilAsync(() => relay.HeldForUpstream > 0 && relay.HeldForClient > 0,
            () => $"the relay to hold bytes both ways; {relay.HeldForUpstream} B for the upstream, {relay.HeldForClient} B for the client");
        long heldUp = relay.HeldForUpstream;
        long heldDown = relay.HeldForClient;

        await faults.AddToxicAsync("""{"type":"latency","attributes":{"latency":1}}""");
        await MovedAsync(live);
        output.WriteLine($"moved holding {heldUp} B for the upstream and {heldDown} B for the client");

        readUpstream.SetResult();
        var atClient = await client.ReadExactlyAsync(down.Length, Prompt);
        await sendingUp.WaitAsync(Prompt);
        var atUpstream = await upstreamGot.Task.WaitAsync(Prompt);
        Assert.True(down.AsSpan().SequenceEqual(atClient), "the client did not get the upstream's bytes as sent");
        Assert.True(up.AsSpan().SequenceEqual(atUpstream), "the upstream did not get the client's bytes as sent");

        client.Shutdown(SocketShutdown.Send);
        Assert.Empty(await client.ReadToEndAsync(Prompt));
    }

    [Fact]
    public async Task A_capture_attached_before_the_move_reads_as_clean_TCP_after_it()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, "relay", admin: true);
        var admin = faults.Proxy.Services.GetRequiredService<BindProxy.Admin.AdminEndpoint>().BoundEndPoint!;
        await using var capture = await LiveCapture.StartAsync(admin, "route=test");

        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        var before = RandomNumberGenerator.GetBytes(300_000);
        await client.EchoAsync(before);
        var live = Single(faults);
        Assert.IsType<TcpRelay>(live.Legs);

        await faults.AddToxicAsync("""{"type":"latency","attributes":{"latency":100}}""");
        await MovedAsync(live);
        var after = RandomNumberGenerator.GetBytes(300_000);
        long start = Stopwatch.GetTimestamp();
        await client.EchoAsync(after);
        var elapsed = Stopwatch.GetElapsedTime(start);
        Assert.True(elapsed >= TimeSpan.FromMilliseconds(95), $"an echo after latency 100 was added took {elapsed.TotalMilliseconds:0} ms");

        client.Shutdown(SocketShutdown.Send);
        Assert.Empty(await client.ReadToEndAsync(Prompt));
        await Poll.UntilAsync(() => capture.Packets().Count(p => p.Fin) == 4, () => $"4 FINs in the capture; {capture.Packets().Count(p => p.Fin)}");

        using var dir = new TempDirectory();
        var file = await capture.SaveAsync(dir.Path, "moved.pcapng");
        Assert.Empty(await Tshark.SequenceProblemsAsync(file));
        Assert.Empty(await Tshark.ProblemsAsync(file));
        var streams = await Tshark.StreamsAsync(file);
        Assert.Equal(2, streams.Count);
        byte[] both = [.. before, .. after];
        foreach (var (key, (fromOpener, toOpener)) in streams)
        {
            Assert.True(both.AsSpan().SequenceEqual(fromOpener), $"{key}: {fromOpener.Length} bytes from its opener, {both.Length} sent");
            Assert.True(both.AsSpan().SequenceEqual(toOpener), $"{key}: {toOpener.Length} bytes to its opener, {both.Length} sent");
        }
    }

    [Fact]
    public async Task A_connection_half_closed_before_the_toxic_finishes_on_its_relay_while_an_open_one_moves()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var rest = RandomNumberGenerator.GetBytes(2 * 1024 * 1024);
        var sendRest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Echoes until the client's FIN; then, when told to, sends the rest and closes.
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct)) > 0)
            {
                await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, ct);
            }

            await sendRest.Task.WaitAsync(ct);
            await socket.SendAsync(rest, SocketFlags.None, ct);
            socket.Shutdown(SocketShutdown.Send);
        });
        await using var faults = await FaultProxy.StartAsync(upstream.Address, "relay");
        using var halfClosed = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        await halfClosed.EchoAsync("first"u8.ToArray());
        var finishing = Single(faults);
        halfClosed.Shutdown(SocketShutdown.Send);
        await Poll.UntilAsync(() => finishing.Legs.State, s => s == "half-closed by client", "the relay to pass the client's FIN on");

        using var open = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        await open.EchoAsync("second"u8.ToArray());
        var moving = await Poll.UntilAsync(() => faults.Proxy.Connections.Snapshot().SingleOrDefault(c => c != finishing), c => c is not null, "the second connection registered");

        await faults.AddToxicAsync("""{"type":"latency","attributes":{"latency":100}}""");
        await MovedAsync(moving!);
        Assert.IsType<TcpRelay>(finishing.Legs);

        sendRest.SetResult();
        var received = await halfClosed.ReadToEndAsync(Prompt);
        Assert.True(rest.AsSpan().SequenceEqual(received), $"the half-closed connection got {received.Length} of {rest.Length} bytes, or others");
        Assert.IsType<TcpRelay>(finishing.Legs);
        await Poll.UntilAsync(() => finishing.IsClosed, "the half-closed connection to end on its relay");

        long start = Stopwatch.GetTimestamp();
        await open.EchoAsync("third"u8.ToArray());
        Assert.True(Stopwatch.GetElapsedTime(start) >= TimeSpan.FromMilliseconds(95), "the moved connection's echo was not delayed");
    }

    [Fact]
    public async Task A_toxic_aimed_by_source_moves_only_the_connections_it_could_hit()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, "relay");
        using var aimed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        aimed.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("127.0.0.3"), 0));
        await aimed.ConnectAsync(faults.Proxy.Endpoint());
        using var spared = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        double aimedBefore = await aimed.MedianRoundTripMsAsync(5);
        double sparedBefore = await spared.MedianRoundTripMsAsync(5);
        var live = await Poll.UntilAsync(() => faults.Proxy.Connections.Snapshot(), c => c.Count == 2, "both connections registered");
        var aimedLive = live.Single(c => c.Client.Address.Equals(System.Net.IPAddress.Parse("127.0.0.3")));
        var sparedLive = live.Single(c => c != aimedLive);

        await faults.AddToxicAsync("""{"type":"latency","attributes":{"latency":100},"match":{"source":"127.0.0.3"}}""");
        await MovedAsync(aimedLive);
        double aimedAfter = await aimed.MedianRoundTripMsAsync(5);
        double sparedAfter = await spared.MedianRoundTripMsAsync(5);
        output.WriteLine($"aimed: {aimedBefore:0.0} → {aimedAfter:0.0} ms; spared: {sparedBefore:0.0} → {sparedAfter:0.0} ms");
        Assert.InRange(aimedAfter - aimedBefore, 85, 115);
        Assert.True(sparedAfter < sparedBefore + 30, $"the spared connection's round trip went from {sparedBefore:0.0} to {sparedAfter:0.0} ms");
        Assert.IsType<TcpRelay>(sparedLive.Legs);

        // A toxic it could meet moves it too.
        await faults.AddToxicAsync("""{"name":"everyone","type":"latency","stream":"upstream","attributes":{"latency":50}}""");
        await MovedAsync(sparedLive);
        double sparedLast = await spared.MedianRoundTripMsAsync(5);
        Assert.InRange(sparedLast - sparedBefore, 40, 65);
    }

    [Fact]
    public async Task A_moved_connection_is_reset_when_its_proxy_is_disabled_and_leaves_the_registry()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, "relay");
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        await client.EchoAsync("before"u8.ToArray());
        var live = Single(faults);
        await faults.AddToxicAsync("""{"type":"latency","attributes":{"latency":10}}""");
        await MovedAsync(live);
        await client.EchoAsync("after"u8.ToArray());

        var (status, _) = await faults.SendAsync(HttpMethod.Post, "proxies/test", """{"enabled":false}""");
        Assert.Equal(System.Net.HttpStatusCode.OK, status);
        Assert.Equal(SocketError.ConnectionReset, await client.WaitForCloseAsync(Prompt));
        await Poll.UntilAsync(() => live.IsClosed && faults.Proxy.CountOf("test") == 0, "the moved connection to leave the registry");
        Assert.Equal(CloseReason.ProxyAborted, live.ProxyReason);
    }

    [Fact]
    public async Task Bandwidth_added_to_a_live_bulk_transfer_slows_it_to_its_rate()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var flooded = new TestServer.SentCounter();
        await using var upstream = TestServer.Flood(flooded);
        await using var faults = await FaultProxy.StartAsync(upstream.Address, "relay");
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        long received = 0;
        using var stop = new CancellationTokenSource();
        var reading = Task.Run(async () =>
        {
            var buffer = new byte[256 * 1024];
            try
            {
                int n;
                while ((n = await client.ReceiveAsync(buffer, SocketFlags.None, stop.Token)) > 0)
                {
                    Interlocked.Add(ref received, n);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });

        // Fast on the relay: 20 MB in well under the 40 s that 500 KB/s would take.
        long startedAt = Stopwatch.GetTimestamp();
        await Poll.UntilAsync(() => Interlocked.Read(ref received) >= 20_000_000, "20 MB through the relay");
        double before = Interlocked.Read(ref received) / Stopwatch.GetElapsedTime(startedAt).TotalSeconds / 1000;
        var live = Single(faults);

        await faults.AddToxicAsync("""{"type":"bandwidth","attributes":{"rate":500}}""");
        await MovedAsync(live);

        // What the kernel's buffers held at the move arrives at once; then the toxic's rate, over a
        // whole second (a window that still has such a burst in it is not the one measured).
        double rate = 0;
        (long Bytes, long At) window = (Interlocked.Read(ref received), Stopwatch.GetTimestamp());
        await Poll.UntilAsync(() =>
        {
            var elapsed = Stopwatch.GetElapsedTime(window.At);
            if (elapsed < TimeSpan.FromSeconds(1))
            {
                return false;
            }

            long now = Interlocked.Read(ref received);
            rate = (now - window.Bytes) / elapsed.TotalSeconds / 1000;
            window = (now, Stopwatch.GetTimestamp());
            return rate <= 500 * 1.15;
        }, () => $"the transfer to slow to 500 KB/s; last second {rate:0} KB/s", TimeSpan.FromSeconds(15));
        output.WriteLine($"{before:0} KB/s on the relay, {rate:0} KB/s after bandwidth 500 was added");
        Assert.InRange(rate, 500 * 0.5, 500 * 1.15);
        Assert.True(before > 5000, $"{before:0} KB/s on the relay");

        await stop.CancelAsync();
        await reading.WaitAsync(Prompt);
    }
}
