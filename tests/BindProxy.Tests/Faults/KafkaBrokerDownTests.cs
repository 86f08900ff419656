using System.Net;
using System.Net.Sockets;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;
using Confluent.Kafka;

namespace BindProxy.Tests.Faults;

/// <summary>A broker down, as toxiproxy's <c>enabled:false</c> on its broker listener's proxy: refused like a crashed broker, still in metadata.</summary>
public sealed class KafkaBrokerDownTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_disabled_broker_listener_refuses_clients_stays_in_metadata_and_the_client_carries_on_with_the_others()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic("down", 3, 1);
        await using var faults = await FaultProxy.StartAsync(new ProxyConfig
        {
            Routes = [new RouteConfig { Name = KafkaRoute.Name, Listen = "127.0.0.1:0", Upstream = cluster.BrokerAddresses[0], Source = KafkaRoute.Source, Protocol = "Kafka" }],
            Faults = new FaultsConfig { Listen = "127.0.0.1:0" },
        });
        var bootstrap = faults.Proxy.Endpoint(KafkaRoute.Name).ToString();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        var metadata = admin.GetMetadata("down", TimeSpan.FromSeconds(20));
        Assert.Equal(3, metadata.Brokers.Count);

        // Down: a broker that leads a partition and is not the bootstrap's upstream (node 1).
        var partitions = metadata.Topics.Single().Partitions;
        var down = partitions.Select(p => p.Leader).First(leader => leader != 1);
        var alive = partitions.First(p => p.Leader != down).PartitionId;
        var (_, proxies) = await faults.SendAsync(HttpMethod.Get, "proxies");
        var name = $"{KafkaRoute.Name}/broker-{down}";
        var listen = IPEndPoint.Parse(proxies.GetProperty(name).GetProperty("listen").GetString()!);

        var (status, _) = await faults.SendAsync(HttpMethod.Post, $"proxies/{name}", """{"enabled":false}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var refused = await Assert.ThrowsAsync<SocketException>(() => SocketExtensions.ConnectAsync(listen));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        // The cluster still names it, and a client goes on producing through the other brokers.
        var after = admin.GetMetadata("down", TimeSpan.FromSeconds(20));
        Assert.Contains(after.Brokers, b => b.BrokerId == down);
        using var producer = KafkaRoute.Producer(faults.Proxy, "down-producer", c => c.MessageTimeoutMs = 20_000);
        var result = await producer.ProduceAsync(new TopicPartition("down", alive), new Message<string, string> { Key = "k", Value = "v" });
        Assert.Equal(PersistenceStatus.Persisted, result.Status);
        output.WriteLine($"broker {down} down ({listen} refused); produced to partition {alive} through broker {partitions.First(p => p.PartitionId == alive).Leader}");

        // Up again: it listens where it did.
        (status, _) = await faults.SendAsync(HttpMethod.Post, $"proxies/{name}", """{"enabled":true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        using var again = await SocketExtensions.ConnectAsync(listen);
    }
}
