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
        cluster.CreateTopicLedByEachBroker(Topic, Partitions, 3);

        await using var proxy = await KafkaRoute.StartProxyAsync(cluster);

        var acknowledged = new ConcurrentQueue<(int Partition, string Value)>();
        var failed = new ConcurrentQueue<string>();
        var stray = new ConcurrentQueue<string>();
        int produced = 0;

        // The producer's messages not yet acknowledged: it sends on as they are (disposed after the producer, whose reports release it).
        using var inFlight = new SemaphoreSlim(16);
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
            // A steady stream across the changes, paced by the cluster's acknowledgements.
            for (int i = 0; i < 100_000; i++)
            {
                try
                {
                    await inFlight.WaitAsync(stopProducing.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

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

                    inFlight.Release();
                });
                Interlocked.Increment(ref produced);
            }
        });

        // Whenever a client does something while the cluster changes (a message acknowledged, a line
        // of its broker log: connects, reconnects), no connection reaches a broker except from the
        // proxy's source. A detour between two readings is caught by the clients' logs instead.
        using var stopWatching = new CancellationTokenSource();
        var watching = Task.Run(async () =>
        {
            long Activity() => acknowledged.Count + producerAddresses.Count + consumerAddresses.Count;
            while (!stopWatching.IsCancellationRequested)
            {
                long before = Activity();
                foreach (var c in KafkaRoute.StrayBrokerConnections(cluster))
                {
                    stray.Enqueue($"{c.Local} → {c.Remote}");
                }

                await Poll.UntilAsync(() => stopWatching.IsCancellationRequested || Activity() != before, "a client to do something", Timeout);
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
        int Broker2Refusals() => proxy.Logs.Messages.Count(m => m.Contains("/broker-2: ", StringComparison.Ordinal) && m.Contains(" closed: connect refused: ", StringComparison.Ordinal));
        int refusedBefore = Broker2Refusals();
        cluster.BrokerDown(2);
        var outage = System.Diagnostics.Stopwatch.StartNew();

        // The outage is what is tested: the broker stays down until the clients have met it through
        // the proxy (their connections to it closed, three of their reconnects turned away) and the
        // producer is held up by it: every message it has in flight waits, those for broker 2's
        // partitions among them.
        await Poll.UntilAsync(() => Broker2Refusals() >= refusedBefore + 3 && inFlight.CurrentCount == 0,
            () => $"three reconnects to broker 2 refused through the proxy ({Broker2Refusals() - refusedBefore} so far) and the producer's {inFlight.CurrentCount} free slots used up", Timeout);
        cluster.BrokerUp(2);
        outage.Stop();
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
            $"produced {produced}, acknowledged {acked.Count}, failed {failed.Count}, tailed live {tailed.Count}, read back {read.Count} ({read.Select(r => r.Value).Distinct().Count()} distinct), {leaderMoves} leader moves, broker 2 down {outage.Elapsed.TotalSeconds:0.0} s ({Broker2Refusals() - refusedBefore} reconnects refused through the proxy meanwhile)");

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
