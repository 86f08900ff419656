using System.Globalization;
using System.Net;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>Shared set-up for end-to-end tests of a Kafka route in front of the mock cluster.</summary>
internal static class KafkaRoute
{
    public const string Name = "kafka";
    public const string Source = "127.0.0.2";

    public static readonly IPAddress SourceAddress = IPAddress.Parse(Source);

    public static Task<TestProxy> StartProxyAsync(MockCluster cluster, string? maxFrameSize = null) =>
        TestProxy.StartAsync(new RouteConfig
        {
            Name = Name,
            Listen = "127.0.0.1:0",
            Upstream = cluster.BrokerAddresses[0],
            Source = Source,
            Protocol = "Kafka",
            MaxFrameSize = maxFrameSize,
        });

    /// <summary>The ports the brokers really listen on (not the proxy's).</summary>
    public static IReadOnlyList<int> BrokerPorts(MockCluster cluster) =>
        [.. cluster.BrokerAddresses.Select(a => int.Parse(a[(a.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture))];

    /// <summary>Established connections to a broker port that do not leave from the route's source.</summary>
    public static IReadOnlyList<SocketTable.Entry> StrayBrokerConnections(MockCluster cluster) =>
        [.. SocketTable.ConnectionsTo(BrokerPorts(cluster)).Where(c => !c.Local.Address.Equals(SourceAddress))];

    /// <summary>
    /// A client's own broker log (librdkafka debug "broker"): every address it is told to use
    /// shows up there, so a broker address the proxy failed to rewrite is caught even when the
    /// client's detour to the real broker lasts only milliseconds.
    /// </summary>
    public sealed class AddressLog
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

        public const string DebugContexts = "broker";

        public int Count => _lines.Count;

        public void Add(string line) => _lines.Enqueue(line);

        /// <summary>Lines that name a broker's real address: the client learned it past the proxy.</summary>
        public IReadOnlyList<string> Leaks(MockCluster cluster) =>
            [.. _lines.Where(line => BrokerPorts(cluster).Any(port => System.Text.RegularExpressions.Regex.IsMatch(line, $@":{port}(?!\d)")))];
    }

    public static IProducer<string, string> Producer(TestProxy proxy, string clientId, Action<ProducerConfig>? configure = null, AddressLog? addresses = null)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = proxy.Endpoint(Name).ToString(),
            ClientId = clientId,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
        };
        configure?.Invoke(config);
        if (addresses is not null)
        {
            config.Debug = AddressLog.DebugContexts;
        }

        return new ProducerBuilder<string, string>(config).SetLogHandler((_, m) => addresses?.Add(m.Message)).Build();
    }

    /// <summary>
    /// Reads every partition of <paramref name="topic"/> from the beginning to its high watermark
    /// (no group), through the proxy. Returns the partition and value of each message, in the order read.
    /// </summary>
    /// <summary>
    /// A partition's high watermark. librdkafka retires its bootstrap broker once metadata names
    /// the real ones, and a query that went to it fails with Local_Destroy or Local_DestroyBroker
    /// ("Broker handle destroyed without termination"): asked again, until the deadline.
    /// </summary>
    private static long HighWatermark(IConsumer<string, string> consumer, TopicPartition partition, DateTime deadline)
    {
        while (true)
        {
            var remaining = deadline - DateTime.UtcNow;
            try
            {
                return consumer.QueryWatermarkOffsets(partition, remaining > TimeSpan.Zero ? remaining : TimeSpan.FromMilliseconds(1)).High.Value;
            }
            catch (KafkaException e) when (e.Error.Code is ErrorCode.Local_Destroy or ErrorCode.Local_DestroyBroker && DateTime.UtcNow < deadline)
            {
            }
        }
    }

    public static List<(int Partition, string Value)> ReadAll(TestProxy proxy, string topic, int partitions, TimeSpan timeout)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = proxy.Endpoint(Name).ToString(),
            ClientId = "reader",
            GroupId = "reader-" + Guid.NewGuid().ToString("n"),
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).SetLogHandler((_, _) => { }).Build();

        var deadline = DateTime.UtcNow + timeout;
        var ends = new Dictionary<int, long>();
        for (int p = 0; p < partitions; p++)
        {
            ends[p] = HighWatermark(consumer, new TopicPartition(topic, p), deadline);
        }

        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var values = new List<(int Partition, string Value)>();
        var positions = Enumerable.Range(0, partitions).ToDictionary(p => p, _ => 0L);
        while (positions.Any(p => p.Value < ends[p.Key]) && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { Message: { } message } result)
            {
                values.Add((result.Partition.Value, message.Value));
                positions[result.Partition.Value] = result.Offset.Value + 1;
            }
        }

        Assert.True(positions.All(p => p.Value >= ends[p.Key]),
            $"read to {string.Join(", ", positions.Select(p => $"p{p.Key}:{p.Value}/{ends[p.Key]}"))} before the timeout");
        consumer.Close();
        return values;
    }
}
