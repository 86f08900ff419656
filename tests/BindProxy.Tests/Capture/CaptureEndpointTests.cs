using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using BindProxy.Configuration;
using BindProxy.Tests.Admin;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Capture;

/// <summary>
/// <c>GET /api/capture</c> on both engines: a selector that matches nothing yet waits, picks exactly
/// the matching connections, and a capture begun mid-connection opens cleanly with the bytes from then on.
/// </summary>
public sealed class CaptureEndpointTests
{
    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Captures_by_source_and_by_connection_pick_exactly_theirs_and_read_as_clean_TCP(string engine)
    {
        await using var upstream = TestServer.Echo();
        var config = new ProxyConfig
        {
            Engine = engine,
            Admin = new AdminConfig { Listen = "127.0.0.1:0" },
            Routes = [new RouteConfig { Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.2-127.0.0.3" }],
        };
        await using var proxy = await TestProxy.StartAsync(config);
        var admin = proxy.Services.GetRequiredService<BindProxy.Admin.AdminEndpoint>().BoundEndPoint!;

        // Waits: nothing is open yet.
        await using var bySource = await LiveCapture.StartAsync(admin, "source=127.0.0.3");

        using var first = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        using var second = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        var before = Encoding.ASCII.GetBytes("before the second capture");
        await first.EchoAsync(before);
        await second.EchoAsync(before);
        var live = await Poll.UntilAsync(() => proxy.Connections.Snapshot(), c => c.Count == 2, "both connections registered");
        var onThree = live.Single(c => c.Source.Address.Equals(IPAddress.Parse("127.0.0.3")));
        var onTwo = live.Single(c => c != onThree);
        var (three, two) = onThree.Client.Port == ((IPEndPoint)first.LocalEndPoint!).Port ? (first, second) : (second, first);

        // Begun mid-connection, on the connection from .2 only.
        await using var byConnection = await LiveCapture.StartAsync(admin, $"connection={onTwo.Id}");
        var after = Encoding.ASCII.GetBytes(new string('x', 100_000));
        await three.EchoAsync(after);
        await two.EchoAsync(after);
        three.Shutdown(SocketShutdown.Send);
        two.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await three.ReceiveAsync(new byte[1]));
        Assert.Equal(0, await two.ReceiveAsync(new byte[1]));

        // Each capture has both legs' FINs both ways (4 FINs) once everything reached it.
        await Poll.UntilAsync(() => bySource.Packets().Count(p => p.Fin) == 4, () => $"4 FINs in the capture by source; {bySource.Packets().Count(p => p.Fin)}");
        await Poll.UntilAsync(() => byConnection.Packets().Count(p => p.Fin) == 4, () => $"4 FINs in the capture by connection; {byConnection.Packets().Count(p => p.Fin)}");

        using var dir = new TempDirectory();
        foreach (var (capture, connection, sent) in new[] { (bySource, onThree, (byte[])[.. before, .. after]), (byConnection, onTwo, after) })
        {
            var packets = capture.Packets();
            Assert.All(packets, p => Assert.True(
                p.Between(connection.Client, connection.Listener) || p.Between(connection.Source, connection.Upstream),
                $"{p.From} → {p.To} is not connection {connection.Id}'s"));

            var file = await capture.SaveAsync(dir.Path, $"capture-{connection.Id}.pcapng");
            Assert.Empty(await Tshark.ProblemsAsync(file));
            var streams = await Tshark.StreamsAsync(file);
            Assert.Equal(2, streams.Count);
            foreach (var (key, (fromOpener, toOpener)) in streams)
            {
                // A send completes (and is reported) a moment after its bytes arrive: the end of the
                // echo of what came before may be reported after a capture begun meanwhile started.
                Assert.True(From(fromOpener, sent, before), $"connection {connection.Id}, {key}: {fromOpener.Length} bytes from its opener, {sent.Length} sent");
                Assert.True(From(toOpener, sent, before), $"connection {connection.Id}, {key}: {toOpener.Length} bytes to its opener, {sent.Length} sent");
            }
        }

        Assert.Contains(byConnection.Packets(), p => p.Comment?.Contains("open before the capture began", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task A_capture_ends_at_its_packet_limit_and_a_bad_query_is_named()
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await AdminProxy.StartAsync(AdminProxy.Route("test", upstream));
        using var bad = await proxy.Http.GetAsync("api/capture?legs=sideways&seconds=-1&colour=red");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var text = await bad.Content.ReadAsStringAsync();
        Assert.Contains("legs: 'sideways'", text, StringComparison.Ordinal);
        Assert.Contains("seconds: '-1'", text, StringComparison.Ordinal);
        Assert.Contains("unknown parameter 'colour'", text, StringComparison.Ordinal);

        await using var capture = await LiveCapture.StartAsync(proxy.Admin, "route=test&legs=client&packets=5");
        using var client = await SocketExtensions.ConnectAsync(proxy.Proxy.Endpoint("test"));
        for (int i = 0; i < 10 && !capture.Ended; i++)
        {
            await client.EchoAsync(Encoding.ASCII.GetBytes($"message {i}"));
        }

        await Poll.UntilAsync(() => capture.Ended, "the capture to end at its limit");
        var packets = capture.Packets();
        Assert.InRange(packets.Count, 5, 7); // a limit is checked between reads, each a few packets
        Assert.All(packets, p => Assert.True(p.To.Port == proxy.Proxy.Endpoint("test").Port || p.From.Port == proxy.Proxy.Endpoint("test").Port));
        Assert.Single(Tshark.Statistics(capture.Bytes()));
    }

    [Fact]
    public async Task A_waiting_capture_does_not_hold_up_the_proxy_stopping()
    {
        await using var upstream = TestServer.Echo();
        var proxy = await AdminProxy.StartAsync(AdminProxy.Route("test", upstream));
        await using var capture = await LiveCapture.StartAsync(proxy.Admin, "client=nobody-yet");
        var stopped = System.Diagnostics.Stopwatch.StartNew();
        await proxy.DisposeAsync();
        // TestProxy gives a stop 2 s before it cancels it: a stop that waited for the capture takes all of them.
        Assert.True(stopped.Elapsed < TimeSpan.FromSeconds(1.9), $"stopping took {stopped.Elapsed}");
        await Poll.UntilAsync(() => capture.Ended, "the capture to end with the proxy");
    }

    /// <summary><paramref name="captured"/> is <paramref name="sent"/>, perhaps after the end of <paramref name="earlier"/>.</summary>
    private static bool From(byte[] captured, byte[] sent, byte[] earlier) =>
        captured.AsSpan().EndsWith(sent) && captured.Length - sent.Length <= earlier.Length &&
        earlier.AsSpan().EndsWith(captured.AsSpan(0, captured.Length - sent.Length));
}
