using System.Diagnostics;
using System.Net;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;
using Confluent.Kafka;

namespace BindProxy.Tests.Faults;

/// <summary>Kafka toxics work on the responses of one API, and a match aims them at one client.id.</summary>
public sealed class KafkaToxicTests(ITestOutputHelper output)
{
    private static async Task<FaultProxy> StartAsync(MockCluster cluster) => await FaultProxy.StartAsync(new ProxyConfig
    {
        Routes = [new RouteConfig { Name = KafkaRoute.Name, Listen = "127.0.0.1:0", Upstream = cluster.BrokerAddresses[0], Source = KafkaRoute.Source, Protocol = "Kafka" }],
        Faults = new FaultsConfig { Listen = "127.0.0.1:0" },
    });

    [Fact]
    public async Task Kafka_latency_delays_the_responses_of_its_api()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        await using var faults = await StartAsync(cluster);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = faults.Proxy.Endpoint(KafkaRoute.Name).ToString() }).Build();
        admin.GetMetadata(TimeSpan.FromSeconds(20));
        long start = Stopwatch.GetTimestamp();
        admin.GetMetadata(TimeSpan.FromSeconds(20));
        var baseline = Stopwatch.GetElapsedTime(start);

        // On the bootstrap and the broker's listener: the client asks either.
        var (_, proxies) = await faults.SendAsync(HttpMethod.Get, "proxies");
        foreach (var proxy in proxies.EnumerateObject())
        {
            await faults.AddToxicAsync("""{"type":"kafka_latency","attributes":{"api":"Metadata","latency":300}}""", proxy.Name);
        }

        start = Stopwatch.GetTimestamp();
        admin.GetMetadata(TimeSpan.FromSeconds(20));
        var delayed = Stopwatch.GetElapsedTime(start);
        output.WriteLine($"Metadata: {baseline.TotalMilliseconds:0} ms without, {delayed.TotalMilliseconds:0} ms with kafka_latency 300");
        Assert.InRange(delayed.TotalMilliseconds, 295, baseline.TotalMilliseconds + 1000);
    }

    [Fact]
    public async Task Kafka_drop_on_Produce_aimed_at_one_client_id_fails_that_client_alone_and_it_recovers_when_removed()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic("aim", 3, 1);
        await using var faults = await StartAsync(cluster);
        var (status, error) = await faults.SendAsync(HttpMethod.Post, $"proxies/{KafkaRoute.Name}/toxics", """{"type":"kafka_drop","attributes":{"api":"Nope"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("not a Kafka API", error.GetProperty("error").GetString(), StringComparison.Ordinal);

        // Every broker's listener gets the toxic: it is the route family's produce path.
        using var warm = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = faults.Proxy.Endpoint(KafkaRoute.Name).ToString() }).Build();
        var brokers = warm.GetMetadata(TimeSpan.FromSeconds(20)).Brokers;
        foreach (var broker in brokers)
        {
            await faults.AddToxicAsync("""{"name":"drop_a","type":"kafka_drop","attributes":{"api":"Produce"},"match":{"client_id":"client-a"}}""", $"{KafkaRoute.Name}/broker-{broker.BrokerId}");
        }

        var counts = new Dictionary<string, (int Delivered, int Errors)>();
        foreach (var id in new[] { "client-a", "client-b" })
        {
            using var producer = KafkaRoute.Producer(faults.Proxy, id, c =>
            {
                c.EnableIdempotence = false;
                c.MessageTimeoutMs = 3000;
                c.RequestTimeoutMs = 2000;
            });
            var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
            {
                try
                {
                    await producer.ProduceAsync("aim", new Message<string, string> { Key = $"{i}", Value = $"{id}-{i}" });
                    return true;
                }
                catch (ProduceException<string, string>)
                {
                    return false;
                }
            }));
            counts[id] = (results.Count(r => r), results.Count(r => !r));
            output.WriteLine($"{id}: {counts[id].Delivered} delivered, {counts[id].Errors} errors");
        }

        Assert.Equal((0, 20), counts["client-a"]);
        Assert.Equal((20, 0), counts["client-b"]);

        foreach (var broker in brokers)
        {
            Assert.Equal(HttpStatusCode.NoContent, (await faults.SendAsync(HttpMethod.Delete, $"proxies/{KafkaRoute.Name}/broker-{broker.BrokerId}/toxics/drop_a")).Status);
        }

        using var recovered = KafkaRoute.Producer(faults.Proxy, "client-a", c => c.EnableIdempotence = false);
        var result = await recovered.ProduceAsync("aim", new Message<string, string> { Key = "k", Value = "after" });
        Assert.Equal(PersistenceStatus.Persisted, result.Status);
    }
}
