using System.Net;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Forwarding;
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
        cluster.CreateTopicLedByEachBroker("shared", 3, 3);

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

    /// <summary>
    /// A reload that moves the pool and a client's fixed address: new connections of a client
    /// that is still connected take the new address (its open ones keep the old until they
    /// close, and the log says so), and other clients move into the new pool.
    /// </summary>
    [Fact]
    public async Task A_reload_moves_connected_clients_to_the_new_pool_and_fixed_address_for_their_new_connections()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        using var temp = new TempDirectory();
        var file = Path.Combine(temp.Path, "appsettings.json");
        string Config(string source, string billing) => $$"""
            { "BindProxy": { "Routes": { "kafka": {
                "Listen": "127.0.0.1:0", "Upstream": "{{cluster.BrokerAddresses[0]}}", "Source": "{{source}}", "Protocol": "Kafka",
                "Assign": "kafka-client-id", "ClientIds": { "billing": "{{billing}}" } } } } }
            """;
        await File.WriteAllTextAsync(file, Config("127.0.0.10-127.0.0.40", "127.0.0.15"));
        await using var proxy = await TestProxy.StartFromFileAsync(file);
        var bootstrap = proxy.Endpoint("kafka").ToString();
        var prompt = TimeSpan.FromSeconds(30);

        IAdminClient Connect(string clientId)
        {
            var client = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap, ClientId = clientId }).Build();
            Assert.Single(client.GetMetadata(prompt).Brokers);
            return client;
        }

        List<ProxiedConnection> Connections(string clientId) =>
            [.. proxy.Connections.Snapshot().Where(c => c.Kafka?.ClientId == clientId)];

        // A client keeps its broker connection open; the bootstrap one it may close.
        Task BrokerConnectionAsync(string clientId, HashSet<long> except) => Poll.UntilAsync(
            () => Connections(clientId).Any(c => c.Route.Contains("/broker-", StringComparison.Ordinal) && !except.Contains(c.Id)),
            $"a new broker connection of {clientId}", prompt);

        bool InPool(IPAddress address, int first, int last) =>
            address.GetAddressBytes() is [127, 0, 0, var last4] && last4 >= first && last4 <= last;

        using var billingBefore = Connect("billing");
        using var shippingBefore = Connect("shipping");
        await BrokerConnectionAsync("billing", []);
        await BrokerConnectionAsync("shipping", []);
        var billingOld = Connections("billing");
        var shippingOld = Connections("shipping");
        Assert.NotEmpty(billingOld);
        Assert.All(billingOld, c => Assert.Equal(IPAddress.Parse("127.0.0.15"), c.Source.Address));
        Assert.All(shippingOld, c => Assert.True(InPool(c.Source.Address, 10, 40) && !c.Source.Address.Equals(IPAddress.Parse("127.0.0.15")), $"shipping from {c.Source}"));

        await File.WriteAllTextAsync(file, Config("127.0.0.41-127.0.0.60", "127.0.0.45"));
        await proxy.Logs.WaitForAsync(prompt, "Reload: route kafka changed", "Source 127.0.0.10-127.0.0.40 → 127.0.0.41-127.0.0.60", "ClientIds billing=127.0.0.15 → billing=127.0.0.45");
        await proxy.Logs.WaitForAsync(prompt, "Reload: route kafka: client 'billing'", "holds 127.0.0.15, which the configuration no longer gives it",
            "open connection(s) keep it until they close, and its new connections get 127.0.0.45");
        await proxy.Logs.WaitForAsync(prompt, "Reload: route kafka: client 'shipping'", "its new connections get an address of 127.0.0.41-127.0.0.60");

        // The old clients are still connected from their old addresses...
        var oldIds = billingOld.Concat(shippingOld).Select(c => c.Id).ToHashSet();
        var stillOpen = proxy.Connections.Snapshot().Where(c => oldIds.Contains(c.Id)).ToList();
        Assert.Contains(stillOpen, c => c.Kafka?.ClientId == "billing" && c.Source.Address.Equals(IPAddress.Parse("127.0.0.15")));

        // ...while the same clients' new connections leave from what the configuration now says.
        using var billingAfter = Connect("billing");
        using var shippingAfter = Connect("shipping");
        await BrokerConnectionAsync("billing", oldIds);
        await BrokerConnectionAsync("shipping", oldIds);
        var billingNew = Connections("billing").Where(c => !oldIds.Contains(c.Id)).ToList();
        var shippingNew = Connections("shipping").Where(c => !oldIds.Contains(c.Id)).ToList();
        Assert.NotEmpty(billingNew);
        Assert.NotEmpty(shippingNew);
        Assert.All(billingNew, c => Assert.Equal(IPAddress.Parse("127.0.0.45"), c.Source.Address));
        Assert.All(shippingNew, c => Assert.True(InPool(c.Source.Address, 41, 60) && !c.Source.Address.Equals(IPAddress.Parse("127.0.0.45")), $"shipping from {c.Source}"));
        await proxy.Logs.WaitForAsync(prompt, "client 'billing'", "→ 127.0.0.45", "instead of 127.0.0.15, which the configuration no longer gives it");
    }
}
