using System.Collections.Concurrent;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// An idempotent producer through the proxy while the cluster changes under it. Moved leaders
/// answer Produce v10+ with NOT_LEADER_OR_FOLLOWER and the new leader's endpoint in NodeEndpoints
/// (KIP-951): an endpoint the proxy fails to rewrite sends the client straight to the broker.
/// That detour can be over before a socket-table sample sees it, so the clients' own broker logs
/// are checked for the brokers' real addresses as well (each check was seen to fail with the
/// Produce or the Fetch rewrite switched off).
/// </summary>
public sealed class LeaderChangeTests
{
    private const string Topic = "moves";
    private const int Partitions = 3;

    /// <summary>For each wait; a move or the outage can hold the clients up for a while on a loaded machine.</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task An_idempotent_producer_loses_and_duplicates_nothing_while_leaders_move_and_a_broker_goes_down_and_up()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic(Topic, Partitions, replicationFactor: 3);
        for (int p = 0; p < Partitions; p++)
        {
            cluster.SetLeader(Topic, p, p + 1);
        }

        await using var proxy = await KafkaRoute.StartProxyAsync(cluster);

        var acknowledged = new ConcurrentQueue<(int Partition, string Value)>();
        var failed = new ConcurrentQueue<string>();
        var stray = new ConcurrentQueue<string>();
        int produced = 0;
        var producerAddresses = new KafkaRoute.AddressLog();
        using var producer = KafkaRoute.Producer(proxy, "moving-producer", c =>
        {
            c.MessageTimeoutMs = 45_000;
            c.RetryBackoffMs = 20;
            c.RetryBackoffMaxMs = 200;
        }, producerAddresses);

        // A consumer tails every partition meanwhile: its fetches meet the moves too (Fetch v16+ NodeEndpoints).
        var consumerAddresses = new KafkaRoute.AddressLog();
        var tailed = new ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = proxy.Endpoint(KafkaRoute.Name).ToString(),
            ClientId = "moving-consumer",
            GroupId = "moving-consumer",
            EnableAutoCommit = false,
            FetchWaitMaxMs = 100,
            Debug = KafkaRoute.AddressLog.DebugContexts,
        }).SetLogHandler((_, m) => consumerAddresses.Add(m.Message)).Build();
        consumer.Assign(Enumerable.Range(0, Partitions).Select(p => new TopicPartitionOffset(Topic, p, Offset.Beginning)));
        using var stopConsuming = new CancellationTokenSource();
        var consuming = Task.Factory.StartNew(() =>
        {
            while (!stopConsuming.IsCancellationRequested)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { Message: { } message })
                {
                    tailed.TryAdd(message.Value, 0);
                }
            }
        }, TaskCreationOptions.LongRunning);

        using var stopProducing = new CancellationTokenSource();
        var producing = Task.Run(async () =>
        {
            for (int i = 0; !stopProducing.IsCancellationRequested && i < 100_000; i++)
            {
                var value = $"m-{i}";
                producer.Produce(new TopicPartition(Topic, i % Partitions), new Message<string, string> { Key = value, Value = value }, report =>
                {
                    if (report.Error.IsError || report.Status != PersistenceStatus.Persisted)
                    {
                        failed.Enqueue($"{report.Message.Value}: {report.Error.Reason} ({report.Status})");
                    }
                    else
                    {
                        acknowledged.Enqueue((report.Partition.Value, report.Message.Value));
                    }
                });
                Interlocked.Increment(ref produced);

                // Paces the producer (a steady stream across the changes), not a wait for anything.
                await Task.Delay(2, CancellationToken.None);
            }
        });

        // Every 100 ms while the cluster changes: no connection reaches a broker except from the proxy's source.
        using var stopWatching = new CancellationTokenSource();
        var watching = Task.Run(async () =>
        {
            while (!stopWatching.IsCancellationRequested)
            {
                foreach (var c in KafkaRoute.StrayBrokerConnections(cluster))
                {
                    stray.Enqueue($"{c.Local} → {c.Remote}");
                }

                // The sampling rate: a detour shorter than this is caught by the clients' logs instead.
                await Task.Delay(100, CancellationToken.None);
            }
        });

        await WaitForAcksAsync(acknowledged, 100);
        int leaderMoves = 0;
        for (int round = 1; round <= 4; round++)
        {
            for (int p = 0; p < Partitions; p++)
            {
                cluster.SetLeader(Topic, p, ((p + round) % 3) + 1);
                leaderMoves++;
            }

            int before = acknowledged.Count;
            await WaitForAcksAsync(acknowledged, before + 50);
        }

        int beforeDown = acknowledged.Count;
        cluster.BrokerDown(2);

        // The outage is what is tested: the broker stays down for a while, whatever the clients do meanwhile.
        await Task.Delay(1500, TestContext.Current.CancellationToken);
        cluster.BrokerUp(2);
        await WaitForAcksAsync(acknowledged, beforeDown + 100);

        // One more move after the restart, onto the broker that was down.
        for (int p = 0; p < Partitions; p++)
        {
            cluster.SetLeader(Topic, p, 2);
            leaderMoves++;
        }

        int beforeLastMove = acknowledged.Count;
        await WaitForAcksAsync(acknowledged, beforeLastMove + 50);

        stopProducing.Cancel();
        await producing.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(45)));
        stopWatching.Cancel();
        await watching.WaitAsync(TimeSpan.FromSeconds(30)); // one pass reads the whole socket table

        var acked = acknowledged.ToList();
        await Poll.UntilAsync(() => acked.Count(a => !tailed.ContainsKey(a.Value)), missing => missing == 0,
            "the count of acknowledged messages the tailing consumer has not seen to reach 0", Timeout);

        stopConsuming.Cancel();
        await consuming.WaitAsync(TimeSpan.FromSeconds(10));

        var read = KafkaRoute.ReadAll(proxy, Topic, Partitions, TimeSpan.FromSeconds(30));
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"produced {produced}, acknowledged {acked.Count}, failed {failed.Count}, tailed live {tailed.Count}, read back {read.Count} ({read.Select(r => r.Value).Distinct().Count()} distinct), {leaderMoves} leader moves, broker 2 down 1.5 s");

        // Neither client ever heard of a broker's real address (they log every address they use),
        // nor held a connection to one.
        Assert.True(producerAddresses.Count > 0 && consumerAddresses.Count > 0, "the clients' broker logs are empty");
        Assert.Empty(producerAddresses.Leaks(cluster));
        Assert.Empty(consumerAddresses.Leaks(cluster));
        Assert.Empty(stray);
        Assert.All(acked, a => Assert.True(tailed.ContainsKey(a.Value), $"the tailing consumer never saw {a.Value}"));
        Assert.Empty(failed);
        Assert.Equal(produced, acked.Count);
        Assert.Equal(read.Count, read.Select(r => r.Value).Distinct().Count());
        Assert.Equal(acked.Count, read.Count);
        Assert.Equal(acked.OrderBy(a => a.Value, StringComparer.Ordinal), read.OrderBy(r => r.Value, StringComparer.Ordinal));

        // Idempotence also keeps each partition in production order.
        foreach (var partition in read.GroupBy(r => r.Partition))
        {
            var sequence = partition.Select(r => int.Parse(r.Value[2..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(sequence.Order(), sequence);
        }
    }

    private static Task<int> WaitForAcksAsync(ConcurrentQueue<(int, string)> acknowledged, int count) =>
        Poll.UntilAsync(() => acknowledged.Count, acked => acked >= count, $"{count} messages acknowledged", Timeout);
}
