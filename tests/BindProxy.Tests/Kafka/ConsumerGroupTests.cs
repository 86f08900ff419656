using System.Collections.Concurrent;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>A consumer group through the proxy: JoinGroup/SyncGroup/Heartbeat/OffsetCommit on a coordinator found through it.</summary>
public sealed class ConsumerGroupTests
{
    private const string Topic = "events";
    private const string Group = "events-group";
    private const int Partitions = 6;
    private const int BatchSize = 60;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Two_members_split_the_partitions_after_a_rebalance_and_every_message_is_consumed_exactly_once()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic(Topic, Partitions, replicationFactor: 3);
        for (int p = 0; p < Partitions; p++)
        {
            cluster.SetLeader(Topic, p, (p % 3) + 1);
        }

        // The coordinator is not the bootstrap broker: the FindCoordinator answer must be rewritten.
        cluster.SetCoordinator("group", Group, 3);
        cluster.SetGroupInitialRebalanceDelay(0);
        await using var proxy = await KafkaRoute.StartProxyAsync(cluster);
        using var timeout = new CancellationTokenSource(Timeout);

        using var producer = KafkaRoute.Producer(proxy, "events-producer");
        await ProduceBatchAsync(producer, "first", timeout.Token);

        await using var first = Member.Start(proxy, "member-a");
        await Poll.UntilAsync(() => first.Received.Count >= BatchSize, () => $"member-a to read the first {BatchSize}; it read {first.Received.Count}", Timeout);
        Assert.Equal(Partitions, first.Assignment.Length);
        first.CommitSoon();
        await Poll.UntilAsync(() => first.Committed, "member-a to commit", Timeout);

        await using var second = Member.Start(proxy, "member-b");
        await Poll.UntilAsync(
            () => first.Assignment.Length > 0 && second.Assignment.Length > 0 && first.Assignment.Length + second.Assignment.Length == Partitions,
            () => $"both members to share the {Partitions} partitions; assignments: a [{string.Join(",", first.Assignment)}], b [{string.Join(",", second.Assignment)}]",
            Timeout);
        Assert.Empty(first.Assignment.Intersect(second.Assignment));
        Assert.True(first.Rebalances >= 2, "member-a went through a second assignment");

        await ProduceBatchAsync(producer, "second", timeout.Token);
        await Poll.UntilAsync(() => first.Received.Count + second.Received.Count >= 2 * BatchSize,
            () => $"the members to read all {2 * BatchSize}; they read {first.Received.Count} + {second.Received.Count}", Timeout);

        // Every broker connection of both members and the producer leaves from the route's source.
        Assert.Empty(KafkaRoute.StrayBrokerConnections(cluster));
        var toBrokers = SocketTable.ConnectionsTo(KafkaRoute.BrokerPorts(cluster));
        Assert.NotEmpty(toBrokers);
        Assert.All(toBrokers, c => Assert.Equal(KafkaRoute.SourceAddress, c.Local.Address));

        // No duplicate arriving is what is tested: nothing more arrives for half a second before counting.
        await Poll.SteadyAsync(() => first.Received.Count + second.Received.Count, TimeSpan.FromMilliseconds(500), "the members to receive nothing more", Timeout);
        var all = first.Received.Concat(second.Received).ToList();
        var duplicates = all.GroupBy(v => v).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.Empty(duplicates);
        Assert.Equal(2 * BatchSize, all.Count);
        var expected = Enumerable.Range(0, BatchSize).SelectMany(i => new[] { $"first-{i}", $"second-{i}" }).ToHashSet();
        Assert.True(expected.SetEquals(all), "the consumed values are exactly the produced ones");

        // After the rebalance both members took part: each read the second batch from its own partitions.
        var secondBatchA = first.Received.Count(v => v.StartsWith("second-", StringComparison.Ordinal));
        var secondBatchB = second.Received.Count(v => v.StartsWith("second-", StringComparison.Ordinal));
        Assert.True(secondBatchA > 0 && secondBatchB > 0, $"second batch split {secondBatchA} / {secondBatchB}");
        Assert.Equal(BatchSize, secondBatchA + secondBatchB);
        Assert.DoesNotContain(second.Received, v => v.StartsWith("first-", StringComparison.Ordinal));
    }

    private static async Task ProduceBatchAsync(IProducer<string, string> producer, string prefix, CancellationToken cancellationToken)
    {
        for (int i = 0; i < BatchSize; i++)
        {
            var report = await producer.ProduceAsync(new TopicPartition(Topic, i % Partitions),
                new Message<string, string> { Key = $"{prefix}-{i}", Value = $"{prefix}-{i}" }, cancellationToken);
            Assert.Equal(PersistenceStatus.Persisted, report.Status);
        }
    }

    /// <summary>One group member polling on its own thread; commits what it read when partitions are taken away.</summary>
    private sealed class Member : IAsyncDisposable
    {
        private readonly IConsumer<string, string> _consumer;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private volatile int[] _assignment = [];
        private volatile bool _commitRequested;
        private volatile bool _closing;
        private int _rebalances;

        private Member(TestProxy proxy, string clientId)
        {
            _consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
            {
                BootstrapServers = proxy.Endpoint(KafkaRoute.Name).ToString(),
                ClientId = clientId,
                GroupId = Group,
                AutoOffsetReset = AutoOffsetReset.Earliest,
                EnableAutoCommit = false,
                SessionTimeoutMs = 6000,
                HeartbeatIntervalMs = 300,
                PartitionAssignmentStrategy = PartitionAssignmentStrategy.Range,
            })
            .SetLogHandler((_, _) => { })
            .SetPartitionsAssignedHandler((_, partitions) =>
            {
                _assignment = [.. partitions.Select(p => p.Partition.Value)];
                Interlocked.Increment(ref _rebalances);
            })
            .SetPartitionsRevokedHandler((consumer, _) =>
            {
                // At the end of the test the group may be rebalancing already; nothing read then needs keeping.
                if (!_closing)
                {
                    CommitConsumed(consumer);
                }

                _assignment = [];
            })
            .Build();
            _consumer.Subscribe(Topic);
            _loop = Task.Factory.StartNew(Poll, TaskCreationOptions.LongRunning);
        }

        public ConcurrentQueue<string> Received { get; } = new();

        public int[] Assignment => _assignment;

        public int Rebalances => Volatile.Read(ref _rebalances);

        public bool Committed { get; private set; }

        public static Member Start(TestProxy proxy, string clientId) => new(proxy, clientId);

        /// <summary>Commits everything read so far, on the polling thread (the consumer is not thread-safe).</summary>
        public void CommitSoon() => _commitRequested = true;

        private void Poll()
        {
            while (!_stop.IsCancellationRequested)
            {
                if (_consumer.Consume(TimeSpan.FromMilliseconds(100)) is { Message: { } message })
                {
                    Received.Enqueue(message.Value);
                }

                if (_commitRequested)
                {
                    CommitConsumed(_consumer);
                    _commitRequested = false;
                    Committed = true;
                }
            }
        }

        private static void CommitConsumed(IConsumer<string, string> consumer)
        {
            try
            {
                consumer.Commit();
            }
            catch (KafkaException e) when (e.Error.Code == ErrorCode.Local_NoOffset)
            {
                // Nothing read since the last commit.
            }
        }

        public async ValueTask DisposeAsync()
        {
            _closing = true;
            _stop.Cancel();
            await _loop.WaitAsync(TimeSpan.FromSeconds(10));
            _consumer.Close();
            _consumer.Dispose();
            _stop.Dispose();
        }
    }
}
