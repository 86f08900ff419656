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
        Assert.NotEmpty(toBrokersWhileConsuming);
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

        cluster.CreateTopicLedByEachBroker("local", 3, 1);

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

    [Fact]
    public async Task Large_messages_pass_intact_through_streamed_requests_and_whole_fetch_responses()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopicLedByEachBroker("large", 3, 1);

        await using var proxy = await StartProxyAsync(cluster);
        using var timeout = new CancellationTokenSource(Timeout);

        // Each Produce request is far above KafkaSession.StreamRequestsAbove, so it is streamed;
        // the Fetch v16+ responses carrying them are walked whole for NodeEndpoints.
        var random = new Random(7);
        var sent = new Dictionary<string, byte[]>();
        using (var producer = new ProducerBuilder<string, byte[]>(new ProducerConfig
        {
            BootstrapServers = proxy.Endpoint("kafka").ToString(),
            ClientId = "large-producer",
            EnableIdempotence = true,
            Acks = Acks.All,
            CompressionType = CompressionType.None,
        }).SetLogHandler((_, _) => { }).Build())
        {
            for (int i = 0; i < 6; i++)
            {
                var value = new byte[200_000 + (i * 120_000)];
                random.NextBytes(value);
                sent[$"big-{i}"] = value;
                var report = await producer.ProduceAsync(new TopicPartition("large", i % 3), new Message<string, byte[]> { Key = $"big-{i}", Value = value }, timeout.Token);
                Assert.Equal(PersistenceStatus.Persisted, report.Status);
            }
        }

        using var consumer = new ConsumerBuilder<string, byte[]>(new ConsumerConfig
        {
            BootstrapServers = proxy.Endpoint("kafka").ToString(),
            ClientId = "large-consumer",
            GroupId = "large-group",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).SetLogHandler((_, _) => { }).Build();
        consumer.Assign(Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset("large", p, Offset.Beginning)));
        var received = new Dictionary<string, byte[]>();
        while (received.Count < sent.Count && !timeout.IsCancellationRequested)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200))?.Message is { } message)
            {
                received[message.Key] = message.Value;
            }
        }

        Assert.Equal(sent.Keys.Order(), received.Keys.Order());
        Assert.All(sent, pair => Assert.True(pair.Value.AsSpan().SequenceEqual(received[pair.Key]), $"{pair.Key} differs after the round trip"));
        Assert.DoesNotContain(proxy.Logs.Messages, m => m.Contains("(client.id large-", StringComparison.Ordinal) && m.Contains(" closed: ", StringComparison.Ordinal) && !m.Contains(" B up, ", StringComparison.Ordinal));
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
