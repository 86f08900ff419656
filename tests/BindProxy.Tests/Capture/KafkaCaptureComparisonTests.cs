using System.Diagnostics;
using System.Globalization;
using System.Text;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Kafka.Brokers;
using BindProxy.Tests.Cli;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Capture;

/// <summary>
/// The proxy's own capture of a kcat session (through <c>bindproxy capture --client</c>) and of a
/// Confluent.Kafka producer (through <c>/api/capture?client=</c>), against a root tcpdump of lo
/// taken at the same time as the independent reference: Wireshark finds nothing wrong with it,
/// every TCP stream carries the same bytes both ways, and Kafka decodes to the same requests.
/// </summary>
public sealed class KafkaCaptureComparisonTests
{
    private const string Topic = "captured";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Captures_of_kcat_and_Confluent_clients_match_a_tcpdump_of_the_same_traffic()
    {
        var kcat = ExternalTool.Require("kcat");
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopicLedByEachBroker(Topic, 3, 1);

        await using var proxy = await TestProxy.StartAsync(new ProxyConfig
        {
            Admin = new AdminConfig { Listen = "127.0.0.1:0" },
            Routes = [new RouteConfig { Name = KafkaRoute.Name, Listen = "127.0.0.1:0", Upstream = cluster.BrokerAddresses[0], Source = KafkaRoute.Source, Protocol = "Kafka" }],
        });
        var admin = proxy.Services.GetRequiredService<BindProxy.Admin.AdminEndpoint>().BoundEndPoint!;
        var bootstrap = proxy.Endpoint(KafkaRoute.Name).ToString();
        using var http = new HttpClient { BaseAddress = new Uri($"http://{admin}/") };

        // Broker listeners open on first use: a metadata round makes them all, so the printed command names them.
        await Kafka.KcatTests.RunAsync(kcat, null, "-b", bootstrap, "-L", "-X", "client.id=warm-up");
        var brokerListeners = proxy.Services.GetRequiredService<BrokerDirectories>().All[KafkaRoute.Name].Brokers.Select(b => b.ProxyPort).ToList();
        Assert.Equal(3, brokerListeners.Count);
        int[] kafkaPorts = [proxy.Endpoint(KafkaRoute.Name).Port, .. brokerListeners, .. KafkaRoute.BrokerPorts(cluster)];

        // The reference: every packet to or from the proxy's Kafka listeners and the brokers (and the admin port, for the probe).
        // By port only: other tests' connections from the same source address would fill its buffer.
        var filter = string.Join(" or ", kafkaPorts.Append(admin.Port).Select(p => $"port {p}"));
        await using var reference = await PacketCapture.StartAsync($"tcp and ({filter})", async () => await http.GetStringAsync("healthz"));
        using var dir = new TempDirectory();
        var kcatFile = Path.Combine(dir.Path, "kcat.pcapng");
        using var cli = BindProxyCli.Start(dir.Path, null, "capture", "--admin", admin.ToString(), "--client", "kcat-captured", "-w", kcatFile);
        var cliErr = new StringBuilder();
        var capturing = new TaskCompletionSource();
        cli.ErrorDataReceived += (_, e) =>
        {
            lock (cliErr)
            {
                cliErr.AppendLine(e.Data);
            }

            if (e.Data?.StartsWith("capturing", StringComparison.Ordinal) == true)
            {
                capturing.TrySetResult();
            }
        };
        cli.BeginErrorReadLine();
        await capturing.Task.WaitAsync(Timeout);
        await using var confluent = await LiveCapture.StartAsync(admin, "client=confluent-captured");

        // The selected sessions, and one of another client.id beside them that neither capture may show.
        var lines = Enumerable.Range(0, 20).Select(i => $"key-{i}:kcat message {i}").ToList();
        await Kafka.KcatTests.RunAsync(kcat, string.Join('\n', lines) + "\n", "-b", bootstrap, "-P", "-t", Topic, "-K", ":", "-X", "acks=all", "-X", "client.id=kcat-captured");
        var consumed = await Kafka.KcatTests.RunAsync(kcat, null, "-b", bootstrap, "-C", "-t", Topic, "-o", "beginning", "-e", "-q", "-f", "%k:%s\\n", "-X", "client.id=kcat-captured");
        Assert.Equal(lines.Order(), consumed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
        await Kafka.KcatTests.RunAsync(kcat, null, "-b", bootstrap, "-L", "-X", "client.id=not-captured");
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, ClientId = "confluent-captured", Acks = Acks.All, LingerMs = 5 })
            .SetLogHandler((_, _) => { }).Build())
        {
            using var cts = new CancellationTokenSource(Timeout);
            for (int i = 0; i < 20; i++)
            {
                await producer.ProduceAsync(new TopicPartition(Topic, i % 3), new Message<string, string> { Key = $"k{i}", Value = $"confluent {i}" }, cts.Token);
            }
        }

        // Every connection has closed, and each capture has both legs' FINs of each of its streams.
        await Poll.UntilAsync(() => proxy.Connections.Count == 0, "every client connection to close", Timeout);
        await Poll.UntilAsync(() => Closed(Packet.ReadAll(ReadShared(kcatFile))), "the kcat capture to have every stream's end", Timeout);
        await Poll.UntilAsync(() => Closed(confluent.Packets()), "the Confluent capture to have every stream's end", Timeout);
        using (var interrupt = Process.Start("kill", ["-INT", cli.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await interrupt.WaitForExitAsync();
        }

        await cli.WaitForExitAsync().WaitAsync(Timeout);
        Assert.True(cli.ExitCode is 0 or 130, $"bindproxy capture exited {cli.ExitCode}"); // 130: ended by SIGINT, as Ctrl-C ends it
        await reference.StopAsync();
        var confluentFile = await confluent.SaveAsync(dir.Path, "confluent.pcapng");
        // A reference that lost packets in the kernel is no reference: say so rather than blame the capture.
        var referenceDrops = Tshark.Statistics(File.ReadAllBytes(reference.File)).Sum(s => Math.Max(0, s.Dropped));
        Assert.True(referenceDrops == 0, $"the reference capture dropped {referenceDrops} packets");

        // The command it printed decodes Kafka on the bootstrap, every broker listener and every broker.
        string printed;
        lock (cliErr)
        {
            printed = cliErr.ToString();
        }

        Assert.Contains($"wireshark -r {kcatFile}", printed, StringComparison.Ordinal);
        Assert.All(kafkaPorts, port => Assert.Contains($"-d tcp.port=={port},kafka", printed, StringComparison.Ordinal));

        var decodeAs = kafkaPorts.Select(p => $"tcp.port=={p},kafka").ToArray();
        var referenceKafka = await KafkaByStreamAsync(reference.File, kafkaPorts);
        int comparedInAll = 0;
        foreach (var (file, clientId) in new[] { (kcatFile, "kcat-captured"), (confluentFile, "confluent-captured") })
        {
            // As TCP, no sequence warning at all. With Kafka decoded, nothing malformed that Wireshark's
            // Kafka dissector does not also say of the same connections on the wire (Wireshark 4.0's
            // does not know the newer versions librdkafka speaks).
            Assert.Empty(await Tshark.SequenceProblemsAsync(file));
            var streams = await Tshark.StreamsAsync(file);
            var connections = streams.Keys.Select(k => string.Join(' ', k.Split(' ').Order(StringComparer.Ordinal))).ToHashSet();
            // Wireshark 4.0's Kafka dissector does not know the newer versions librdkafka speaks. Most
            // of what it says of them does not depend on where segments end, but an exception inside
            // one loses the messages after it in that segment, and segments end in different places
            // on the wire and in a capture. So: nothing the dissector says of the capture that it
            // does not say of the wire, and where no exception happened in either, the same messages
            // in the same order; the connections with one are compared byte for byte only (below).
            const string Exception = "Malformed Packet (Exception occurred)";
            static string ConnectionOf(string key) => string.Join(' ', key.Split(' ').Take(2));
            static string Message(string key) => key[(key.IndexOf(' ', key.IndexOf(' ', StringComparison.Ordinal) + 1) + 1)..];
            var wireProblems = await Tshark.ProblemCountsAsync(reference.File, connections, decodeAs);
            var captureProblems = await Tshark.ProblemCountsAsync(file, connections, decodeAs);
            var broken = wireProblems.Keys.Concat(captureProblems.Keys).Where(k => k.Contains(Exception, StringComparison.Ordinal)).Select(ConnectionOf).ToHashSet();
            var onTheWire = wireProblems.Keys.SelectMany(k => Message(k).Split(',')).ToHashSet();
            Assert.All(captureProblems.Keys.Where(k => !broken.Contains(ConnectionOf(k))).SelectMany(k => Message(k).Split(',')).Distinct(),
                problem => Assert.Contains(problem, onTheWire));
            var referenceStreams = await Tshark.StreamsAsync(reference.File, streams.Keys.ToHashSet());
            Assert.True(streams.Count >= 4, $"{clientId}: only {streams.Count} streams"); // bootstrap and at least one broker, both legs
            foreach (var (key, (fromOpener, toOpener)) in streams)
            {
                Assert.True(referenceStreams.TryGetValue(key, out var wire), $"{clientId}: stream {key} is not in the reference capture");
                if (!toOpener.AsSpan().SequenceEqual(wire.ToOpener) || !fromOpener.AsSpan().SequenceEqual(wire.FromOpener))
                {
                    Assert.Fail($"{clientId}: {key}: {fromOpener.Length} bytes from its opener and {toOpener.Length} to it; on the wire {wire.FromOpener.Length} and {wire.ToOpener.Length}\n" +
                        $"capture:\n{await SegmentsAsync(file, key)}\nwire:\n{await SegmentsAsync(reference.File, key)}");
                }
            }

            var kafka = await KafkaByStreamAsync(file, kafkaPorts);
            Assert.Equal(streams.Count, kafka.Count);
            int compared = 0;
            foreach (var (key, messages) in kafka)
            {
                Assert.True(messages.Count > 0, $"{clientId}: {key}: no Kafka decoded");
                if (!broken.Contains(string.Join(' ', key.Split(' ').Order(StringComparer.Ordinal))))
                {
                    Assert.Equal(referenceKafka[key], messages);
                    compared++;
                }
            }

            TestContext.Current.TestOutputHelper?.WriteLine($"{clientId}: {compared} of {kafka.Count} streams' Kafka messages compared (the rest: the dissector threw inside a segment)");
            comparedInAll += compared;

            // Its own client.id only: every client leg's first request names it.
            var ids = await ExternalTool.RunAsync(ExternalTool.Require("tshark"), ["-r", file, .. decodeAs.SelectMany(d => new[] { "-d", d }), "-Y", "kafka.client_id", "-T", "fields", "-e", "kafka.client_id"]);
            // A frame that carries two requests gives both ids on its line, comma-separated.
            Assert.Equal([clientId], ids.Split(['\n', ','], StringSplitOptions.RemoveEmptyEntries).Distinct());
        }

        // kcat's older versions are read without an exception; librdkafka's newest (Confluent.Kafka) often are not.
        Assert.True(comparedInAll > 0, "the dissector threw on every stream of both clients, so no Kafka was compared");
    }

    /// <summary>One connection's packets as tshark lists them (direction, flags, sequence, length, expert notes), for a failure message.</summary>
    private static Task<string> SegmentsAsync(string file, string key)
    {
        var ends = key.Split(' ').Select(e => e.Split(':')).ToArray();
        var filter = $"ip.addr=={ends[0][0]} && tcp.port=={ends[0][1]} && ip.addr=={ends[1][0]} && tcp.port=={ends[1][1]}";
        return ExternalTool.RunAsync(ExternalTool.Require("tshark"), "-r", file, "-Y", filter, "-T", "fields",
            "-e", "frame.number", "-e", "tcp.srcport", "-e", "tcp.flags.str", "-e", "tcp.seq", "-e", "tcp.ack", "-e", "tcp.len", "-e", "_ws.expert.message");
    }

    /// <summary>Every TCP stream in <paramref name="packets"/> has ended both ways (two FINs), and there are some.</summary>
    private static bool Closed(IReadOnlyList<Packet> packets)
    {
        var streams = packets.GroupBy(p => Key(p)).ToList();
        return streams.Count >= 4 && streams.All(s => s.Count(p => p.Fin) == 2);

        static string Key(Packet p) => string.Join(' ', new[] { p.From.ToString(), p.To.ToString() }.Order(StringComparer.Ordinal));
    }

    private static byte[] ReadShared(string file)
    {
        if (!File.Exists(file))
        {
            return [];
        }

        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>Each TCP stream's Kafka messages in order: "request api_key correlation_id" or "response correlation_id", keyed as <see cref="Tshark.StreamsAsync"/> keys streams.</summary>
    private static async Task<Dictionary<string, List<string>>> KafkaByStreamAsync(string file, IEnumerable<int> ports)
    {
        var tshark = ExternalTool.Require("tshark");
        var args = new List<string> { "-r", file };
        foreach (var port in ports)
        {
            args.AddRange(["-d", $"tcp.port=={port},kafka"]);
        }

        // Stream openers: the SYN without ACK names node 0 as follow does.
        var openers = (await ExternalTool.RunAsync(tshark, ["-r", file, "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0", "-T", "fields", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport"]))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t'))
            .Select(f => $"{f[0]}:{f[1]} {f[2]}:{f[3]}").ToHashSet();
        args.AddRange(["-Y", "kafka", "-T", "fields", "-E", "occurrence=a", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport", "-e", "kafka.api_key", "-e", "kafka.response_key", "-e", "kafka.correlation_id"]);
        var result = new Dictionary<string, List<string>>();
        foreach (var line in (await ExternalTool.RunAsync(tshark, [.. args])).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('\t');
            var (from, to) = ($"{f[0]}:{f[1]}", $"{f[2]}:{f[3]}");
            bool request = openers.Contains($"{from} {to}");
            var key = request ? $"{from} {to}" : $"{to} {from}";
            if (!result.TryGetValue(key, out var list))
            {
                result[key] = list = [];
            }

            // One message a line, however many a segment carried (the wire and the capture cut them
            // differently). A request is its api_key and correlation id, as on the wire; a response
            // carries only its correlation id, and the api_key the dissector gives it is its guess
            // from the request it matched, which a live capture on lo does not always make.
            var correlations = f[6].Split(',');
            list.AddRange(request
                ? f[4].Split(',').Zip(correlations, (api, correlation) => $"request {api} {correlation}")
                : correlations.Select(correlation => $"response {correlation}"));
        }

        return result;
    }
}
