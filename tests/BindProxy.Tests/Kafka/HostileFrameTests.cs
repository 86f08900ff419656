using System.Net.Sockets;
using System.Text.Json;
using BindProxy.Demo;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Protocol.Messages;
using BindProxy.Tests.Admin;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// Frames the protocol model cannot decode, through a Kafka route that decodes every body, on real
/// sockets: the upstream is librdkafka's mock cluster for a real producer, and a scripted broker
/// in front of it for the hostile connections (<see cref="ScriptedBroker"/>).
/// </summary>
public sealed class HostileFrameTests
{
    private const string Route = "hostile";
    private const string Hostile = ScriptedBroker.ScriptedPrefix + "-hostile";
    private const string Rewritten = ScriptedBroker.ScriptedPrefix + "-metadata";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    // Correlation ids: each names what the script answers.
    private const int Undecodable = 101;
    private const int TruncatedBody = 102;
    private const int BogusVersion = 103;
    private const int UnknownApi = 104;
    private const int AfterTheClose = 105;
    private const int BrokenMetadata = 201;

    [Fact]
    public async Task Undecodable_frames_pass_unchanged_and_are_shown_as_undecoded_and_an_unrewritable_response_closes_only_its_connection()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        cluster.CreateTopic("steady", partitions: 1, replicationFactor: 1);
        await using var broker = new ScriptedBroker(cluster.BrokerAddresses[0], Answer);
        await using var admin = await AdminProxy.StartAsync(broker.Route(Route));
        using var timeout = new CancellationTokenSource(Timeout);

        // A real producer on the same route, before and after.
        var producerErrors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = admin.Proxy.Endpoint(Route).ToString(),
            ClientId = "bystander",
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            MessageTimeoutMs = 20_000,
        }).SetLogHandler((_, _) => { }).SetErrorHandler((_, e) => producerErrors.Enqueue(e.Reason)).Build();
        await producer.ProduceAsync("steady", new Message<string, string> { Key = "k", Value = "before" }, timeout.Token);

        // One connection sends four requests the model cannot read; each is answered, so none closed it.
        using var hostile = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint(Route));
        await using var hostileStream = new NetworkStream(hostile, ownsSocket: false);
        byte[][] requests =
        [
            // ListOffsets v5 whose one topic name has length -7: a header the proxy reads, a body it cannot.
            Request(KafkaApiKeys.ListOffsets, 5, Undecodable, Hostile, w => w.Int32(-1).Int8(0).Int32(1).Int16(-7).Raw([1, 2, 3])),
            // Heartbeat v2 cut after its group id (the frame's size is honest about the cut).
            Request(KafkaApiKeys.Heartbeat, 2, TruncatedBody, Hostile, w => w.String(false, "group").Int16(0)),
            // ListOffsets v99: no definition in the model (nor in Kafka).
            Request(KafkaApiKeys.ListOffsets, 99, BogusVersion, Hostile, w => w.Raw([9, 9, 9, 9])),
            // An API key nobody defined.
            Request(999, 0, UnknownApi, Hostile, w => w.Raw([7, 7, 7])),
        ];

        var answers = new List<byte[]>();
        foreach (var request in requests)
        {
            await hostileStream.WriteAsync(request, timeout.Token);
            answers.Add(await ScriptedBroker.ReadFrameAsync(hostileStream, timeout.Token) ?? throw new Xunit.Sdk.XunitException("the proxy closed the connection"));
        }

        // Forwarded unchanged, both ways.
        Assert.Equal(requests, broker.Received.ToArray());
        Assert.Equal(broker.Sent.ToArray(), answers);

        // The conversation shows each as undecoded, with the reason.
        var records = await admin.WaitForJsonAsync($"api/kafka/requests?client={Hostile}", json => json.GetArrayLength() >= 4 && json.EnumerateArray().All(r => r.GetProperty("state").GetString() == "answered"));
        var byCorrelation = records.EnumerateArray().ToDictionary(r => r.GetProperty("correlationId").GetInt32());
        Assert.StartsWith("the ListOffsets v5 request body cannot be read: ", Undecoded(byCorrelation[Undecodable], "request"), StringComparison.Ordinal);
        var listOffsetsResponse = byCorrelation[Undecodable].GetProperty("response");
        Assert.Equal(JsonValueKind.Null, listOffsetsResponse.GetProperty("undecoded").ValueKind);
        Assert.Equal("UNKNOWN_TOPIC_OR_PARTITION", byCorrelation[Undecodable].GetProperty("error").GetString());
        Assert.Equal("the Heartbeat v2 request body cannot be read: Truncated at byte 37", Undecoded(byCorrelation[TruncatedBody], "request"));
        Assert.Equal(JsonValueKind.Null, byCorrelation[TruncatedBody].GetProperty("response").GetProperty("undecoded").ValueKind);
        var listOffsets = KafkaApis.Of(KafkaApiKeys.ListOffsets);
        var unknownVersion = $"ListOffsets v99 is not in the protocol model (it knows v{listOffsets.MinVersion}-{listOffsets.MaxVersion})";
        Assert.Equal(unknownVersion, Undecoded(byCorrelation[BogusVersion], "request"));
        Assert.Equal(unknownVersion, Undecoded(byCorrelation[BogusVersion], "response"));
        Assert.Equal("api key 999 is not in the protocol model", Undecoded(byCorrelation[UnknownApi], "request"));
        Assert.Equal("api key 999 is not in the protocol model", Undecoded(byCorrelation[UnknownApi], "response"));

        // A Metadata response, which must be rewritten, that cannot be read: that connection alone is closed, with a line.
        using var metadata = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint(Route));
        var metadataClient = metadata.LocalEndPoint!;
        var writer = new KafkaWriter();
        new MetadataRequestData { Topics = null }.Write(writer, 12);
        await metadata.SendAsync(Request(KafkaApiKeys.Metadata, 12, BrokenMetadata, Rewritten, w => w.Raw(writer.WrittenSpan)), SocketFlags.None, timeout.Token);
        Assert.Equal(SocketError.ConnectionReset, await metadata.WaitForCloseAsync(Timeout));
        var line = await admin.Proxy.Logs.WaitForAsync(Timeout, $"{Route}: {metadataClient} (client.id {Rewritten}) closed: ",
            "a Metadata v12 response the proxy cannot parse (CountExceedsRemaining); closed rather than pass on unrewritten broker addresses");
        Assert.DoesNotContain("Exception", line);

        // The hostile connection is still open and answered; the producer never noticed.
        var last = Request(KafkaApiKeys.Heartbeat, 2, AfterTheClose, Hostile, w => w.String(false, "group").Int16(0));
        await hostileStream.WriteAsync(last, timeout.Token);
        var lastAnswer = await ScriptedBroker.ReadFrameAsync(hostileStream, timeout.Token);
        Assert.Equal(broker.Sent.Last(), lastAnswer);
        Assert.Equal(last, broker.Received.Last());
        for (int i = 0; i < 20; i++)
        {
            var report = await producer.ProduceAsync("steady", new Message<string, string> { Key = "k", Value = $"after {i}" }, timeout.Token);
            Assert.Equal(PersistenceStatus.Persisted, report.Status);
        }

        Assert.True(producerErrors.IsEmpty, string.Join("; ", producerErrors));
    }

    /// <summary>What the scripted broker sends back (after the correlation id) for each request.</summary>
    private static byte[]? Answer(int correlationId)
    {
        var writer = new KafkaWriter();
        switch (correlationId)
        {
            case Undecodable:
                new ListOffsetsResponseData
                {
                    Topics = [new() { Name = "steady", Partitions = [new() { PartitionIndex = 0, ErrorCode = 3 }] }],
                }.Write(writer, 5);
                return writer.ToArray();
            case TruncatedBody or AfterTheClose:
                new HeartbeatResponseData().Write(writer, 2);
                return writer.ToArray();
            case BogusVersion or UnknownApi:
                return [0xAB, 0xCD, 0xEF];
            case BrokenMetadata:
                // Response header v1 (no tags), throttle time, then a broker count no frame could hold.
                return new WireWriter().Tags(null).Int32(0).UVarint(int.MaxValue).Raw([0, 0, 0, 1]).ToArray();
            default:
                return null;
        }
    }

    private static byte[] Request(short apiKey, short version, int correlationId, string clientId, Action<WireWriter> body)
    {
        var w = new WireWriter().Int16(apiKey).Int16(version).Int32(correlationId).String(false, clientId);
        if (KafkaApis.Of(apiKey).RequestHeaderVersion(version) >= 2)
        {
            w.Tags(null);
        }

        body(w);
        return w.ToFrame();
    }

    private static string? Undecoded(JsonElement record, string side) =>
        record.GetProperty(side) is { ValueKind: JsonValueKind.Object } body ? body.GetProperty("undecoded").GetString() : null;
}
