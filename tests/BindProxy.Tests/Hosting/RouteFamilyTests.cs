using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using BindProxy.Admin;
using BindProxy.Kafka.Protocol;
using BindProxy.Tests.Admin;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Hosting;

/// <summary>
/// A Kafka route and the broker listeners it opened are one family: removing or editing the route
/// in the file removes or changes all of it, with the clients of its brokers connected.
/// </summary>
public sealed class RouteFamilyTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A broker stand-in that answers every request with a Metadata response naming itself as
    /// broker 1 (or the brokers <paramref name="brokers"/> makes of its port); enough for the proxy
    /// to open broker listeners that forward to it.
    /// </summary>
    private static TestServer FakeBroker(Func<int, BrokerModel[]>? brokers = null) => TestServer.Start(async (socket, ct) =>
    {
        int self = ((IPEndPoint)socket.LocalEndPoint!).Port;
        brokers ??= port => [new BrokerModel(1, "127.0.0.1", port, null)];
        var prefix = new byte[4];
        while (await socket.ReceiveAsync(prefix.AsMemory(0, 1), SocketFlags.None, ct) == 1)
        {
            (await socket.ReadExactlyAsync(3)).CopyTo(prefix, 1);
            var request = await socket.ReadExactlyAsync(BinaryPrimitives.ReadInt32BigEndian(prefix));
            short version = BinaryPrimitives.ReadInt16BigEndian(request.AsSpan(2));
            await socket.SendAsync(ResponseEncoders.Metadata(version, brokers(self)), ct);
        }
    });

    private static string Config(TestServer broker, TestServer echo, bool withKafka, string kafkaExtra = "") =>
        "{ \"BindProxy\": { \"DrainTimeout\": \"00:00:01\", \"Routes\": { " +
        (withKafka
            ? $"\"kafka\": {{ \"Listen\": \"127.0.0.1:0\", \"Upstream\": \"{broker.Address}\", \"Source\": \"127.0.0.2\", \"Protocol\": \"Kafka\"{kafkaExtra} }}, "
            : "") +
        $"\"other\": {{ \"Listen\": \"127.0.0.1:0\", \"Upstream\": \"{echo.Address}\", \"Source\": \"127.0.0.2\" }} }} }}, " +
        "\"Admin\": { \"Listen\": \"127.0.0.1:0\" } }";

    /// <summary>Sends a Metadata v1 request and returns the first broker's address in the answer.</summary>
    private static async Task<(string Host, int Port)> MetadataAsync(Socket client)
    {
        var (_, host, port) = (await BrokersAsync(client))[0];
        return (host, port);
    }

    /// <summary>Sends a Metadata v1 request and returns the brokers in the answer.</summary>
    private static async Task<List<(int NodeId, string Host, int Port)>> BrokersAsync(Socket client)
    {
        await client.SendAsync(TestSupport.RequestFrame(KafkaApiKeys.Metadata, 1, ResponseEncoders.CorrelationId, "family-test", w => w.Int32(-1)));
        var size = BinaryPrimitives.ReadInt32BigEndian(await client.ReadExactlyAsync(4, Prompt));
        var body = await client.ReadExactlyAsync(size, Prompt);

        // correlation_id int32 | brokers int32 count | [node_id int32 | host int16 length, bytes | port int32 | rack int16 length, bytes]
        var brokers = new List<(int, string, int)>();
        int at = 8;
        for (int i = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(4)); i > 0; i--)
        {
            int nodeId = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(at));
            int hostLength = BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(at + 4));
            var host = Encoding.UTF8.GetString(body, at + 6, hostLength);
            int port = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(at + 6 + hostLength));
            int rackLength = BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(at + 10 + hostLength));
            at += 12 + hostLength + Math.Max(0, rackLength);
            brokers.Add((nodeId, host, port));
        }

        return brokers;
    }

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static HttpClient AdminClient(TestProxy proxy) =>
        new() { BaseAddress = new Uri($"http://{proxy.Services.GetRequiredService<AdminEndpoint>().BoundEndPoint}/"), Timeout = Prompt };

    private static async Task<JsonElement> JsonAsync(HttpClient admin, string path)
    {
        using var document = JsonDocument.Parse(await admin.GetStringAsync(path));
        return document.RootElement.Clone();
    }

    /// <summary>The names of the routes /api/routes lists, with each one's parent.</summary>
    private static async Task<List<(string Name, string? Parent, string Sources, string[] Bound)>> RoutesAsync(HttpClient admin) =>
        [.. (await JsonAsync(admin, "api/routes")).EnumerateArray().Select(r => (
            r.GetProperty("name").GetString()!,
            r.GetProperty("parent").ValueKind == JsonValueKind.String ? r.GetProperty("parent").GetString() : null,
            r.GetProperty("sources").GetString()!,
            r.GetProperty("bound").EnumerateArray().Select(b => b.GetString()!).ToArray()))];

    /// <summary>
    /// A proxy serving the file's "kafka" and "other" routes in front of a broker stand-in, with
    /// broker 1's listener open and one client on the bootstrap and one on the broker, connected.
    /// </summary>
    private sealed class KafkaFamily(TestServer broker, TestServer echo, TempDirectory temp, TestProxy proxy,
        Socket bootstrapClient, Socket brokerClient, IPEndPoint brokerListener) : IAsyncDisposable
    {
        public TestServer Broker => broker;

        public TestServer Echo => echo;

        public TestProxy Proxy => proxy;

        public Socket BootstrapClient => bootstrapClient;

        public Socket BrokerClient => brokerClient;

        public IPEndPoint BrokerListener => brokerListener;

        public HttpClient Admin { get; } = AdminClient(proxy);

        private static string FileIn(TempDirectory temp) => Path.Combine(temp.Path, "appsettings.json");

        public static async Task<KafkaFamily> StartAsync()
        {
            var broker = FakeBroker();
            var echo = TestServer.Echo();
            var temp = new TempDirectory();
            await File.WriteAllTextAsync(FileIn(temp), Config(broker, echo, withKafka: true), TestContext.Current.CancellationToken);
            var proxy = await TestProxy.StartFromFileAsync(FileIn(temp));
            var bootstrap = await SocketExtensions.ConnectAsync(proxy.Endpoint("kafka"));
            var (_, brokerPort) = await MetadataAsync(bootstrap);
            var listener = new IPEndPoint(IPAddress.Loopback, brokerPort);
            var onBroker = await SocketExtensions.ConnectAsync(listener);
            var family = new KafkaFamily(broker, echo, temp, proxy, bootstrap, onBroker, listener);
            await MetadataAsync(onBroker);
            await Poll.UntilAsync(() => proxy.Connections.Count == 2, "the bootstrap and the broker connection in the registry");
            return family;
        }

        public Task WriteAsync(string config) => File.WriteAllTextAsync(FileIn(temp), config, TestContext.Current.CancellationToken);

        public async ValueTask DisposeAsync()
        {
            Admin.Dispose();
            brokerClient.Dispose();
            bootstrapClient.Dispose();
            await proxy.DisposeAsync();
            await echo.DisposeAsync();
            await broker.DisposeAsync();
            temp.Dispose();
        }
    }

    [Fact]
    public async Task A_removed_Kafka_route_closes_its_broker_listeners_drains_their_connections_and_leaves_the_api()
    {
        await using var family = await KafkaFamily.StartAsync();
        var (proxy, admin, broker, echo) = (family.Proxy, family.Admin, family.Broker, family.Echo);
        var (bootstrapClient, brokerClient, brokerListener) = (family.BootstrapClient, family.BrokerClient, family.BrokerListener);
        var routesBefore = await RoutesAsync(admin);
        Assert.Contains(routesBefore, r => r is { Name: "kafka/broker-1", Parent: "kafka" });

        await family.WriteAsync(Config(broker, echo, withKafka: false));
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route kafka removed");
        var removed = Stopwatch.StartNew();

        // Both connections of the family are reset when the 1 s drain is over, the broker's too.
        var bootstrapClosed = bootstrapClient.WaitForCloseAsync(TimeSpan.FromSeconds(4));
        var brokerClosed = brokerClient.WaitForCloseAsync(TimeSpan.FromSeconds(4));
        Assert.Equal(SocketError.ConnectionReset, await brokerClosed);
        Assert.Equal(SocketError.ConnectionReset, await bootstrapClosed);
        Assert.InRange(removed.Elapsed, TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(4));
        await proxy.Logs.WaitForAsync(Prompt, "Route kafka (removed): 2 connection(s) still open after the 1 s drain; aborted");

        // The broker listener is closed, and nothing of the family is left in the API.
        var refused = await Assert.ThrowsAsync<SocketException>(() => SocketExtensions.ConnectAsync(brokerListener));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        await Poll.UntilAsync(() => proxy.Connections.Count == 0, "no connection left in the registry");
        Assert.Equal(["other"], (await RoutesAsync(admin)).Select(r => r.Name));
        Assert.Empty((await JsonAsync(admin, "api/connections")).EnumerateArray());

        // Metrics: the family's live series are gone; what it did stays counted.
        var samples = PrometheusText.Samples(await admin.GetStringAsync("metrics"));
        Assert.DoesNotContain(samples, s => s.Name == "bindproxy_connections_active" && s.Labels["route"].StartsWith("kafka", StringComparison.Ordinal));
        Assert.DoesNotContain(samples, s => s.Name == "bindproxy_forwarded_bytes_total" && s.Labels["route"].StartsWith("kafka", StringComparison.Ordinal));
        Assert.Contains(samples, s => s.Name == "bindproxy_connections_closed_total" && s.Labels["route"] == "kafka/broker-1" && s.Labels["reason"] == "proxy_aborted");
    }

    [Fact]
    public async Task An_edited_Kafka_route_changes_its_open_broker_listeners_which_keep_their_ports()
    {
        await using var family = await KafkaFamily.StartAsync();
        var (proxy, admin, broker, echo) = (family.Proxy, family.Admin, family.Broker, family.Echo);
        var (bootstrapClient, brokerClient, brokerListener) = (family.BootstrapClient, family.BrokerClient, family.BrokerListener);

        await family.WriteAsync(Config(broker, echo, withKafka: true, ", \"Source\": \"127.0.0.3\", \"AdvertisedHost\": \"localhost\"")
            .Replace("\"Source\": \"127.0.0.2\", \"Protocol\": \"Kafka\"", "\"Protocol\": \"Kafka\"", StringComparison.Ordinal));
        var line = await proxy.Logs.WaitForAsync(Prompt, "Reload: route kafka changed: ");
        Assert.Contains("Source 127.0.0.2 → 127.0.0.3", line, StringComparison.Ordinal);
        Assert.Contains("AdvertisedHost (default) → localhost", line, StringComparison.Ordinal);
        Assert.DoesNotContain(proxy.Logs.Messages, m => m.Contains("next restart", StringComparison.Ordinal) || m.Contains("keep their", StringComparison.Ordinal));

        // A new connection to the broker's listener (same port) leaves from the new source and is told the new host.
        using (var again = await SocketExtensions.ConnectAsync(brokerListener))
        {
            Assert.Equal(("localhost", brokerListener.Port), await MetadataAsync(again));
        }

        Assert.Contains(broker.Accepted, e => e.Address.Equals(IPAddress.Parse("127.0.0.3")));
        var child = Assert.Single(await RoutesAsync(admin), r => r.Parent == "kafka");
        Assert.Equal(("kafka/broker-1", "127.0.0.3"), (child.Name, child.Sources));
        Assert.Equal([brokerListener.ToString()], child.Bound);

        // Established connections keep what they had.
        Assert.Equal(("127.0.0.1", brokerListener.Port), await MetadataAsync(brokerClient));
    }

    [Fact]
    public async Task BrokerPorts_and_AllowedBrokers_edits_reach_the_brokers_of_the_route()
    {
        // Broker 2 appears later, advertised under another name for the same stand-in.
        bool second = false;
        await using var broker = FakeBroker(port => Volatile.Read(ref second)
            ? [new BrokerModel(1, "127.0.0.1", port, null), new BrokerModel(2, "localhost", port, null)]
            : [new BrokerModel(1, "127.0.0.1", port, null)]);
        await using var echo = TestServer.Echo();
        using var temp = new TempDirectory();
        var file = Path.Combine(temp.Path, "appsettings.json");
        int p1 = FreePort(), p2 = FreePort();
        await File.WriteAllTextAsync(file, Config(broker, echo, withKafka: true, $", \"BrokerPorts\": \"{p1}-{p1}\""), TestContext.Current.CancellationToken);
        await using var proxy = await TestProxy.StartFromFileAsync(file);
        using (var client = await SocketExtensions.ConnectAsync(proxy.Endpoint("kafka")))
        {
            Assert.Equal([(1, "127.0.0.1", p1)], await BrokersAsync(client));
        }

        // A new range: the known broker keeps its port, the next one discovered gets the new range's first.
        await File.WriteAllTextAsync(file, Config(broker, echo, withKafka: true, $", \"BrokerPorts\": \"{p2}-{p2}\""), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route kafka changed: BrokerPorts");
        Volatile.Write(ref second, true);
        using (var client = await SocketExtensions.ConnectAsync(proxy.Endpoint("kafka")))
        {
            Assert.Equal([(1, "127.0.0.1", p1), (2, "127.0.0.1", p2)], await BrokersAsync(client));
        }

        using var onBroker2 = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, p2));
        await BrokersAsync(onBroker2);

        // A narrower allowlist: the broker outside it loses its listener, its connection is drained
        // (1 s, then reset), and a response that names it again closes its client.
        await File.WriteAllTextAsync(file, Config(broker, echo, withKafka: true, $", \"BrokerPorts\": \"{p2}-{p2}\", \"AllowedBrokers\": \"127.0.0.1\""), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, "Route kafka/broker-2: listener closed: its broker localhost is not in AllowedBrokers (127.0.0.1) any more");
        Assert.Equal(SocketError.ConnectionReset, await onBroker2.WaitForCloseAsync(Prompt));
        var refused = await Assert.ThrowsAsync<SocketException>(() => SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, p2)));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        using (var client = await SocketExtensions.ConnectAsync(proxy.Endpoint("kafka")))
        {
            await client.SendAsync(TestSupport.RequestFrame(KafkaApiKeys.Metadata, 1, ResponseEncoders.CorrelationId, "family-test", w => w.Int32(-1)));
            Assert.Equal(SocketError.ConnectionReset, await client.WaitForCloseAsync(Prompt));
        }

        await proxy.Logs.WaitForAsync(Prompt, "broker 2 advertises localhost:", "which is not in AllowedBrokers (127.0.0.1)");
        using var admin = AdminClient(proxy);
        Assert.Single(await RoutesAsync(admin), r => r.Parent == "kafka");
    }
}
