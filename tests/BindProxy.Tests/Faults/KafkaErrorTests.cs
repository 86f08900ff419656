using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Faults;

/// <summary>
/// <c>kafka_error</c>, <c>kafka_throttle</c> and the Kafka toxics' <c>topic</c>, against real
/// librdkafka clients and its mock cluster through a Kafka route: clients see the error they would
/// see from a broker, and react to it as they would.
/// </summary>
public sealed class KafkaErrorTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static async Task<FaultProxy> StartAsync(MockCluster cluster) => await FaultProxy.StartAsync(new ProxyConfig
    {
        Routes = [new RouteConfig { Name = KafkaRoute.Name, Listen = "127.0.0.1:0", Upstream = cluster.BrokerAddresses[0], Source = KafkaRoute.Source, Protocol = "Kafka" }],
        Faults = new FaultsConfig { Listen = "127.0.0.1:0" },
    });

    /// <summary>Opens the brokers' listeners (a client asks for metadata), then adds the toxic to every proxy of the route: the bootstrap's and each broker's.</summary>
    private static async Task<int> AddEverywhereAsync(FaultProxy faults, string json)
    {
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = faults.Proxy.Endpoint(KafkaRoute.Name).ToString() }).SetLogHandler((_, _) => { }).Build())
        {
            admin.GetMetadata(TimeSpan.FromSeconds(20));
        }

        var (_, proxies) = await faults.SendAsync(HttpMethod.Get, "proxies");
        int added = 0;
        foreach (var proxy in proxies.EnumerateObject())
        {
            await faults.AddToxicAsync(json, proxy.Name);
            added++;
        }

        return added;
    }

    private static async Task RemoveEverywhereAsync(FaultProxy faults, string toxic)
    {
        var (_, proxies) = await faults.SendAsync(HttpMethod.Get, "proxies");
        foreach (var proxy in proxies.EnumerateObject())
        {
            Assert.Equal(HttpStatusCode.NoContent, (await faults.SendAsync(HttpMethod.Delete, $"proxies/{proxy.Name}/toxics/{toxic}")).Status);
        }
    }

    [Fact]
    public async Task Bad_kafka_error_attributes_get_a_400_that_says_which()
    {
        await using var faults = await FaultProxy.StartAsync("127.0.0.1:9");
        foreach (var (attributes, expected) in new[]
        {
            ("""{"api":"Produce","error":"NOT_A_KAFKA_ERROR"}""", "not a Kafka error name"),
            ("""{"api":"Produce"}""", "needs attribute error"),
            ("""{"error":"NOT_LEADER_OR_FOLLOWER"}""", "needs attribute api"),
            ("""{"api":"Produce","error":"NOT_LEADER_OR_FOLLOWER","topic":"(unclosed"}""", "not a regular expression"),
            ("""{"api":"Produce","error":"NOT_LEADER_OR_FOLLOWER","rate":1.5}""", "rate must be a number from 0 to 1"),
            ("""{"api":"Produce","error":"NOT_LEADER_OR_FOLLOWER","rate":0.5,"count":3}""", "rate or count, not both"),
            ("""{"api":"Produce","error":"NOT_LEADER_OR_FOLLOWER","forward":"maybe"}""", "forward must be true or false"),
        })
        {
            var (status, body) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics", $$"""{"type":"kafka_error","attributes":{{attributes}}}""");
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal(400, body.GetProperty("status").GetInt32());
            Assert.Contains(expected, body.GetProperty("error").GetString(), StringComparison.Ordinal);
        }

        // A good one reads back with its attributes; an update can swap count for rate by unsetting it.
        var (created, toxic) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics",
            """{"name":"e","type":"kafka_error","attributes":{"api":"Produce","error":6,"count":3,"forward":true}}""");
        Assert.Equal(HttpStatusCode.OK, created);
        Assert.Equal(6, toxic.GetProperty("attributes").GetProperty("error").GetInt32());
        Assert.True(toxic.GetProperty("attributes").GetProperty("forward").GetBoolean());
        var (updated, _) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics/e", """{"attributes":{"count":0,"rate":0.25}}""");
        Assert.Equal(HttpStatusCode.OK, updated);
        var (throttle, _) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics", """{"type":"kafka_throttle","attributes":{"api":"Fetch","throttle_ms":200,"topic":"^orders$"}}""");
        Assert.Equal(HttpStatusCode.OK, throttle);
    }

    [Fact]
    public async Task An_answer_the_proxy_makes_up_reaches_the_client_in_request_order_behind_a_slower_broker_response()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        await using var faults = await StartAsync(cluster);
        await faults.AddToxicAsync("""{"name":"slow_metadata","type":"kafka_latency","attributes":{"api":"Metadata","latency":300}}""", KafkaRoute.Name);
        await faults.AddToxicAsync("""{"name":"no_coordinator","type":"kafka_error","attributes":{"api":"FindCoordinator","error":"COORDINATOR_NOT_AVAILABLE"}}""", KafkaRoute.Name);

        // Metadata (to the broker, answered 300 ms late), FindCoordinator (answered by the proxy at
        // once), Metadata again: written together on one connection.
        var metadata = new BindProxy.Kafka.Protocol.Messages.MetadataRequestData { Topics = null };
        var findCoordinator = new BindProxy.Kafka.Protocol.Messages.FindCoordinatorRequestData { Key = "g", KeyType = 0 };
        byte[] requests = [.. Request(BindProxy.Kafka.Protocol.KafkaApiKeys.Metadata, 4, 1, metadata),
            .. Request(BindProxy.Kafka.Protocol.KafkaApiKeys.FindCoordinator, 2, 2, findCoordinator),
            .. Request(BindProxy.Kafka.Protocol.KafkaApiKeys.Metadata, 4, 3, metadata)];
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(faults.Proxy.Endpoint(KafkaRoute.Name));
        var stream = client.GetStream();
        await stream.WriteAsync(requests);

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var order = new List<int>();
        byte[]? coordinatorAnswer = null;
        var size = new byte[4];
        for (int i = 0; i < 3; i++)
        {
            await stream.ReadExactlyAsync(size, deadline.Token);
            var frame = new byte[4 + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(size)];
            size.CopyTo(frame, 0);
            await stream.ReadExactlyAsync(frame.AsMemory(4), deadline.Token);
            int correlationId = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(4));
            order.Add(correlationId);
            if (correlationId == 2)
            {
                coordinatorAnswer = frame;
            }
        }

        Assert.Equal([1, 2, 3], order);
        var response = new BindProxy.Kafka.Protocol.Messages.FindCoordinatorResponseData();
        var reader = new BindProxy.Kafka.Protocol.KafkaReader(new System.Buffers.ReadOnlySequence<byte>(coordinatorAnswer!));
        Assert.True(BindProxy.Kafka.Protocol.KafkaResponseHeader.TrySkip(ref reader, BindProxy.Kafka.Protocol.KafkaApiKeys.FindCoordinator, 2) && response.TryRead(ref reader, 2) && reader.End);
        Assert.Equal(15, response.ErrorCode); // COORDINATOR_NOT_AVAILABLE
        Assert.Equal(-1, response.NodeId);

        // The conversation marks the answer as the proxy's.
        var conversations = faults.Proxy.Services.GetRequiredService<BindProxy.Kafka.Conversation.KafkaConversations>();
        var exchanges = conversations.Query(new BindProxy.Kafka.Conversation.ExchangeFilter(Client: "ordering"), 10);
        Assert.Contains("COORDINATOR_NOT_AVAILABLE from kafka_error toxic no_coordinator (answered by the proxy", exchanges.Single(e => e.CorrelationId == 2).Injected, StringComparison.Ordinal);

        static byte[] Request(short apiKey, short version, int correlationId, BindProxy.Kafka.Protocol.IKafkaMessage body)
        {
            var writer = new BindProxy.Kafka.Protocol.KafkaWriter();
            int at = writer.ReserveInt32();
            writer.WriteInt16(apiKey);
            writer.WriteInt16(version);
            writer.WriteInt32(correlationId);
            writer.WriteString("ordering", compact: false, nullable: true);
            body.Write(writer, version);
            writer.PatchInt32(at, writer.Length - 4);
            return writer.ToArray();
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task With_forward_false_the_broker_never_sees_the_failed_request_and_with_true_it_does(bool forward)
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        const string Topic = "forwarded";
        using var cluster = MockCluster.Create(1);
        cluster.CreateTopic(Topic, 1, 1);
        await using var faults = await StartAsync(cluster);
        using var producer = KafkaRoute.Producer(faults.Proxy, "forwarding", c => c.EnableIdempotence = false);
        await producer.ProduceAsync(Topic, new Message<string, string> { Key = "k", Value = "first" });
        await AddEverywhereAsync(faults, $$$"""{"name":"once","type":"kafka_error","attributes":{"api":"Produce","error":"MESSAGE_TOO_LARGE","count":1,"forward":{{{(forward ? "true" : "false")}}}}}""");

        var failed = await Assert.ThrowsAsync<ProduceException<string, string>>(() => producer.ProduceAsync(Topic, new Message<string, string> { Key = "k", Value = "failed" }));
        Assert.Equal(ErrorCode.MsgSizeTooLarge, failed.Error.Code);
        var after = await producer.ProduceAsync(Topic, new Message<string, string> { Key = "k", Value = "after" });
        Assert.Equal(PersistenceStatus.Persisted, after.Status);

        var read = KafkaRoute.ReadAll(faults.Proxy, Topic, 1, Timeout).Select(r => r.Value).ToList();
        output.WriteLine($"forward={forward}: the client was told MESSAGE_TOO_LARGE; the log holds {string.Join(", ", read)}");
        Assert.Equal(forward ? ["first", "failed", "after"] : ["first", "after"], read);
    }

    [Fact]
    public async Task An_idempotent_producer_under_NOT_LEADER_OR_FOLLOWER_at_rate_0_3_delivers_every_message_exactly_once()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        const string Topic = "exact";
        const int Partitions = 3, Messages = 150;
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic(Topic, Partitions, 3);
        await using var faults = await StartAsync(cluster);
        string name = $"notleader_{Guid.NewGuid():n}";
        using var applied = new AppliedCount(name);
        await AddEverywhereAsync(faults, $$$"""{"name":"{{{name}}}","type":"kafka_error","attributes":{"api":"Produce","error":"NOT_LEADER_OR_FOLLOWER","rate":0.3}}""");

        // Sent again, as the statistics show it: a request retried (txretries), or messages
        // transmitted more often than there are messages (txmsgs; librdkafka puts a batch that got
        // NOT_LEADER_OR_FOLLOWER back on its partition's queue rather than retry the request).
        long retries = 0, transmitted = 0;
        var errors = new ConcurrentQueue<string>();
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = faults.Proxy.Endpoint(KafkaRoute.Name).ToString(),
            ClientId = "exactly-once",
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 2,
            BatchNumMessages = 5, // many Produce requests, so a rate of 0.3 hits some
            StatisticsIntervalMs = 200,
        })
        .SetLogHandler((_, _) => { })
        .SetErrorHandler((_, e) => errors.Enqueue(e.Reason))
        .SetStatisticsHandler((_, json) =>
        {
            var (txretries, txmsgs) = Retries(json);
            Interlocked.Exchange(ref retries, Math.Max(Interlocked.Read(ref retries), txretries));
            Interlocked.Exchange(ref transmitted, Math.Max(Interlocked.Read(ref transmitted), txmsgs));
        })
        .Build())
        {
            using var deadline = new CancellationTokenSource(Timeout);
            var reports = await Task.WhenAll(Enumerable.Range(0, Messages).Select(i =>
                producer.ProduceAsync(new TopicPartition(Topic, i % Partitions), new Message<string, string> { Key = $"{i}", Value = $"m-{i}" }, deadline.Token)));
            Assert.All(reports, r => Assert.Equal(PersistenceStatus.Persisted, r.Status));
            await Poll.UntilAsync(() => Interlocked.Read(ref retries) > 0 || Interlocked.Read(ref transmitted) > Messages,
                () => $"the producer's statistics to show messages sent again (txretries {Interlocked.Read(ref retries)}, txmsgs {Interlocked.Read(ref transmitted)} for {Messages} messages, {applied.Value} errors injected)", Timeout);
        }

        var read = KafkaRoute.ReadAll(faults.Proxy, Topic, Partitions, Timeout);
        output.WriteLine($"{Messages} produced, {read.Count} read back, {applied.Value} Produce requests answered NOT_LEADER_OR_FOLLOWER; statistics: txmsgs {Interlocked.Read(ref transmitted)}, txretries {Interlocked.Read(ref retries)}; client errors: {string.Join(" | ", errors)}");
        Assert.True(applied.Value > 0, "the toxic hit some Produce requests");
        var duplicates = read.GroupBy(r => r.Value).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.Empty(duplicates);
        Assert.Equal(Enumerable.Range(0, Messages).Select(i => $"m-{i}").Order(StringComparer.Ordinal), read.Select(r => r.Value).Order(StringComparer.Ordinal));
        Assert.All(read, r => Assert.Equal(int.Parse(r.Value[2..], System.Globalization.CultureInfo.InvariantCulture) % Partitions, r.Partition));

        // In each partition the messages are in the order they were sent: retries did not reorder them.
        foreach (var partition in read.GroupBy(r => r.Partition))
        {
            var order = partition.Select(r => int.Parse(r.Value[2..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(order.Order(), order);
        }
    }

    [Fact]
    public async Task A_consumer_group_under_COORDINATOR_NOT_AVAILABLE_count_3_on_FindCoordinator_recovers_and_consumes()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        const string Topic = "coordinated", Group = "coordinated-group";
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic(Topic, 2, 3);
        cluster.SetGroupInitialRebalanceDelay(0);
        await using var faults = await StartAsync(cluster);
        using (var producer = KafkaRoute.Producer(faults.Proxy, "coordinated-producer"))
        {
            for (int i = 0; i < 10; i++)
            {
                await producer.ProduceAsync(new TopicPartition(Topic, i % 2), new Message<string, string> { Key = $"{i}", Value = $"c-{i}" });
            }
        }

        string name = $"nocoordinator_{Guid.NewGuid():n}";
        using var applied = new AppliedCount(name);
        int proxies = await AddEverywhereAsync(faults, $$$"""{"name":"{{{name}}}","type":"kafka_error","attributes":{"api":"FindCoordinator","error":"COORDINATOR_NOT_AVAILABLE","count":3}}""");

        var logs = new ConcurrentQueue<string>();
        var received = new ConcurrentQueue<string>();
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = faults.Proxy.Endpoint(KafkaRoute.Name).ToString(),
            ClientId = "coordinated-consumer",
            GroupId = Group,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            Debug = "cgrp",
        }).SetLogHandler((_, m) => logs.Enqueue(m.Message)).Build();
        consumer.Subscribe(Topic);
        var deadline = DateTime.UtcNow + Timeout;
        while (received.Count < 10 && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { Message: { } message })
            {
                received.Enqueue(message.Value);
            }
        }

        output.WriteLine($"{received.Count} consumed; FindCoordinator answered COORDINATOR_NOT_AVAILABLE {applied.Value} times over {proxies} proxies");
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"c-{i}").Order(StringComparer.Ordinal), received.Order(StringComparer.Ordinal));

        // The group found its coordinator only on a connection whose route had used up its three.
        Assert.InRange(applied.Value, 3, 3 * proxies);
        Assert.Contains(logs, l => l.Contains("Coordinator not available", StringComparison.OrdinalIgnoreCase) || l.Contains("COORDINATOR_NOT_AVAILABLE", StringComparison.Ordinal));
        consumer.Close();
    }

    [Fact]
    public async Task Kafka_drop_on_Fetch_makes_the_consumer_time_out_and_it_recovers_once_the_toxic_is_removed()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        const string Topic = "dropped";
        using var cluster = MockCluster.Create(1);
        cluster.CreateTopic(Topic, 1, 1);
        await using var faults = await StartAsync(cluster);
        using var producer = KafkaRoute.Producer(faults.Proxy, "drop-producer");
        await producer.ProduceAsync(Topic, new Message<string, string> { Key = "k", Value = "before" });

        var logs = new ConcurrentQueue<string>();
        var received = new ConcurrentQueue<string>();
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = faults.Proxy.Endpoint(KafkaRoute.Name).ToString(),
            ClientId = "drop-consumer",
            GroupId = "drop-" + Guid.NewGuid().ToString("n"),
            AutoOffsetReset = AutoOffsetReset.Earliest,
            SocketTimeoutMs = 2000,
            FetchWaitMaxMs = 100,
        })
        .SetLogHandler((_, m) => logs.Enqueue($"{m.Facility}: {m.Message}"))
        .SetErrorHandler((_, e) => logs.Enqueue($"error {e.Code}: {e.Reason}"))
        .Build();
        consumer.Assign(new TopicPartitionOffset(Topic, 0, Offset.Beginning));
        await ConsumeAsync("before");

        await AddEverywhereAsync(faults, """{"name":"drop_fetch","type":"kafka_drop","attributes":{"api":"Fetch"}}""");
        await producer.ProduceAsync(Topic, new Message<string, string> { Key = "k", Value = "during" });
        await Poll.UntilAsync(() =>
        {
            consumer.Consume(TimeSpan.FromMilliseconds(100));
            return logs.Any(l => l.Contains("timed out", StringComparison.OrdinalIgnoreCase) && l.Contains("Fetch", StringComparison.OrdinalIgnoreCase));
        }, () => $"the consumer to report a timed out Fetch; it logged: {string.Join(" | ", logs.TakeLast(5))}", Timeout);
        Assert.DoesNotContain("during", received);
        output.WriteLine($"timeout reported: {logs.First(l => l.Contains("timed out", StringComparison.OrdinalIgnoreCase) && l.Contains("Fetch", StringComparison.OrdinalIgnoreCase))}");

        await RemoveEverywhereAsync(faults, "drop_fetch");
        await ConsumeAsync("during");

        async Task ConsumeAsync(string value) => await Poll.UntilAsync(() =>
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { Message: { } message })
            {
                received.Enqueue(message.Value);
            }

            return received.Contains(value);
        }, $"the consumer to read '{value}'", Timeout);
    }

    [Fact]
    public async Task Kafka_error_aimed_at_client_A_fails_A_alone_while_B_delivers_everything_at_its_no_fault_latency()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        const string Topic = "aimed";
        const int Messages = 60;
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic(Topic, 3, 1);
        await using var faults = await StartAsync(cluster);

        static IProducer<string, string> Producer(FaultProxy faults, string clientId, ConcurrentQueue<string> errors) =>
            new ProducerBuilder<string, string>(new ProducerConfig
            {
                BootstrapServers = faults.Proxy.Endpoint(KafkaRoute.Name).ToString(),
                ClientId = clientId,
                EnableIdempotence = false,
                Acks = Acks.All,
                LingerMs = 0,
            }).SetLogHandler((_, _) => { }).SetErrorHandler((_, e) => errors.Enqueue(e.Reason)).Build();

        // One message at a time, so each delivery's latency is its own.
        static async Task<(int Delivered, int Errors, List<double> LatenciesMs, List<string> Codes)> RunAsync(IProducer<string, string> producer, string prefix)
        {
            int delivered = 0, failed = 0;
            var latencies = new List<double>();
            var codes = new List<string>();
            for (int i = 0; i < Messages; i++)
            {
                long start = Stopwatch.GetTimestamp();
                try
                {
                    await producer.ProduceAsync(new TopicPartition(Topic, i % 3), new Message<string, string> { Key = $"{i}", Value = $"{prefix}-{i}" });
                    delivered++;
                    latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
                catch (ProduceException<string, string> e)
                {
                    failed++;
                    codes.Add(e.Error.Code.ToString());
                }
            }

            return (delivered, failed, latencies, codes);
        }

        var errorsA = new ConcurrentQueue<string>();
        var errorsB = new ConcurrentQueue<string>();
        using var a = Producer(faults, "A", errorsA);
        using var b = Producer(faults, "B", errorsB);

        // B's no-fault range first, measured in this run.
        var baseline = await RunAsync(b, "baseline");
        Assert.Equal((Messages, 0), (baseline.Delivered, baseline.Errors));

        string name = $"aimed_{Guid.NewGuid():n}";
        using var applied = new AppliedCount(name);
        await AddEverywhereAsync(faults, $$$"""{"name":"{{{name}}}","type":"kafka_error","attributes":{"api":"Produce","error":"MESSAGE_TOO_LARGE","rate":0.5},"match":{"client_id":"^A$"}}""");
        var both = await Task.WhenAll(RunAsync(a, "a"), RunAsync(b, "b"));
        var (resultA, resultB) = (both[0], both[1]);

        static double Percentile(List<double> values, double p) => values.Count == 0 ? double.NaN : values.Order().ElementAt((int)Math.Min(values.Count - 1, Math.Floor(p * values.Count)));
        output.WriteLine($"B alone (no fault):  delivered {baseline.Delivered}, errors {baseline.Errors}, latency p50 {Percentile(baseline.LatenciesMs, 0.5):0.0} ms, p90 {Percentile(baseline.LatenciesMs, 0.9):0.0} ms");
        output.WriteLine($"A (kafka_error MESSAGE_TOO_LARGE rate 0.5, client_id ^A$): delivered {resultA.Delivered}, errors {resultA.Errors} ({string.Join(", ", resultA.Codes.Distinct())})");
        output.WriteLine($"B (same time, same route): delivered {resultB.Delivered}, errors {resultB.Errors}, latency p50 {Percentile(resultB.LatenciesMs, 0.5):0.0} ms, p90 {Percentile(resultB.LatenciesMs, 0.9):0.0} ms");
        output.WriteLine($"errors injected: {applied.Value}");

        Assert.True(resultA.Errors > 0, "A saw errors");
        Assert.All(resultA.Codes, code => Assert.Equal(nameof(ErrorCode.MsgSizeTooLarge), code));
        Assert.Equal(resultA.Errors, applied.Value);
        Assert.Equal(Messages, resultA.Delivered + resultA.Errors);
        Assert.Equal((Messages, 0), (resultB.Delivered, resultB.Errors));
        Assert.Empty(errorsB);

        // B's median stays in its no-fault range: not above its no-fault 90th percentile, with slack for a shared machine.
        Assert.True(Percentile(resultB.LatenciesMs, 0.5) <= (Percentile(baseline.LatenciesMs, 0.9) * 2) + 10,
            $"B's median {Percentile(resultB.LatenciesMs, 0.5):0.0} ms against its no-fault p90 {Percentile(baseline.LatenciesMs, 0.9):0.0} ms");
    }

    [Fact]
    public async Task Kafka_throttle_sets_the_throttle_time_the_client_sees_and_topic_aims_kafka_latency_at_one_topic()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        cluster.CreateTopic("slow", 1, 1);
        cluster.CreateTopic("fast", 1, 1);
        await using var faults = await StartAsync(cluster);
        await AddEverywhereAsync(faults, """{"name":"slow_topic","type":"kafka_latency","attributes":{"api":"Produce","topic":"^slow$","latency":400}}""");
        await AddEverywhereAsync(faults, """{"name":"throttled","type":"kafka_throttle","attributes":{"api":"Produce","throttle_ms":250}}""");

        long throttleMax = 0;
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = faults.Proxy.Endpoint(KafkaRoute.Name).ToString(),
            ClientId = "throttled",
            LingerMs = 0,
            StatisticsIntervalMs = 200,
        })
        .SetLogHandler((_, _) => { })
        .SetStatisticsHandler((_, json) => Interlocked.Exchange(ref throttleMax, Math.Max(Interlocked.Read(ref throttleMax), MaxThrottle(json))))
        .Build();

        await producer.ProduceAsync("fast", new Message<string, string> { Key = "k", Value = "warm" });
        var fast = new List<double>();
        var slow = new List<double>();
        for (int i = 0; i < 3; i++)
        {
            foreach (var (topic, times) in new[] { ("fast", fast), ("slow", slow) })
            {
                long start = Stopwatch.GetTimestamp();
                await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = $"{i}" });
                times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }

        await Poll.UntilAsync(() => Interlocked.Read(ref throttleMax) >= 250, () => $"the producer's statistics to show a throttle time of 250 ms (max {Interlocked.Read(ref throttleMax)})", Timeout);
        output.WriteLine($"produce to 'slow': {string.Join(", ", slow.Select(t => $"{t:0}"))} ms; to 'fast': {string.Join(", ", fast.Select(t => $"{t:0}"))} ms; throttle max {Interlocked.Read(ref throttleMax)} ms");
        Assert.All(slow, t => Assert.True(t >= 395, $"a produce to 'slow' took {t:0} ms"));
        Assert.True(fast.Min() < 395, $"every produce to 'fast' took 400 ms or more: {string.Join(", ", fast)}");
    }

    /// <summary>The brokers' request retries (txretries), and the messages transmitted (txmsgs, resends included).</summary>
    private static (long TxRetries, long TxMsgs) Retries(string statistics)
    {
        using var json = JsonDocument.Parse(statistics);
        var root = json.RootElement;
        long txretries = root.TryGetProperty("brokers", out var brokers)
            ? brokers.EnumerateObject().Sum(b => b.Value.TryGetProperty("txretries", out var r) ? r.GetInt64() : 0)
            : 0;
        return (txretries, root.TryGetProperty("txmsgs", out var txmsgs) ? txmsgs.GetInt64() : 0);
    }

    private static long MaxThrottle(string statistics)
    {
        using var json = JsonDocument.Parse(statistics);
        return json.RootElement.TryGetProperty("brokers", out var brokers)
            ? brokers.EnumerateObject().Max(b => b.Value.TryGetProperty("throttle", out var t) && t.TryGetProperty("max", out var max) ? max.GetInt64() : 0)
            : 0;
    }

    /// <summary>Counts <c>bindproxy.faults.applied</c> for one toxic name (unique per test, as tests share the process).</summary>
    private sealed class AppliedCount : IDisposable
    {
        private readonly MeterListener _listener = new();
        private long _value;

        public AppliedCount(string toxic)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == "bindproxy.faults.applied")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "toxic" && (string?)tag.Value == toxic)
                    {
                        Interlocked.Add(ref _value, value);
                    }
                }
            });
            _listener.Start();
        }

        public long Value => Interlocked.Read(ref _value);

        public void Dispose() => _listener.Dispose();
    }
}
