using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Faults;

/// <summary>
/// Each byte toxic does what toxiproxy's does, measured over real loopback sockets on both
/// engines (a connection of a route with a toxic takes the pipe path whatever the engine).
/// </summary>
public sealed class ToxicEffectsTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    /// <summary>Sends <paramref name="payload"/>, then closes (FIN).</summary>
    private static TestServer Sender(byte[] payload) => TestServer.Start(async (socket, ct) =>
    {
        await socket.SendAsync(payload, SocketFlags.None, ct);
        socket.Shutdown(SocketShutdown.Send);
        await socket.ReceiveAsync(new byte[1], SocketFlags.None, ct);
    });

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Latency_100_ms_adds_100_ms_to_the_round_trip(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);

        using var before = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        double baseline = await before.MedianRoundTripMsAsync(11);

        await faults.AddToxicAsync("""{"type":"latency","attributes":{"latency":100}}""");
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        double withToxic = await client.MedianRoundTripMsAsync(11);
        output.WriteLine($"{engine}: round trip {baseline:0.0} ms without, {withToxic:0.0} ms with latency 100: +{withToxic - baseline:0.0} ms");
        Assert.InRange(withToxic - baseline, 85, 115);

        // Removed, it stops at the connection's next chunk.
        await faults.SendAsync(HttpMethod.Delete, "proxies/test/toxics/latency_downstream");
        double after = await client.MedianRoundTripMsAsync(5);
        Assert.True(after < baseline + 50, $"round trip {after:0.0} ms after the toxic was removed");
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Bandwidth_500_KBps_delivers_at_that_rate_within_15_percent(string engine)
    {
        var payload = RandomNumberGenerator.GetBytes(400_000);
        await using var upstream = Sender(payload);
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        await faults.AddToxicAsync("""{"type":"bandwidth","attributes":{"rate":500}}""");

        // Timed from the first bytes, so the connection's setup (slow on a loaded machine) is not
        // counted as bytes delivered slowly.
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        var first = new byte[64 * 1024];
        int firstLength = await client.ReceiveAsync(first, SocketFlags.None);
        long start = Stopwatch.GetTimestamp();
        var rest = await client.ReadToEndAsync();
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double rate = rest.Length / seconds / 1000;
        output.WriteLine($"{engine}: {firstLength} bytes, then {rest.Length} bytes in {seconds:0.000} s = {rate:0.0} KB/s (toxic: 500)");
        Assert.Equal(payload, (byte[])[.. first.AsSpan(0, firstLength), .. rest]);
        Assert.InRange(rest.Length, payload.Length / 2, payload.Length);
        Assert.InRange(rate, 500 * 0.85, 500 * 1.15);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Slicer_leaves_the_bytes_unchanged(string engine)
    {
        var payload = RandomNumberGenerator.GetBytes(20_000);
        await using var upstream = Sender(payload);
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        await faults.AddToxicAsync("""{"type":"slicer","attributes":{"average_size":1000,"size_variation":500,"delay":2000}}""");

        long start = Stopwatch.GetTimestamp();
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        var received = await client.ReadToEndAsync();
        var elapsed = Stopwatch.GetElapsedTime(start);
        output.WriteLine($"{engine}: {received.Length} bytes sliced in {elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(payload, received);

        // At least 13 slices of at most 1500 bytes, each after the first 2 ms behind the one before.
        Assert.True(elapsed >= TimeSpan.FromMilliseconds(24), $"20000 bytes in slices 2 ms apart took only {elapsed.TotalMilliseconds:0} ms");
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Limit_data_closes_the_connection_after_that_many_bytes(string engine)
    {
        var payload = RandomNumberGenerator.GetBytes(5000);
        await using var upstream = Sender(payload);
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        await faults.AddToxicAsync("""{"type":"limit_data","attributes":{"bytes":1000}}""");

        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        var received = await client.ReadToEndAsync(Prompt);
        Assert.Equal(payload[..1000], received);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Reset_peer_resets_the_connection_after_its_timeout(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        await faults.AddToxicAsync("""{"type":"reset_peer","attributes":{"timeout":300}}""");

        long start = Stopwatch.GetTimestamp();
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        Assert.Equal(SocketError.ConnectionReset, await client.WaitForCloseAsync(Prompt));
        var elapsed = Stopwatch.GetElapsedTime(start);
        output.WriteLine($"{engine}: reset after {elapsed.TotalMilliseconds:0} ms (timeout 300)");
        Assert.InRange(elapsed.TotalMilliseconds, 290, 2000);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Timeout_passes_no_data_and_closes_after_its_timeout(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        await faults.AddToxicAsync("""{"type":"timeout","stream":"upstream","attributes":{"timeout":300}}""");

        long start = Stopwatch.GetTimestamp();
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        await client.SendAsync("lost"u8.ToArray());
        var received = await client.ReadToEndAsync(Prompt);
        var elapsed = Stopwatch.GetElapsedTime(start);
        output.WriteLine($"{engine}: closed after {elapsed.TotalMilliseconds:0} ms with {received.Length} bytes (timeout 300)");
        Assert.Empty(received);
        Assert.InRange(elapsed.TotalMilliseconds, 290, 2000);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Timeout_0_holds_the_connection_open_with_no_data(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        await faults.AddToxicAsync("""{"type":"timeout","attributes":{"timeout":0}}""");

        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        await client.SendAsync("lost"u8.ToArray());
        using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.ReceiveAsync(new byte[16], SocketFlags.None, quiet.Token));

        // Removed, the bytes flow again.
        await faults.SendAsync(HttpMethod.Delete, "proxies/test/toxics/timeout_downstream");
        await client.SendAsync("seen"u8.ToArray());
        var echoed = await client.ReadExactlyAsync(4, Prompt);
        Assert.Equal("seen"u8.ToArray(), echoed);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Slow_close_passes_the_FIN_on_late(string engine)
    {
        await using var upstream = Sender("bye"u8.ToArray());
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        await faults.AddToxicAsync("""{"type":"slow_close","attributes":{"delay":300}}""");

        // Timed from before the connection exists: the upstream sends and closes once it is
        // accepted, so its FIN cannot reach the proxy earlier, and the client's FIN is due 300 ms
        // after that. (Timed from the data's arrival instead, the delay already under way while
        // the data crossed a loaded machine would be missed.)
        long start = Stopwatch.GetTimestamp();
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        Assert.Equal("bye"u8.ToArray(), await client.ReadExactlyAsync(3, Prompt));
        var data = Stopwatch.GetElapsedTime(start);
        Assert.Empty(await client.ReadToEndAsync(Prompt));
        var late = Stopwatch.GetElapsedTime(start);
        output.WriteLine($"{engine}: data after {data.TotalMilliseconds:0} ms, FIN after {late.TotalMilliseconds:0} ms (delay 300)");
        Assert.InRange(late.TotalMilliseconds, 295, 2000);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Toxicity_0_leaves_connections_alone(string engine)
    {
        var payload = RandomNumberGenerator.GetBytes(5000);
        await using var upstream = Sender(payload);
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        await faults.AddToxicAsync("""{"type":"limit_data","toxicity":0,"attributes":{"bytes":10}}""");

        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        Assert.Equal(payload, await client.ReadToEndAsync(Prompt));
    }
}
