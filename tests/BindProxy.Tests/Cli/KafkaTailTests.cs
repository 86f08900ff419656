using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Tests.Admin;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;
using Confluent.Kafka;

namespace BindProxy.Tests.Cli;

/// <summary><c>bindproxy kafka tail</c> as a process of its own, following a proxy while real clients (Confluent.Kafka, kcat) talk through it.</summary>
public sealed class KafkaTailTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Tail_prints_a_client_s_produce_and_consume_session_marks_errors_and_stops_cleanly_on_Ctrl_C()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        var kcat = ExternalTool.Require("kcat");
        using var cluster = MockCluster.Create(1);
        cluster.CreateTopic("tail-topic", partitions: 1, replicationFactor: 1);
        await using var admin = await AdminProxy.StartAsync(KafkaConversationTests.Route(cluster, KafkaRoute.Name));
        await using var tail = ProxyProcess.Start(AppContext.BaseDirectory, "kafka", "tail", "--client", "tail-client", "--admin", admin.Admin.ToString());
        await tail.WaitForLineAsync("following ", Timeout);
        using var timeout = new CancellationTokenSource(Timeout);

        // Confluent.Kafka produces and consumes as "tail-client"; another client's requests stay out of the tail.
        using (var producer = KafkaConversationTests.Producer(admin, KafkaRoute.Name, "tail-client"))
        {
            await producer.ProduceAsync("tail-topic", new Message<string, string> { Key = "k", Value = "hello" }, timeout.Token);
        }

        using (var other = KafkaConversationTests.Producer(admin, KafkaRoute.Name, "someone-else"))
        {
            await other.ProduceAsync("tail-topic", new Message<string, string> { Key = "k", Value = "other" }, timeout.Token);
        }

        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = admin.Proxy.Endpoint(KafkaRoute.Name).ToString(),
            ClientId = "tail-client",
            GroupId = "tail-group",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).SetLogHandler((_, _) => { }).Build())
        {
            consumer.Subscribe("tail-topic");
            var read = 0;
            await Poll.UntilAsync(() => (read += consumer.Consume(TimeSpan.FromMilliseconds(100)) is { Message: not null } ? 1 : 0) >= 2, "the consumer to read both messages", Timeout);
            consumer.Close();
        }

        // kcat asks for a topic that does not exist: the Metadata error stands out.
        await KcatTests.RunAsync(kcat, null, "-b", admin.Proxy.Endpoint(KafkaRoute.Name).ToString(), "-L", "-t", "no-such-topic", "-X", "client.id=tail-client", "-X", "allow.auto.create.topics=false");

        var produce = await tail.WaitForLineAsync(" Produce v", Timeout);
        Assert.Contains("tail-client", produce, StringComparison.Ordinal);
        Assert.Contains("tail-topic[0] 1 records", produce, StringComparison.Ordinal);
        var fetch = await tail.WaitForLineAsync(" Fetch v", Timeout);
        Assert.Contains("127.0.0.2:", fetch, StringComparison.Ordinal);
        await tail.WaitForLineAsync(" JoinGroup v", Timeout);
        await tail.WaitForLineAsync(" OffsetCommit v", Timeout);
        var error = await tail.WaitForLineAsync("UNKNOWN_TOPIC_OR_PARTITION", Timeout);
        Assert.StartsWith("! ", error, StringComparison.Ordinal);
        Assert.Contains(" Metadata v", error, StringComparison.Ordinal);
        Assert.DoesNotContain(tail.Lines, l => l.Contains("someone-else", StringComparison.Ordinal));

        tail.Interrupt();
        await tail.WaitForLineAsync("stopped", Timeout);
        Assert.Equal(0, await tail.WaitForExitAsync(Timeout));
        Assert.Contains("stopped", tail.Lines);
        foreach (var line in tail.Lines)
        {
            output.WriteLine(line);
        }
    }

    [Fact]
    public async Task Tail_says_so_when_the_proxy_goes_away_and_when_there_is_none()
    {
        var admin = await AdminProxy.StartAsync(new RouteConfig { Name = "k", Listen = "127.0.0.1:0", Upstream = "127.0.0.1:9", Source = "127.0.0.2", Protocol = "Kafka" });
        var address = admin.Admin.ToString();
        await using var tail = ProxyProcess.Start(AppContext.BaseDirectory, "kafka", "tail", "--admin", address);
        await tail.WaitForLineAsync("following ", Timeout);
        await admin.DisposeAsync();
        await tail.WaitForLineAsync("went away", Timeout);
        Assert.Equal(1, await tail.WaitForExitAsync(Timeout));

        await using var none = ProxyProcess.Start(AppContext.BaseDirectory, "kafka", "tail", "--admin", address);
        var line = await none.WaitForLineAsync("error: ", Timeout);
        Assert.Contains("connection refused", line, StringComparison.Ordinal);
        Assert.Equal(1, await none.WaitForExitAsync(Timeout));
    }
}
