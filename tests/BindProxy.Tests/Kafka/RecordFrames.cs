using System.Buffers;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Protocol.Messages;

namespace BindProxy.Tests.Kafka;

/// <summary>Produce requests and Fetch responses whose records fields hold real batch headers, built with the generated model.</summary>
internal static class RecordFrames
{
    /// <summary>A Produce request frame (size prefix and header v1/v2 included) with the given partitions' batches.</summary>
    public static byte[] Produce(short version, int correlationId, string? transactionalId, params (string Topic, (int Partition, byte[]? Records)[] Partitions)[] topics)
    {
        var body = new ProduceRequestData
        {
            TransactionalId = transactionalId,
            Acks = -1,
            TimeoutMs = 30_000,
            TopicData = [.. topics.Select(t => new ProduceRequestData.TopicProduceData
            {
                Name = t.Topic,
                PartitionData = [.. t.Partitions.Select(p => new ProduceRequestData.PartitionProduceData
                {
                    Index = p.Partition,
                    Records = p.Records is null ? null : new ReadOnlySequence<byte>(p.Records),
                })],
            })],
        };
        var writer = new KafkaWriter();
        body.Write(writer, version);
        var w = new WireWriter().Int16(KafkaApiKeys.Produce).Int16(version).Int32(correlationId).String(false, "producer");
        if (KafkaApis.Of(KafkaApiKeys.Produce).RequestHeaderVersion(version) >= 2)
        {
            w.Tags(null);
        }

        return w.Raw(writer.WrittenSpan).ToFrame();
    }

    /// <summary>A Fetch response frame (size prefix and header included) with the given partitions' records.</summary>
    public static byte[] Fetch(short version, int correlationId, params (string Topic, (int Partition, byte[]? Records)[] Partitions)[] topics)
    {
        var body = new FetchResponseData
        {
            Responses = [.. topics.Select((t, i) => new FetchResponseData.FetchableTopicResponse
            {
                Topic = t.Topic,
                TopicId = new Guid(i + 1, 0, 0, [0, 0, 0, 0, 0, 0, 0, 1]),
                Partitions = [.. t.Partitions.Select(p => new FetchResponseData.PartitionData
                {
                    PartitionIndex = p.Partition,
                    HighWatermark = 1000,
                    Records = p.Records is null ? null : new ReadOnlySequence<byte>(p.Records),
                })],
            })],
        };
        var writer = new KafkaWriter();
        body.Write(writer, version);
        var w = new WireWriter().Int32(correlationId);
        if (KafkaApis.Of(KafkaApiKeys.Fetch).ResponseHeaderVersion(version) >= 1)
        {
            w.Tags(null);
        }

        return w.Raw(writer.WrittenSpan).ToFrame();
    }

    /// <summary>Batches of the given record counts and record bytes, offsets following on from <paramref name="baseOffset"/>.</summary>
    public static byte[] Batches(long baseOffset, params (int Records, int RecordBytes, short Attributes)[] batches)
    {
        var all = new List<byte>();
        foreach (var (records, bytes, attributes) in batches)
        {
            all.AddRange(RecordBatchHeaderTests.Batch(baseOffset, records, attributes, bytes, producerId: 4000, producerEpoch: 1, baseSequence: (int)baseOffset));
            baseOffset += records;
        }

        return [.. all];
    }
}
