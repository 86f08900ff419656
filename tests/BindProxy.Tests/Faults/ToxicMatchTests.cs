using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Faults;

/// <summary>A toxic with a <c>match</c> hits only the connections it is aimed at, those opened after it too.</summary>
public sealed class ToxicMatchTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private static async Task<Socket> ConnectFromAsync(IPAddress from, IPEndPoint to)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(to).WaitAsync(Prompt);
        return socket;
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task A_toxic_matched_by_source_address_hits_that_client_alone(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address, engine);
        await faults.AddToxicAsync("""{"type":"latency","attributes":{"latency":100},"match":{"source":"127.0.0.3-127.0.0.4"}}""");
        var (_, toxic) = await faults.SendAsync(HttpMethod.Get, "proxies/test/toxics/latency_downstream");
        Assert.Equal("127.0.0.3-127.0.0.4", toxic.GetProperty("match").GetProperty("source").GetString());

        using var aimed = await ConnectFromAsync(IPAddress.Parse("127.0.0.3"), faults.Proxy.Endpoint());
        using var spared = await ConnectFromAsync(IPAddress.Parse("127.0.0.5"), faults.Proxy.Endpoint());
        double aimedMs = await aimed.MedianRoundTripMsAsync(7);
        double sparedMs = await spared.MedianRoundTripMsAsync(7);
        output.WriteLine($"{engine}: aimed client {aimedMs:0.0} ms, other client {sparedMs:0.0} ms");
        Assert.InRange(aimedMs, 95, 400);
        Assert.True(sparedMs < 50, $"the client the toxic is not aimed at took {sparedMs:0.0} ms");
    }

    [Fact]
    public async Task A_toxic_matched_by_process_hits_that_process_alone()
    {
        var socat = ExternalTool.Require("socat");
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address);
        await faults.AddToxicAsync("""{"type":"limit_data","attributes":{"bytes":3},"match":{"process":"socat"}}""");

        // This process is not socat: it gets every byte.
        using (var own = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint()))
        {
            await own.SendAsync("hello world"u8.ToArray());
            Assert.Equal("hello world"u8.ToArray(), await own.ReadExactlyAsync(11, Prompt));
        }

        var start = new ProcessStartInfo(socat, ["-t", "5", "-", $"TCP:{faults.Proxy.Endpoint()}"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync("hello world");
        await process.StandardInput.FlushAsync();
        process.StandardInput.Close();
        var echoed = await process.StandardOutput.ReadToEndAsync().WaitAsync(Prompt);
        await process.WaitForExitAsync().WaitAsync(Prompt);
        Assert.Equal("hel", echoed);
    }

    [Fact]
    public async Task A_bad_match_gets_a_400()
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address);
        var (status, error) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics", """{"type":"latency","match":{"source":"not-an-address"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("match source", error.GetProperty("error").GetString(), StringComparison.Ordinal);
        (status, error) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics", """{"type":"latency","match":{"client_id":"("}}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("regular expression", error.GetProperty("error").GetString(), StringComparison.Ordinal);
    }
}
