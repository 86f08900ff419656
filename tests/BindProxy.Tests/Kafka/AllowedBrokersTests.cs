using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>The proxy connects only where the configured cluster's metadata says, and only within AllowedBrokers.</summary>
public sealed class AllowedBrokersTests
{
    private static Task<TestProxy> StartAsync(MockCluster cluster, string allowed) => TestProxy.StartAsync(new RouteConfig
    {
        Name = "kafka",
        Listen = "127.0.0.1:0",
        Upstream = cluster.BrokerAddresses[0],
        Source = "127.0.0.2",
        Protocol = "Kafka",
        AllowedBrokers = allowed,
    });

    [Fact]
    public async Task Brokers_inside_the_allowlist_are_served()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        await using var proxy = await StartAsync(cluster, "localhost, 127.0.0.0/8");

        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = proxy.Endpoint("kafka").ToString() }).Build();
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(20));
        Assert.Equal(3, metadata.Brokers.Count);
    }

    [Fact]
    public async Task A_broker_outside_the_allowlist_closes_the_client_instead_of_being_reached()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        await using var proxy = await StartAsync(cluster, "kafka-1.internal, 10.20.0.0/16");

        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = proxy.Endpoint("kafka").ToString() }).Build();
        Assert.ThrowsAny<KafkaException>(() => admin.GetMetadata(TimeSpan.FromSeconds(3)));

        var line = await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(10), "which is not in AllowedBrokers (kafka-1.internal, 10.20.0.0/16)");
        Assert.Contains("advertises 127.0.0.1:", line, StringComparison.Ordinal);
        Assert.DoesNotContain(proxy.Logs.Messages, m => m.Contains("is reached through", StringComparison.Ordinal));
    }
}
