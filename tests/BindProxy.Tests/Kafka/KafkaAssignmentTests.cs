using System.Net;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>Several unmodified Kafka clients on one proxy port, told apart by client.id.</summary>
public sealed class KafkaAssignmentTests
{
    [Fact]
    public async Task Each_client_id_gets_its_own_address_for_the_bootstrap_and_every_broker()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic("shared", partitions: 3, replicationFactor: 3);
        for (int p = 0; p < 3; p++)
        {
            cluster.SetLeader("shared", p, p + 1);
        }

        await using var proxy = await TestProxy.StartAsync(new RouteConfig
        {
            Name = "kafka",
            Listen = "127.0.0.1:0",
            Upstream = cluster.BrokerAddresses[0],
            Source = "127.0.0.2-127.0.0.9",
            Protocol = "Kafka",
            Assign = "kafka-client-id",
            ClientIds = new Dictionary<string, string?> { ["billing"] = "127.0.0.7" },
        });
        var bootstrap = proxy.Endpoint("kafka").ToString();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        IProducer<string, string> Producer(string clientId) => new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            ClientId = clientId,
            Acks = Acks.All,
        }).Build();

        using var billing = Producer("billing");
        using var shipping = Producer("shipping");
        for (int i = 0; i < 12; i++)
        {
            foreach (var producer in new[] { billing, shipping })
            {
                await producer.ProduceAsync(new TopicPartition("shared", i % 3), new Message<string, string> { Key = "k", Value = $"{producer.Name}-{i}" }, timeout.Token);
            }
        }

        // Every proxied connection of a client (bootstrap and all three brokers) left from one address.
        var connections = proxy.Connections.Snapshot().Where(c => c.Kafka?.ClientId is not null).ToList();
        var byClient = connections.GroupBy(c => c.Kafka!.ClientId!).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(["billing", "shipping"], byClient.Keys.Order());
        Assert.All(byClient["billing"], c => Assert.Equal(IPAddress.Parse("127.0.0.7"), c.Source.Address));
        var shippingSources = byClient["shipping"].Select(c => c.Source.Address).Distinct().ToList();
        Assert.Single(shippingSources);
        Assert.NotEqual(IPAddress.Parse("127.0.0.7"), shippingSources[0]);
        foreach (var client in byClient.Values)
        {
            Assert.Equal(3, client.Where(c => c.Route.Contains("/broker-", StringComparison.Ordinal)).Select(c => c.Route).Distinct().Count());
        }

        // The socket table agrees: connections to broker ports come only from the two addresses.
        var brokerPorts = cluster.BrokerAddresses.Select(a => int.Parse(a[(a.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
        var fromTable = SocketTable.ConnectionsTo(brokerPorts).Select(e => e.Local.Address).ToHashSet();
        Assert.True(fromTable.SetEquals([IPAddress.Parse("127.0.0.7"), shippingSources[0]]), string.Join(", ", fromTable));

        Assert.Single(proxy.Logs.Messages, m => m.Contains("client 'billing'", StringComparison.Ordinal) && m.Contains("→ 127.0.0.7", StringComparison.Ordinal));
        Assert.Single(proxy.Logs.Messages, m => m.Contains("client 'shipping'", StringComparison.Ordinal) && m.Contains("Wireshark: ip.addr==", StringComparison.Ordinal));
    }
}
