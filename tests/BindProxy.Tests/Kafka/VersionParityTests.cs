using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// A client negotiates the same version of every API through the proxy as directly: the same
/// workload runs against librdkafka's mock cluster both ways, and the versions come from the
/// client's own protocol log ("Sent MetadataRequest (v13, ..."), not from the proxy.
/// </summary>
public sealed partial class VersionParityTests
{
    private const string Topic = "parity";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Confluent_Kafka_negotiates_the_same_versions_through_the_proxy_as_directly()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = Cluster();
        await using var proxy = await KafkaRoute.StartProxyAsync(cluster);
        var direct = await ConfluentWorkloadAsync(cluster.BrokerAddresses[0], "direct");
        var proxied = await ConfluentWorkloadAsync(proxy.Endpoint(KafkaRoute.Name).ToString(), "proxied");
        AssertSame(direct, proxied, "Confluent.Kafka");
    }

    [Fact]
    public async Task Kcat_negotiates_the_same_versions_through_the_proxy_as_directly()
    {
        var kcat = ExternalTool.Require("kcat");
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = Cluster();
        await using var proxy = await KafkaRoute.StartProxyAsync(cluster);
        var direct = await KcatWorkloadAsync(kcat, cluster.BrokerAddresses[0]);
        var proxied = await KcatWorkloadAsync(kcat, proxy.Endpoint(KafkaRoute.Name).ToString());
        AssertSame(direct, proxied, "kcat");
    }

    private static MockCluster Cluster()
    {
        var cluster = MockCluster.Create(3);
        cluster.CreateTopicLedByEachBroker(Topic, 3, 1);

        cluster.SetGroupInitialRebalanceDelay(0);
        return cluster;
    }

    private static void AssertSame(SortedDictionary<string, SortedSet<int>> direct, SortedDictionary<string, SortedSet<int>> proxied, string client)
    {
        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine($"{client}: request, versions direct, versions proxied");
        foreach (var api in direct.Keys.Union(proxied.Keys).Order(StringComparer.Ordinal))
        {
            output?.WriteLine($"{api}: {Show(direct.GetValueOrDefault(api))} | {Show(proxied.GetValueOrDefault(api))}");
        }

        Assert.True(direct.Count >= 5, $"only {direct.Count} APIs seen directly");
        Assert.Equal(direct.Keys, proxied.Keys);
        foreach (var (api, versions) in direct)
        {
            Assert.True(versions.SetEquals(proxied[api]), $"{client} {api}: direct {Show(versions)}, proxied {Show(proxied[api])}");
        }

        static string Show(SortedSet<int>? versions) => versions is null ? "-" : string.Join(",", versions.Select(v => $"v{v}"));
    }

    private static async Task<SortedDictionary<string, SortedSet<int>>> ConfluentWorkloadAsync(string bootstrap, string run)
    {
        var log = new ConcurrentQueue<string>();
        using var timeout = new CancellationTokenSource(Timeout);
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            EnableIdempotence = true,
            Acks = Acks.All,
            Debug = "protocol",
        }).SetLogHandler((_, m) => log.Enqueue(m.Message)).Build())
        {
            for (var i = 0; i < 9; i++)
            {
                await producer.ProduceAsync(new TopicPartition(Topic, i % 3), new Message<string, string> { Key = $"{run}-{i}", Value = "v" }, timeout.Token);
            }
        }

        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = $"parity-{run}",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = true,
            Debug = "protocol",
        }).SetLogHandler((_, m) => log.Enqueue(m.Message)).Build())
        {
            consumer.Subscribe(Topic);
            var read = 0;
            while (read < 9 && !timeout.IsCancellationRequested)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(200))?.Message is not null)
                {
                    read++;
                }
            }

            consumer.Commit();
            consumer.Close();
            Assert.True(read >= 9, $"{run}: consumed {read} of 9");
        }

        return Versions(log);
    }

    private static async Task<SortedDictionary<string, SortedSet<int>>> KcatWorkloadAsync(string kcat, string bootstrap)
    {
        var log = new ConcurrentQueue<string>();
        await RunKcatAsync(kcat, null, log, "-b", bootstrap, "-L", "-d", "protocol");
        await RunKcatAsync(kcat, "a:1\nb:2\nc:3\n", log, "-b", bootstrap, "-P", "-t", Topic, "-K", ":", "-d", "protocol");
        await RunKcatAsync(kcat, null, log, "-b", bootstrap, "-C", "-t", Topic, "-o", "beginning", "-e", "-q", "-d", "protocol");
        return Versions(log);
    }

    private static async Task RunKcatAsync(string kcat, string? stdin, ConcurrentQueue<string> log, params string[] args)
    {
        var info = new ProcessStartInfo(kcat) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin).WaitAsync(Timeout);
        }

        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            process.Kill();
            throw;
        }

        await stdout.WaitAsync(Timeout);
        foreach (var line in (await stderr.WaitAsync(Timeout)).Split('\n'))
        {
            log.Enqueue(line);
        }

        Assert.True(process.ExitCode == 0, $"kcat {string.Join(' ', args)} exited {process.ExitCode}");
    }

    private static SortedDictionary<string, SortedSet<int>> Versions(IEnumerable<string> log)
    {
        var versions = new SortedDictionary<string, SortedSet<int>>(StringComparer.Ordinal);
        foreach (var line in log)
        {
            foreach (Match m in SentRequest().Matches(line))
            {
                var api = m.Groups["api"].Value;
                if (!versions.TryGetValue(api, out var set))
                {
                    versions[api] = set = [];
                }

                set.Add(int.Parse(m.Groups["version"].Value, System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return versions;
    }

    // librdkafka's debug=protocol line for every request it sends: "Sent MetadataRequest (v13, 81 bytes @ 0, CorrId 3)".
    [GeneratedRegex(@"Sent (?<api>\w+)Request \(v(?<version>\d+),")]
    private static partial Regex SentRequest();
}
