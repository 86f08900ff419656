using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using BindProxy.Kafka.Protocol;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;

namespace BindProxy.Tests.Cli;

/// <summary>
/// A route that would connect to the proxy itself: refused by <c>check</c> and at startup, and
/// when a loop only shows at run time, that one client is closed with a line while the process's
/// descriptors stay where they were. The real executable.
/// </summary>
public sealed class SelfLoopTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(30);

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static int Descriptors(int pid) => Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;

    [Fact]
    public async Task Check_and_startup_refuse_a_route_whose_upstream_is_the_proxy_itself()
    {
        int port = FreePort(), admin = FreePort();
        var dir = BindProxyCli.TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"), $$"""
            {
              "BindProxy": { "Routes": {
                "self": { "Listen": "127.0.0.1:{{port}}", "Upstream": "localhost:{{port}}", "Source": "127.0.0.2" },
                "status": { "Listen": "127.0.0.1:0", "Upstream": "127.0.0.1:{{admin}}", "Source": "127.0.0.2" } } },
              "Admin": { "Listen": "127.0.0.1:{{admin}}" }
            }
            """);

        foreach (var args in new[] { new[] { "check" }, [] })
        {
            var (exit, output, err) = await BindProxyCli.RunAsync(dir, args);
            Assert.Equal(1, exit);
            Assert.Equal(
                $"error: the configuration has 2 problem(s):\n" +
                $"  route 'self': Upstream: 'localhost' resolves to 127.0.0.1:{port}, which is a listen endpoint of route 'self' of this proxy: every connection would come back into the proxy and connect again, without end\n" +
                $"  route 'status': Upstream: 127.0.0.1:{admin} is the admin endpoint of this proxy: the route would hand its clients to the proxy's own status page",
                err.TrimEnd(), ignoreLineEndingDifferences: true);
            Assert.DoesNotContain("listening on", output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_loop_found_at_run_time_closes_that_client_with_one_line_and_never_multiplies()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "counts descriptors in /proc");

        // A broker that advertises the proxy's own broker port: its broker listener would
        // forward to itself. Nothing in the file says so; it shows only in a Metadata response.
        int brokerPort = FreePort(), bootstrap = FreePort();
        await using var broker = TestServer.Start(async (socket, ct) =>
        {
            var header = new byte[4];
            while (await socket.ReceiveAsync(header.AsMemory(0, 1), SocketFlags.None, ct) == 1)
            {
                (await socket.ReadExactlyAsync(3)).CopyTo(header, 1);
                var size = BinaryPrimitives.ReadInt32BigEndian(header);
                var request = await socket.ReadExactlyAsync(size);
                short version = BinaryPrimitives.ReadInt16BigEndian(request.AsSpan(2));
                await socket.SendAsync(ResponseEncoders.Metadata(version, [new BrokerModel(1, "127.0.0.1", brokerPort, null)]), ct);
            }
        });

        var dir = BindProxyCli.TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"), $$"""
            { "BindProxy": { "Routes": { "kafka": {
                "Listen": "127.0.0.1:{{bootstrap}}", "Upstream": "{{broker.Address}}", "Source": "127.0.0.2",
                "Protocol": "Kafka", "BrokerPorts": "{{brokerPort}}-{{brokerPort}}" } } } }
            """);
        await using var proxy = ProxyProcess.Start(dir);
        await proxy.ListeningAsync("kafka", Prompt);

        using (var client = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, bootstrap)))
        {
            await client.SendAsync(TestSupport.RequestFrame(KafkaApiKeys.Metadata, 1, ResponseEncoders.CorrelationId, "loop-test", w => w.Int32(-1)));
            var size = BinaryPrimitives.ReadInt32BigEndian(await client.ReadExactlyAsync(4, Prompt));
            await client.ReadExactlyAsync(size, Prompt);
        }

        await proxy.WaitForLineAsync($"broker 1 at 127.0.0.1:{brokerPort} is reached through 127.0.0.1:{brokerPort}", Prompt);
        int before = Descriptors(proxy.Id);

        const int Clients = 20;
        for (int i = 0; i < Clients; i++)
        {
            var closed = await SocketExtensions.ConnectAndWaitForCloseAsync(new IPEndPoint(IPAddress.Loopback, brokerPort), TimeSpan.FromSeconds(10));
            Assert.Equal(SocketError.ConnectionReset, closed);
        }

        var loopLine = $"closed: connect failed: 127.0.0.1:{brokerPort} is this proxy's own listener (route kafka/broker-1); connecting would loop back into the proxy";
        await proxy.WaitForLineAsync(loopLine, Prompt);
        Assert.Equal(Clients, await Poll.UntilAsync(() => proxy.Lines.Count(l => l.Contains(loopLine, StringComparison.Ordinal)), n => n >= Clients,
            $"a loop line for each of the {Clients} clients", Prompt));
        Assert.Equal(Clients, proxy.Lines.Count(l => l.Contains("kafka/broker-1: 127.0.0.1:", StringComparison.Ordinal)));

        // Closed clients leave nothing behind: the count settles back to where it was.
        await Poll.UntilAsync(() => Descriptors(proxy.Id), after => after <= before + 2, $"the proxy's descriptors back to at most {before} + 2 (as before the clients)", Prompt);
    }
}
