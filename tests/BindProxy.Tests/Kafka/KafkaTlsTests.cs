using System.Text.RegularExpressions;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// A Kafka cluster that accepts only TLS, built for the test: librdkafka's mock brokers, each
/// behind a TLS terminator (socat OPENSSL-LISTEN) whose port the broker advertises, with
/// certificates made here. Plaintext clients reach it through a route with <c>Tls</c>; every
/// broker connection is TLS with the broker's advertised host as SNI.
/// </summary>
public sealed partial class KafkaTlsTests
{
    private const string Topic = "tls-topic";
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(30);

    /// <summary>The mock cluster with a TLS terminator in front of each broker, advertised as <c>localhost:port</c>.</summary>
    private sealed class TlsCluster : IAsyncDisposable
    {
        private readonly List<TlsTerminator> _terminators = [];

        public required MockCluster Cluster { get; init; }

        public required TestCertificates Certificates { get; init; }

        public IReadOnlyList<TlsTerminator> Terminators => _terminators;

        public string Bootstrap => $"localhost:{_terminators[0].Port}";

        public static async Task<TlsCluster> StartAsync(int brokers, string? clientCa = null)
        {
            MockClusterTests.SkipUnlessNativeLibrary();
            var certificates = new TestCertificates();
            var cluster = MockCluster.Create(brokers);
            var fixture = new TlsCluster { Cluster = cluster, Certificates = certificates };
            for (int id = 1; id <= brokers; id++)
            {
                var address = cluster.BrokerAddresses[id - 1];
                var backend = System.Net.IPEndPoint.Parse(address);
                var terminator = await TlsTerminator.StartAsync(certificates.Combined("server"), backend, clientCa is null ? null : certificates.CaFile);
                fixture._terminators.Add(terminator);
                cluster.SetHostPort(id, "localhost", terminator.Port);
            }

            cluster.CreateTopicLedByEachBroker(Topic, brokers, 1);

            return fixture;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var terminator in _terminators)
            {
                await terminator.DisposeAsync();
            }

            Cluster.Dispose();
            Certificates.Dispose();
        }
    }

    private static Task<TestProxy> StartProxyAsync(TlsCluster fixture, Dictionary<string, string?> tls) =>
        TestProxy.StartAsync(new RouteConfig
        {
            Name = KafkaRoute.Name,
            Listen = "127.0.0.1:0",
            Upstream = fixture.Bootstrap,
            Source = KafkaRoute.Source,
            Protocol = "Kafka",
            Tls = tls,
        });

    [Fact]
    public async Task The_fixture_accepts_kcat_over_SSL_and_advertises_the_terminators()
    {
        var kcat = ExternalTool.Require("kcat");
        await using var fixture = await TlsCluster.StartAsync(3);
        var list = await KcatTests.RunAsync(kcat, null, "-b", fixture.Bootstrap, "-X", "security.protocol=ssl", "-X", $"ssl.ca.location={fixture.Certificates.CaFile}", "-L", "-t", Topic);
        Assert.Equal(fixture.Terminators.Select(t => $"localhost:{t.Port}").Order(), BrokerLine().Matches(list).Select(m => m.Groups["address"].Value).Order());
    }

    [Fact]
    public async Task Plaintext_kcat_lists_produces_and_consumes_through_a_Tls_route_and_the_wire_shows_the_broker_SNI()
    {
        var kcat = ExternalTool.Require("kcat");
        await using var fixture = await TlsCluster.StartAsync(3);
        await using var proxy = await StartProxyAsync(fixture, new() { ["CaFile"] = fixture.Certificates.CaFile });
        var bootstrap = proxy.Endpoint(KafkaRoute.Name).ToString();

        PacketCapture? capture = null;
        if (Environment.UserName == "root" && ExternalTool.Find("tshark") is not null)
        {
            var ports = fixture.Terminators.Select(t => t.Port).ToList();
            capture = await PacketCapture.StartAsync($"host {KafkaRoute.Source} and ({string.Join(" or ", ports.Select(p => $"tcp port {p}"))})",
                async () => await KcatTests.RunAsync(kcat, null, "-b", bootstrap, "-L"));
        }

        await using (capture)
        {
            var list = await KcatTests.RunAsync(kcat, null, "-b", bootstrap, "-L", "-t", Topic);
            TestContext.Current.TestOutputHelper?.WriteLine($"kcat -b {bootstrap} -L -t {Topic}:\n{list}");
            var listed = BrokerLine().Matches(list).Select(m => m.Groups["address"].Value).ToList();
            Assert.Equal(3, listed.Count);
            Assert.All(listed, a => Assert.StartsWith("127.0.0.1:", a, StringComparison.Ordinal));

            var lines = Enumerable.Range(0, 30).Select(i => $"key-{i}:over TLS {i}").ToList();
            await KcatTests.RunAsync(kcat, string.Join('\n', lines) + "\n", "-b", bootstrap, "-P", "-t", Topic, "-K", ":", "-X", "acks=all");
            var consumed = await KcatTests.RunAsync(kcat, null, "-b", bootstrap, "-C", "-t", Topic, "-o", "beginning", "-e", "-q", "-f", "%k:%s\\n");
            Assert.Equal(lines.Order(), consumed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
            TestContext.Current.TestOutputHelper?.WriteLine($"produced 30, consumed {consumed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length}: {string.Join(" | ", consumed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().Take(3))} ...");

            if (capture is not null)
            {
                await capture.StopAsync();
                var hellos = await capture.ReadAsync("tls.handshake.type == 1", "ip.src", "tls.handshake.extensions_server_name");
                Assert.NotEmpty(hellos);
                TestContext.Current.TestOutputHelper?.WriteLine($"ClientHellos (ip.src, SNI): {string.Join("; ", hellos.Select(h => string.Join(" ", h)).Distinct())} ({hellos.Count} of them)");
                Assert.All(hellos, h => Assert.Equal([KafkaRoute.Source, "localhost"], h));

                // Nothing on the upstream legs is plaintext Kafka.
                Assert.Empty(await capture.ReadAsync("kafka", "frame.number"));
            }
        }

        foreach (var broker in new[] { "broker-1", "broker-2", "broker-3" })
        {
            await proxy.Logs.WaitForAsync(Prompt, $"{KafkaRoute.Name}/{broker}: ", "→ 127.0.0.2:", "closed");
        }
    }

    [Fact]
    public async Task A_Confluent_client_produces_and_consumes_through_a_Tls_route_to_a_cluster_that_requires_client_certificates()
    {
        await using var fixture = await TlsCluster.StartAsync(2, clientCa: "required");
        await using var proxy = await StartProxyAsync(fixture, new()
        {
            ["CaFile"] = fixture.Certificates.CaFile,
            ["CertificateFile"] = fixture.Certificates.Cert("client"),
            ["KeyFile"] = fixture.Certificates.Key("client"),
        });

        using var timeout = new CancellationTokenSource(Prompt);
        using (var producer = KafkaRoute.Producer(proxy, "tls-producer"))
        {
            for (int i = 0; i < 10; i++)
            {
                await producer.ProduceAsync(new TopicPartition(Topic, i % 2), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" }, timeout.Token);
            }
        }

        var read = KafkaRoute.ReadAll(proxy, Topic, partitions: 2, Prompt);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"v{i}").Order(), read.Select(r => r.Value).Order());
    }

    [Fact]
    public async Task Without_the_client_certificate_a_cluster_that_requires_one_is_one_line()
    {
        var kcat = ExternalTool.Require("kcat");
        await using var fixture = await TlsCluster.StartAsync(1, clientCa: "required");
        await using var proxy = await StartProxyAsync(fixture, new() { ["CaFile"] = fixture.Certificates.CaFile });
        var bootstrap = proxy.Endpoint(KafkaRoute.Name).ToString();

        await Assert.ThrowsAnyAsync<Exception>(() => KcatTests.RunAsync(kcat, null, "-b", bootstrap, "-L", "-m", "3"));
        await proxy.Logs.WaitForAsync(Prompt, $"{KafkaRoute.Name}: ", "closed: TLS to the upstream (localhost): the upstream ", "certificate required");
    }

    [Fact]
    public async Task Kcat_with_SSL_reaches_a_plaintext_cluster_through_ListenTls_on_the_bootstrap_and_broker_listeners()
    {
        var kcat = ExternalTool.Require("kcat");
        MockClusterTests.SkipUnlessNativeLibrary();
        using var certificates = new TestCertificates();
        using var cluster = MockCluster.Create(2);
        cluster.CreateTopic(Topic, partitions: 2, replicationFactor: 1);
        cluster.SetLeader(Topic, 0, 1);
        cluster.SetLeader(Topic, 1, 2);
        await using var proxy = await TestProxy.StartAsync(new RouteConfig
        {
            Name = KafkaRoute.Name,
            Listen = "127.0.0.1:0",
            Upstream = cluster.BrokerAddresses[0],
            Source = KafkaRoute.Source,
            Protocol = "Kafka",
            ListenTls = new Dictionary<string, string?> { ["CertificateFile"] = certificates.Cert("server"), ["KeyFile"] = certificates.Key("server") },
        });
        string[] ssl = ["-X", "security.protocol=ssl", "-X", $"ssl.ca.location={certificates.CaFile}"];
        var bootstrap = proxy.Endpoint(KafkaRoute.Name).ToString();

        var list = await KcatTests.RunAsync(kcat, null, ["-b", bootstrap, .. ssl, "-L", "-t", Topic]);
        Assert.Equal(2, BrokerLine().Count(list));
        var lines = Enumerable.Range(0, 10).Select(i => $"k{i}:ssl to the proxy {i}").ToList();
        await KcatTests.RunAsync(kcat, string.Join('\n', lines) + "\n", ["-b", bootstrap, .. ssl, "-P", "-t", Topic, "-K", ":"]);
        var consumed = await KcatTests.RunAsync(kcat, null, ["-b", bootstrap, .. ssl, "-C", "-t", Topic, "-o", "beginning", "-e", "-q", "-f", "%k:%s\\n"]);
        Assert.Equal(lines.Order(), consumed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
        await proxy.Logs.WaitForAsync(Prompt, $"{KafkaRoute.Name}/broker-2: ", "closed");
    }

    // "  broker 2 at 127.0.0.1:40123" (with " (controller)" on one of them)
    [GeneratedRegex(@"^\s+broker (?<id>\d+) at (?<address>\S+)", RegexOptions.Multiline)]
    private static partial Regex BrokerLine();
}
