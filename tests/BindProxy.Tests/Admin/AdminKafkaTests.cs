using System.Text.Json;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Tests.Kafka;
using Confluent.Kafka;

namespace BindProxy.Tests.Admin;

/// <summary>What the admin endpoint adds for Kafka routes: client.id as the identity, broker routes, requests by API.</summary>
public sealed class AdminKafkaTests
{
    [Fact]
    public async Task A_Kafka_client_is_known_by_its_client_id_and_its_requests_are_counted_by_API()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        cluster.CreateTopic("admin-topic", partitions: 1, replicationFactor: 1);
        const string Route = "admin-kafka";
        await using var admin = await AdminProxy.StartAsync(new RouteConfig
        {
            Name = Route,
            Listen = "127.0.0.1:0",
            Upstream = cluster.BrokerAddresses[0],
            Source = "127.0.0.2",
            Protocol = "Kafka",
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        using var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = admin.Proxy.Endpoint(Route).ToString(),
            ClientId = "admin-test-producer",
        }).Build();
        var report = await producer.ProduceAsync("admin-topic", new Message<string, string> { Key = "k", Value = "v" }, timeout.Token);
        Assert.Equal(PersistenceStatus.Persisted, report.Status);

        // While the producer is connected: every connection (bootstrap and broker) shows its client.id.
        var connections = await admin.WaitForJsonAsync("api/connections", json =>
            json.GetArrayLength() > 0 && json.EnumerateArray().All(c => c.GetProperty("kafkaClientId").ValueKind == JsonValueKind.String));
        Assert.All(connections.EnumerateArray(), c =>
        {
            Assert.Equal("admin-test-producer", c.GetProperty("kafkaClientId").GetString());
            Assert.Equal("admin-test-producer", c.GetProperty("clientIdentity").GetString());
            Assert.StartsWith("127.0.0.2:", c.GetProperty("source").GetString(), StringComparison.Ordinal);
            Assert.True(c.GetProperty("kafkaRequests").GetInt64() > 0);
        });

        var assignment = Assert.Single((await admin.GetJsonAsync("api/assignments")).EnumerateArray());
        Assert.Equal("admin-test-producer", assignment.GetProperty("client").GetString());
        Assert.Equal("kafka-client-id", assignment.GetProperty("identityKind").GetString());
        Assert.Equal("client=admin-test-producer", assignment.GetProperty("captureQuery").GetString());
        Assert.Equal("127.0.0.2", assignment.GetProperty("source").GetString());
        Assert.Contains("ip.addr==127.0.0.2 && tcp.port", assignment.GetProperty("wiresharkFilter").GetString(), StringComparison.Ordinal);

        // The broker's own listener is a route of its own, under the bootstrap route.
        var routes = await admin.GetJsonAsync("api/routes");
        Assert.Contains(routes.EnumerateArray(), r => r.GetProperty("parent").ValueKind == JsonValueKind.String && r.GetProperty("parent").GetString() == Route);

        var metrics = await admin.GetTextAsync("metrics");
        var byApi = PrometheusText.Samples(metrics)
            .Where(s => s.Name == "bindproxy_kafka_requests_total" && s.Labels["route"].StartsWith(Route, StringComparison.Ordinal))
            .GroupBy(s => s.Labels["api"])
            .ToDictionary(g => g.Key, g => g.Sum(s => s.Value), StringComparer.Ordinal);
        Assert.True(byApi.GetValueOrDefault("ApiVersions") >= 1, string.Join(", ", byApi));
        Assert.True(byApi.GetValueOrDefault("Metadata") >= 1, string.Join(", ", byApi));
        Assert.True(byApi.GetValueOrDefault("Produce") >= 1, string.Join(", ", byApi));
        var total = connections.EnumerateArray().Sum(c => c.GetProperty("kafkaRequests").GetInt64());
        Assert.True(byApi.Values.Sum() >= total, $"{byApi.Values.Sum()} counted, {total} seen on live connections");
    }
}
