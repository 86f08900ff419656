using System.Diagnostics;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Faults;

/// <summary>
/// As in toxiproxy, a toxic added to a route reaches the connections already open on it, whichever
/// engine forwards them, including a route that never had a toxic before.
/// </summary>
public sealed class OpenConnectionToxicTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("pipes")]
    [InlineData("relay")]
    public async Task Latency_added_to_a_route_that_never_had_a_toxic_reaches_its_open_connection(string engine)
    {
        Assert.SkipUnless(engine == "pipes" || BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        double before = await client.MedianRoundTripMsAsync(11);

        await faults.AddToxicAsync("""{"type":"latency","attributes":{"latency":100}}""");
        double after = await client.MedianRoundTripMsAsync(11);
        output.WriteLine($"{engine}: round trip {before:0.0} ms, then {after:0.0} ms with latency 100 added");
        Assert.InRange(after - before, 85, 130);
    }

    /// <summary>A connection that switches to the toxics in the middle of a stream loses and reorders nothing.</summary>
    [Theory]
    [InlineData("pipes")]
    [InlineData("relay")]
    public async Task Every_byte_of_a_stream_crosses_the_switch_to_the_toxics_in_order(string engine)
    {
        Assert.SkipUnless(engine == "pipes" || BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine, admin: true);
        using var client = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint());
        var payload = System.Security.Cryptography.RandomNumberGenerator.GetBytes(6 * 1024 * 1024);
        var stream = EchoTransfer.Start(client, payload, TimeSpan.FromSeconds(30));

        await Poll.UntilAsync(() => stream.Echoed >= payload.Length / 3, "a third of the bytes echoed");
        await faults.AddToxicAsync("""{"type":"slicer","attributes":{"average_size":700,"size_variation":300}}""");
        var back = await stream.CompleteAsync(TimeSpan.FromSeconds(30));
        Assert.True(payload.AsSpan().SequenceEqual(back), "the echo differs from what was sent");

        // And the toxic met it: the connection counts as one the slicer applied to.
        var admin = faults.Proxy.Services.GetRequiredService<BindProxy.Admin.AdminEndpoint>().BoundEndPoint!;
        using var http = new HttpClient { BaseAddress = new Uri($"http://{admin}/") };
        await Poll.UntilAsync(
            async () => (await http.GetStringAsync("metrics")).Split('\n').Any(l => l.StartsWith("bindproxy_faults_applied_total{", StringComparison.Ordinal) && l.Contains("type=\"slicer\"", StringComparison.Ordinal) && l.EndsWith(" 1", StringComparison.Ordinal)),
            "bindproxy_faults_applied_total to count the slicer once");
    }

}
