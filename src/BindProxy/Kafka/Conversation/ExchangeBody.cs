using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Conversation;

/// <summary>A partition a body names, with what its records field held (Produce requests, Fetch responses).</summary>
/// <param name="Records">Records in the batches (control batches left out); 0 without a records field.</param>
/// <param name="RecordBytes">Bytes of whole batches.</param>
internal readonly record struct PartitionDetail(int Index, int Batches, long Records, long RecordBytes, KafkaCompression Compression, long ProducerId, short ProducerEpoch, long FirstOffset, long LastOffset)
{
    /// <summary>A partition without records: its index alone.</summary>
    public static PartitionDetail Of(int index) => new(index, 0, 0, 0, KafkaCompression.None, -1, -1, -1, -1);
}

/// <summary>A topic a body names, by name or id (Fetch v13+ gives ids; the route's Metadata responses give their names).</summary>
internal sealed record TopicDetail(string? Name, Guid? Id, IReadOnlyList<PartitionDetail> Partitions)
{
    /// <summary>The name, else the id, else "-".</summary>
    public string Label => Name ?? Id?.ToString() ?? "-";
}

/// <summary>An error code a body carries, and where: the topic and partition it sits under, if any.</summary>
/// <param name="Topic">Index into <see cref="ExchangeBody.Topics"/>; -1 at the top or in another struct (a group, a coordinator).</param>
/// <param name="Partition">The partition index it sits under, or -1.</param>
internal readonly record struct ErrorAt(short Code, int Topic, int Partition)
{
    public string Name => KafkaErrors.NameOf(Code);
}

/// <summary>
/// What one request or response body says, pulled out by the model's visitor for any API: the
/// topics and partitions it names, every error code (by name through <see cref="KafkaErrors"/>),
/// record counts and bytes, and throttle time. Bounded whatever the frame holds: past the limits
/// below the rest is counted, not kept.
/// </summary>
internal sealed class ExchangeBody
{
    public const int MaxTopics = 64;
    public const int MaxPartitions = 512;
    public const int MaxErrors = 512;

    /// <summary>Topic names longer than this are cut (Kafka allows 249 characters).</summary>
    public const int MaxNameLength = 255;

    public ExchangeBody(IReadOnlyList<TopicDetail> topics, IReadOnlyList<ErrorAt> errors, int? throttleTimeMs, int omittedTopics, int omittedPartitions, int omittedErrors)
    {
        Topics = topics;
        Errors = errors;
        ThrottleTimeMs = throttleTimeMs;
        OmittedTopics = omittedTopics;
        OmittedPartitions = omittedPartitions;
        OmittedErrors = omittedErrors;
        foreach (var error in errors)
        {
            if (error.Code != 0)
            {
                FirstError = error.Code;
                break;
            }
        }

        // Object headers, lists and strings, rounded up; what the ring's budget counts.
        int bytes = 96 + (errors.Count * 12);
        foreach (var topic in topics)
        {
            bytes += 96 + ((topic.Name?.Length ?? 0) * 2) + (topic.Partitions.Count * 56);
        }

        EstimatedBytes = bytes;
    }

    public IReadOnlyList<TopicDetail> Topics { get; }

    /// <summary>Every error code the body carries, zero ones included, in wire order.</summary>
    public IReadOnlyList<ErrorAt> Errors { get; }

    public int? ThrottleTimeMs { get; }

    /// <summary>Topics, partitions and error codes past the limits: counted, not kept.</summary>
    public int OmittedTopics { get; }

    public int OmittedPartitions { get; }

    public int OmittedErrors { get; }

    public bool HasError => FirstError != 0;

    public short FirstError { get; }

    public int EstimatedBytes { get; }

    public long Records
    {
        get
        {
            long sum = 0;
            foreach (var topic in Topics)
            {
                foreach (var partition in topic.Partitions)
                {
                    sum += partition.Records;
                }
            }

            return sum;
        }
    }

    public long RecordBytes
    {
        get
        {
            long sum = 0;
            foreach (var topic in Topics)
            {
                foreach (var partition in topic.Partitions)
                {
                    sum += partition.RecordBytes;
                }
            }

            return sum;
        }
    }

    /// <summary>True when the body names the topic (case-sensitive, as Kafka's names are).</summary>
    public bool Names(string topic)
    {
        foreach (var t in Topics)
        {
            if (string.Equals(t.Name, topic, StringComparison.Ordinal) || (t.Id is { } id && string.Equals(id.ToString(), topic, StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }

        return false;
    }
}
