using System.Buffers;

namespace BindProxy.Kafka.Protocol;

/// <summary>Reads the one Produce request field the proxy needs: acks, because acks=0 gets no response.</summary>
internal static class ProduceRequestInspector
{
    private const short FirstTransactionalVersion = 3;

    /// <summary>Reads acks from a Produce request frame whose header was already parsed.</summary>
    /// <remarks>
    /// <code>
    /// v0-v2:  acks int16 | timeout_ms int32 | topic_data ...
    /// v3-v8:  transactional_id (int16-length nullable string) | acks int16 | ...
    /// v9+:    transactional_id (compact nullable string)      | acks int16 | ...
    /// </code>
    /// </remarks>
    public static MalformedReason TryReadAcks(in ReadOnlySequence<byte> frame, in KafkaRequestHeader header, out short acks)
    {
        acks = 0;
        if (header.ApiKey != KafkaApiKeys.Produce || header.BodyOffset > frame.Length)
        {
            return MalformedReason.InvalidLength;
        }

        var reader = new KafkaReader(frame.Slice(header.BodyOffset));
        if (header.ApiVersion >= FirstTransactionalVersion && !reader.SkipString(header.IsFlexible, nullable: true))
        {
            return reader.Error;
        }

        return reader.ReadInt16(out acks) ? MalformedReason.None : reader.Error;
    }

    /// <summary>True unless the frame is a Produce request with acks=0 (the broker will not answer it).</summary>
    public static bool ExpectsResponse(in ReadOnlySequence<byte> frame, in KafkaRequestHeader header)
    {
        if (header.ApiKey != KafkaApiKeys.Produce)
        {
            return true;
        }

        // An unreadable Produce request is answered (with an error) or the connection is closed;
        // treating it as "expects a response" never loses a response.
        return TryReadAcks(frame, header, out var acks) != MalformedReason.None || acks != 0;
    }
}
