using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using BindProxy.Demo;
using BindProxy.Kafka.Protocol;
using BindProxy.Tests.Admin;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// The conversation against an independent decoder: the test traffic, captured on lo between the
/// proxy and the broker, decoded by Wireshark's Kafka dissector (<c>tshark -d tcp.port==P,kafka</c>).
/// On every request and response the dissector reports, the API, version and correlation id agree,
/// and where it decodes the body, so do the topics, partitions and error codes.
/// </summary>
[Collection(nameof(RunsAlone))]
public sealed class DissectorAgreementTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_conversation_agrees_with_Wireshark_s_Kafka_dissector_on_every_request_and_response()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        var kcat = ExternalTool.Require("kcat");
        using var cluster = MockCluster.Create(1);
        cluster.CreateTopic("dissected", partitions: 3, replicationFactor: 1);
        cluster.SetGroupInitialRebalanceDelay(0);
        await using var admin = await AdminProxy.StartAsync(KafkaConversationTests.Route(cluster, KafkaRoute.Name, "always"));
        var brokerPort = KafkaRoute.BrokerPorts(cluster)[0];
        var bootstrap = admin.Proxy.Endpoint(KafkaRoute.Name).ToString();

        await using var capture = await PacketCapture.StartAsync($"tcp port {brokerPort}", async () =>
        {
            using var probe = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint(KafkaRoute.Name));
            await probe.SendAsync(TestSupport.RequestFrame(KafkaApiKeys.Metadata, 1, ResponseEncoders.CorrelationId, "capture-probe", w => w.Int32(-1)));
            var size = BinaryPrimitives.ReadInt32BigEndian(await probe.ReadExactlyAsync(4));
            await probe.ReadExactlyAsync(size);
        });

        using var timeout = new CancellationTokenSource(Timeout);
        using (var producer = KafkaConversationTests.Producer(admin, KafkaRoute.Name, "dissected-producer"))
        {
            for (int i = 0; i < 12; i++)
            {
                await producer.ProduceAsync(new TopicPartition("dissected", i % 3), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" }, timeout.Token);
            }
        }

        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            ClientId = "dissected-consumer",
            GroupId = "dissected-group",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).SetLogHandler((_, _) => { }).Build())
        {
            consumer.Subscribe("dissected");
            int read = 0;
            await Poll.UntilAsync(() => (read += consumer.Consume(TimeSpan.FromMilliseconds(100))?.Message is not null ? 1 : 0) >= 12, "the consumer to read 12 messages", Timeout);
            consumer.Close();
        }

        var lines = string.Join('\n', Enumerable.Range(0, 10).Select(i => $"k{i}:kcat {i}")) + "\n";
        await KcatTests.RunAsync(kcat, lines, "-b", bootstrap, "-P", "-t", "dissected", "-K", ":", "-X", "client.id=dissected-kcat");
        await KcatTests.RunAsync(kcat, null, "-b", bootstrap, "-C", "-t", "dissected", "-o", "beginning", "-e", "-q", "-X", "client.id=dissected-kcat");
        await KcatTests.RunAsync(kcat, null, "-b", bootstrap, "-L", "-t", "not-there", "-X", "client.id=dissected-kcat", "-X", "allow.auto.create.topics=false");
        await capture.StopAsync();

        // What the conversation recorded, by the proxy's source port and correlation id.
        var recorded = new Dictionary<(int Port, int Correlation), JsonElement>();
        foreach (var record in (await admin.GetJsonAsync("api/kafka/requests?limit=100000")).EnumerateArray())
        {
            var source = record.GetProperty("source").GetString()!;
            recorded[(int.Parse(source[(source.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture), record.GetProperty("correlationId").GetInt32())] = record;
        }

        var json = await capture.ReadRawAsync("-d", $"tcp.port=={brokerPort},kafka", "-Y", "kafka", "-T", "json", "--no-duplicate-keys", "-J", "tcp kafka");
        int requests = 0, responses = 0, bodies = 0, errorsSeen = 0;
        var notDecoded = new Dictionary<string, int>(StringComparer.Ordinal);
        var disagreements = new List<string>();
        foreach (var packet in JsonDocument.Parse(json).RootElement.EnumerateArray())
        {
            var layers = packet.GetProperty("_source").GetProperty("layers");
            int srcPort = int.Parse(First(layers.GetProperty("tcp"), "tcp.srcport")!, CultureInfo.InvariantCulture);
            int dstPort = int.Parse(First(layers.GetProperty("tcp"), "tcp.dstport")!, CultureInfo.InvariantCulture);
            bool isResponse = srcPort == brokerPort;
            int clientPort = isResponse ? dstPort : srcPort;
            var pdus = layers.GetProperty("kafka");
            foreach (var pdu in pdus.ValueKind == JsonValueKind.Array ? pdus.EnumerateArray().ToArray() : [pdus])
            {
                var fields = new Dictionary<string, List<string>>(StringComparer.Ordinal);
                Collect(pdu, fields);
                if (!fields.TryGetValue("kafka.correlation_id", out var correlationText))
                {
                    continue;
                }

                int correlation = int.Parse(correlationText[0], CultureInfo.InvariantCulture);
                if (!recorded.TryGetValue((clientPort, correlation), out var record))
                {
                    disagreements.Add($"{(isResponse ? "response" : "request")} port {clientPort} #{correlation}: not in the conversation");
                    continue;
                }

                if (isResponse)
                {
                    responses++;
                }
                else
                {
                    requests++;
                }

                var what = $"{(isResponse ? "response" : "request")} {record.GetProperty("api").GetString()} v{record.GetProperty("version").GetInt32()} port {clientPort} #{correlation}";
                Compare(what, "api key", fields, "kafka.api_key", [KafkaApis.All.First(a => a.Name == record.GetProperty("api").GetString()).Key.ToString(CultureInfo.InvariantCulture)], disagreements);
                Compare(what, "api version", fields, "kafka.api_version", [record.GetProperty("version").GetInt32().ToString(CultureInfo.InvariantCulture)], disagreements);
                var body = record.GetProperty(isResponse ? "response" : "request");
                if (body.ValueKind != JsonValueKind.Object)
                {
                    if (isResponse && record.GetProperty("state").GetString() != "answered")
                    {
                        disagreements.Add($"{what}: the dissector saw a response the conversation did not");
                    }

                    continue;
                }

                // A body the dissector says it could not read (a version newer than it knows, its
                // own parse ending off the frame's end) is not a report of what it holds.
                if (fields.TryGetValue("_ws.expert.message", out var expert) && expert.FirstOrDefault(m => m != "Request missing") is { } problem)
                {
                    var key = $"{record.GetProperty("api").GetString()} v{record.GetProperty("version").GetInt32()} {(isResponse ? "response" : "request")}: {problem}";
                    notDecoded[key] = notDecoded.GetValueOrDefault(key) + 1;
                    continue;
                }

                var topics = body.GetProperty("topics").EnumerateArray().ToList();
                if (fields.ContainsKey("kafka.topic_name"))
                {
                    bodies++;
                }

                if (fields.TryGetValue("kafka.error", out var errorCodes) && errorCodes.Any(c => c != "0"))
                {
                    errorsSeen++;
                }

                Compare(what, "topics", fields, "kafka.topic_name", [.. topics.Select(t => t.GetProperty("name").GetString() ?? "")], disagreements);
                Compare(what, "partitions", fields, "kafka.partition_id",
                    [.. topics.SelectMany(t => t.GetProperty("partitions").EnumerateArray()).Select(p => p.GetProperty("index").GetInt32().ToString(CultureInfo.InvariantCulture))], disagreements);
                Compare(what, "errors", fields, "kafka.error",
                    [.. body.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("code").GetInt16()).Where(c => c != 0).Select(c => c.ToString(CultureInfo.InvariantCulture))], disagreements, ignoreZero: true);
            }
        }

        output.WriteLine($"dissector: {requests} requests and {responses} responses compared ({bodies} with topics and partitions, {errorsSeen} with error codes); {disagreements.Count} disagreements");
        foreach (var (problem, count) in notDecoded.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"  body not compared, the dissector's own note ({count}x): {problem}");
        }

        foreach (var d in disagreements)
        {
            output.WriteLine("  " + d);
        }

        Assert.True(requests >= 30 && responses >= 30, $"{requests} requests and {responses} responses compared");
        Assert.True(bodies >= 20, $"only {bodies} frames with topics compared");
        Assert.True(errorsSeen >= 1, "no frame with an error code compared");
        Assert.True(disagreements.Count == 0, string.Join("\n", disagreements));
    }

    /// <summary>The dissector's values of <paramref name="field"/> as a set against ours; a field the dissector does not give is not compared.</summary>
    private static void Compare(string what, string name, Dictionary<string, List<string>> fields, string field, IEnumerable<string> ours, List<string> disagreements, bool ignoreZero = false)
    {
        if (!fields.TryGetValue(field, out var theirs))
        {
            return;
        }

        var their = theirs.Where(v => !ignoreZero || v != "0").ToHashSet(StringComparer.Ordinal);
        var our = ours.ToHashSet(StringComparer.Ordinal);
        if (!their.SetEquals(our))
        {
            disagreements.Add($"{what}: {name} dissector [{string.Join(",", their.Order())}] conversation [{string.Join(",", our.Order())}]");
        }
    }

    private static string? First(JsonElement layer, string name) =>
        layer.TryGetProperty(name, out var value) ? (value.ValueKind == JsonValueKind.Array ? value[0].GetString() : value.GetString()) : null;

    private static void Collect(JsonElement element, Dictionary<string, List<string>> fields)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (property.Value.ValueKind == JsonValueKind.String)
                    {
                        Add(fields, property.Name, property.Value.GetString()!);
                    }
                    else if (property.Value.ValueKind == JsonValueKind.Array && property.Value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String))
                    {
                        foreach (var v in property.Value.EnumerateArray())
                        {
                            Add(fields, property.Name, v.GetString()!);
                        }
                    }
                    else
                    {
                        Collect(property.Value, fields);
                    }
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    Collect(item, fields);
                }

                break;
            default:
                break;
        }
    }

    private static void Add(Dictionary<string, List<string>> fields, string name, string value)
    {
        if (!fields.TryGetValue(name, out var list))
        {
            fields[name] = list = [];
        }

        list.Add(value);
    }
}
