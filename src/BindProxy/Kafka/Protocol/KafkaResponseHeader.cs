using System.Buffers;

namespace BindProxy.Kafka.Protocol;

/// <summary>Reads the response header, which carries no api key: only the correlation id (and tags in v1).</summary>
internal static class KafkaResponseHeader
{
    /// <summary>Every frame starts with an int32 body length.</summary>
    public const int SizePrefixLength = 4;

    /// <summary>Size prefix + correlation id.</summary>
    public const int MinFrameLength = 8;

    /// <summary>
    /// Steps over a response's size prefix and header (correlation id, and the tagged fields of
    /// header v1) to the body of a response to (<paramref name="apiKey"/>, <paramref name="apiVersion"/>).
    /// </summary>
    public static bool TrySkip(ref KafkaReader reader, short apiKey, short apiVersion)
    {
        if (reader.Remaining < MinFrameLength)
        {
            return reader.Fail(MalformedReason.FrameTooShort);
        }

        reader.Skip(MinFrameLength);
        return KafkaApis.Of(apiKey).ResponseHeaderVersion(apiVersion) == 0 || reader.SkipTaggedFields();
    }

    /// <summary>Reads the correlation id of a response frame (size prefix included).</summary>
    public static bool TryReadCorrelationId(in ReadOnlySequence<byte> frame, out int correlationId)
    {
        correlationId = 0;
        if (frame.Length < MinFrameLength)
        {
            return false;
        }

        var reader = new KafkaReader(frame);
        return reader.Skip(4) && reader.ReadInt32(out correlationId);
    }

    /// <summary>
    /// True when the frame's size prefix matches its length, as frames from
    /// <see cref="Framing.KafkaFrameReader"/> always do. Rewriters check it so they never emit a
    /// frame whose prefix disagrees with its bytes.
    /// </summary>
    public static bool HasConsistentSize(in ReadOnlySequence<byte> frame)
    {
        var reader = new KafkaReader(frame);
        return reader.ReadInt32(out var size) && size == frame.Length - SizePrefixLength;
    }
}
