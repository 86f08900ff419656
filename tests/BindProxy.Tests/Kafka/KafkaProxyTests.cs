using System.Net;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>Unmodified Confluent.Kafka clients through a Kafka route, against librdkafka's 3-broker mock cluster.</summary>
public sealed class KafkaProxyTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static async Task<TestProxy> StartProxyAsync(MockCluster cluster, string source = "127.0.0.2", string? brokerPorts = null) =>
        await TestProxy.StartAsync(new RouteConfig
        {
            Name = "kafka",
            Listen = "127.0.0.1:0",
            Upstream = cluster.BrokerAddresses[0],
            Source = source,
            Protocol = "Kafka",
            BrokerPorts = brokerPorts,
        });

    private static IReadOnlyList<int> BrokerPorts(MockCluster cluster) =>
        [.. cluster.BrokerAddresses.Select(a => int.Parse(a[(a.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture))];

    [Fact]
    public async Task Produce_and_consume_through_the_proxy_with_every_broker_connection_from_the_source_address()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic("orders", partitions: 6, replicationFactor: 3);
        for (int p = 0; p < 6; p++)
        {
            cluster.SetLeader("orders", p, (p % 3) + 1);
        }

        await using var proxy = await StartProxyAsync(cluster);
        var bootstrap = proxy.Endpoint("kafka").ToString();
        using var timeout = new CancellationTokenSource(Timeout);

        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            ClientId = "orders-producer",
            EnableIdempotence = true,
            Acks = Acks.All,
        }).Build())
        {
            for (int i = 0; i < 60; i++)
            {
                var report = await producer.ProduceAsync("orders", new Message<string, string> { Key = $"k{i}", Value = $"v{i}" }, timeout.Token);
                Assert.Equal(PersistenceStatus.Persisted, report.Status);
            }

            // While the client is connected: no connection of this process reaches a broker port
            // except the proxy's, and those all leave from the route's source address.
            var toBrokers = SocketTable.ConnectionsTo(BrokerPorts(cluster));
            Assert.NotEmpty(toBrokers);
            Assert.All(toBrokers, c => Assert.Equal(IPAddress.Parse("127.0.0.2"), c.Local.Address));
            Assert.Equal(3, toBrokers.Select(c => c.Remote.Port).Distinct().Count());
        }

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            ClientId = "orders-consumer",
            GroupId = "orders-group",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).Build();
        consumer.Subscribe("orders");
        var values = new HashSet<string>();
        while (values.Count < 60 && !timeout.IsCancellationRequested)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200))?.Message is { } message)
            {
                values.Add(message.Value);
            }
        }

        Assert.Equal(60, values.Count);
        var toBrokersWhileConsuming = SocketTable.ConnectionsTo(BrokerPorts(cluster));
        Assert.All(toBrokersWhileConsuming, c => Assert.Equal(IPAddress.Parse("127.0.0.2"), c.Local.Address));
        consumer.Close();

        // Three broker listeners were opened, and the client.id shows in the close lines.
        Assert.Equal(3, proxy.Logs.Messages.Count(m => m.Contains("is reached through", StringComparison.Ordinal)));
        await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(10), "closed", "client.id orders-producer");
    }

    [Fact]
    public async Task Broker_ports_come_from_the_configured_range_in_discovery_order()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic("t", partitions: 3, replicationFactor: 1);
        int basePort = FreePortRange(3);
        await using var proxy = await StartProxyAsync(cluster, brokerPorts: $"{basePort}-{basePort + 2}");

        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = proxy.Endpoint("kafka").ToString() }).Build();
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(20));
        Assert.Equal(3, metadata.Brokers.Count);
        Assert.All(metadata.Brokers, b => Assert.Equal("127.0.0.1", b.Host));
        Assert.Equal([basePort, basePort + 1, basePort + 2], metadata.Brokers.Select(b => b.Port).Order());
    }

    [Fact]
    public async Task Brokers_advertising_localhost_are_reached_from_the_source_address()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        var ports = BrokerPorts(cluster);
        for (int id = 1; id <= 3; id++)
        {
            // Still listening on 127.0.0.1; only what Metadata says changes. localhost may resolve to ::1 first.
            cluster.SetHostPort(id, "localhost", ports[id - 1]);
        }

        cluster.CreateTopic("local", partitions: 3, replicationFactor: 1);
        for (int p = 0; p < 3; p++)
        {
            cluster.SetLeader("local", p, p + 1);
        }

        await using var proxy = await StartProxyAsync(cluster);
        using var timeout = new CancellationTokenSource(Timeout);
        using (var producer = KafkaRoute.Producer(proxy, "local-producer"))
        {
            for (int i = 0; i < 30; i++)
            {
                var report = await producer.ProduceAsync(new TopicPartition("local", i % 3), new Message<string, string> { Key = $"k{i}", Value = $"local-{i}" }, timeout.Token);
                Assert.Equal(PersistenceStatus.Persisted, report.Status);
            }

            var toBrokers = SocketTable.ConnectionsTo(ports);
            Assert.Equal(3, toBrokers.Select(c => c.Remote.Port).Distinct().Count());
            Assert.All(toBrokers, c => Assert.Equal(IPAddress.Parse("127.0.0.2"), c.Local.Address));
        }

        for (int id = 1; id <= 3; id++)
        {
            await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(5), $"broker {id} at localhost:{ports[id - 1]} is reached through");
        }

        var read = KafkaRoute.ReadAll(proxy, "local", 3, TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, 30).Select(i => $"local-{i}").Order(), read.Select(r => r.Value).Order());
    }

    private static int FreePortRange(int count)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int start = Random.Shared.Next(20000, 30000);
            var sockets = new List<System.Net.Sockets.Socket>();
            try
            {
                for (int i = 0; i < count; i++)
                {
                    var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                    sockets.Add(s);
                    s.Bind(new IPEndPoint(IPAddress.Loopback, start + i));
                }

                return start;
            }
            catch (System.Net.Sockets.SocketException)
            {
            }
            finally
            {
                sockets.ForEach(s => s.Dispose());
            }
        }

        throw new InvalidOperationException("no free port range");
    }
}
