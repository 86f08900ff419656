using BindProxy.Demo;
using BindProxy.Kafka.Protocol;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// Captures real Kafka traffic at test time: a Confluent.Kafka producer, consumer and admin client
/// talk to librdkafka's mock cluster through <see cref="CaptureRelay"/>, which records every frame.
/// Nothing is committed; the bytes are regenerated on every run, so they always come from a real peer.
/// </summary>
/// <remarks>
/// The mock brokers are told to advertise the relay's ports, so the client reaches every broker
/// through the relay without the relay rewriting anything. Leader moves make the brokers answer
/// NOT_LEADER_OR_FOLLOWER, which is when KIP-951 NodeEndpoints appear in Produce/Fetch responses.
/// </remarks>
public sealed class GoldenCapture : IAsyncLifetime
{
    private const string Topic = "golden";
    private const string Group = "golden-group";

    internal IReadOnlyList<CapturedExchange> Exchanges { get; private set; } = [];

    internal string? SkipReason { get; private set; }

    internal IReadOnlyList<string> Notes { get; private set; } = [];

    public async ValueTask InitializeAsync()
    {
        SkipReason = MockCluster.EnsureNativeLibrary();
        if (SkipReason is not null)
        {
            return;
        }

        var notes = new List<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var cluster = MockCluster.Create(3);
        await using var relay = new CaptureRelay(cluster.BrokerAddresses);
        for (var i = 0; i < cluster.BrokerCount; i++)
        {
            cluster.SetHostPort(i + 1, "127.0.0.1", relay.Ports[i]);
        }

        cluster.CreateTopicLedByEachBroker(Topic, 3, 3);

        cluster.SetCoordinator("group", Group, 2);
        var bootstrap = $"127.0.0.1:{relay.Ports[0]}";

        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, LingerMs = 0 }).Build())
        {
            for (var i = 0; i < 6; i++)
            {
                await producer.ProduceAsync(new TopicPartition(Topic, i % 3), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" }, timeout.Token);
            }

            // Move partition 0's leader: the producer's next batch goes to the old leader, which
            // answers NOT_LEADER_OR_FOLLOWER (with NodeEndpoints, if the broker implements KIP-951).
            cluster.SetLeader(Topic, 0, 3);
            for (var i = 0; i < 3; i++)
            {
                await producer.ProduceAsync(new TopicPartition(Topic, 0), new Message<string, string> { Key = "moved", Value = $"m{i}" }, timeout.Token);
            }
        }

        var consumerConfig = new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = Group,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        };
        using (var consumer = new ConsumerBuilder<string, string>(consumerConfig).Build())
        {
            consumer.Subscribe(Topic);
            var received = 0;
            while (received < 9 && !timeout.IsCancellationRequested)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(200))?.Message is not null)
                {
                    received++;
                }
            }

            // The consumer keeps fetching from every leader; after this move its next fetch for
            // partition 1 goes to the old leader and gets NOT_LEADER_OR_FOLLOWER.
            // Until that answer is captured (a loaded machine can take seconds), plus a little more.
            cluster.SetLeader(Topic, 1, 1);
            var until = DateTime.UtcNow.AddSeconds(15);
            var after = DateTime.MaxValue;
            while (DateTime.UtcNow < until && DateTime.UtcNow < after && !timeout.IsCancellationRequested)
            {
                consumer.Consume(TimeSpan.FromMilliseconds(100));
                if (after == DateTime.MaxValue && relay.Exchanges.Any(e => e.ApiKey == KafkaApiKeys.Fetch && CarriesNodeEndpoints(e)))
                {
                    after = DateTime.UtcNow.AddMilliseconds(300);
                }
            }

            notes.Add($"consumed {received}");
            consumer.Close();
        }

        await TransactionsAsync(bootstrap, timeout.Token);
        await KcatAsync(bootstrap, notes);
        Notes = notes;
        Exchanges = relay.Exchanges;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>A transactional producer: the transaction APIs.</summary>
    private static async Task TransactionsAsync(string bootstrap, CancellationToken cancellationToken)
    {
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, TransactionalId = "golden-tx", LingerMs = 0 }).Build())
        {
            producer.InitTransactions(TimeSpan.FromSeconds(20));
            producer.BeginTransaction();
            await producer.ProduceAsync(new TopicPartition(Topic, 2), new Message<string, string> { Key = "tx", Value = "in a transaction" }, cancellationToken);
            producer.CommitTransaction(TimeSpan.FromSeconds(20));
        }
    }

    /// <summary>Debian's kcat (librdkafka 2.0): the classic, non-flexible encodings of the same APIs.</summary>
    private static async Task KcatAsync(string bootstrap, List<string> notes)
    {
        if (Infrastructure.ExternalTool.Find("kcat") is not { } kcat)
        {
            notes.Add("kcat not installed: its frames are not in the capture");
            return;
        }

        foreach (var (stdin, args) in new (string?, string[])[]
        {
            (null, ["-b", bootstrap, "-L"]),
            ("k1:kcat 1\nk2:kcat 2\n", ["-b", bootstrap, "-P", "-t", Topic, "-K", ":"]),
            (null, ["-b", bootstrap, "-C", "-t", Topic, "-o", "beginning", "-e", "-q"]),
        })
        {
            var info = new System.Diagnostics.ProcessStartInfo(kcat) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in args)
            {
                info.ArgumentList.Add(arg);
            }

            using var process = System.Diagnostics.Process.Start(info)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin);
            }

            process.StandardInput.Close();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await Task.WhenAll(stdout, stderr);
            notes.Add($"kcat {args[2]}: exit {process.ExitCode}");
        }
    }

    private static bool CarriesNodeEndpoints(CapturedExchange exchange)
    {
        var seen = new RecordingMapper();
        TestSupport.Rewrite(exchange.Response, exchange.ApiKey, exchange.ApiVersion, seen);
        return seen.Seen.Count > 0;
    }
}
