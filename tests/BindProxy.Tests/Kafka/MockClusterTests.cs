using BindProxy.Demo;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

public sealed class MockClusterTests
{
    [Fact]
    public async Task Producer_and_consumer_work_directly_against_the_mock_cluster()
    {
        SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic("direct", partitions: 3, replicationFactor: 1);
        cluster.SetLeader("direct", 0, 2);

        var cancellationToken = TestContext.Current.CancellationToken;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));

        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers }).Build())
        {
            for (var i = 0; i < 10; i++)
            {
                var report = await producer.ProduceAsync(new TopicPartition("direct", i % 3), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" }, timeout.Token);
                Assert.Equal(PersistenceStatus.Persisted, report.Status);
            }
        }

        var consumerConfig = new ConsumerConfig
        {
            BootstrapServers = cluster.BootstrapServers,
            GroupId = "direct-group",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        };
        using var consumer = new ConsumerBuilder<string, string>(consumerConfig).Build();
        consumer.Subscribe("direct");
        var values = new HashSet<string>();
        while (values.Count < 10 && !timeout.IsCancellationRequested)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (result?.Message is { } message)
            {
                values.Add(message.Value);
            }
        }

        consumer.Close();
        Assert.Equal(10, values.Count);
    }

    internal static void SkipUnlessNativeLibrary()
    {
        var error = MockCluster.EnsureNativeLibrary();
        if (error is not null)
        {
            BindProxy.Tests.Infrastructure.ExternalTool.Unavailable(error);
        }
    }
}
