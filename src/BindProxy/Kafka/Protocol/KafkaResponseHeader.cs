using System.Buffers;

namespace BindProxy.Kafka.Protocol;

/// <summary>Reads the response header, which carries no api key: only the correlation id (and tags in v1).</summary>
internal static class KafkaResponseHeader
{
    /// <summary>Size prefix + correlation id.</summary>
    public const int MinFrameLength = 8;

    /// <summary>Reads the correlation id of a response frame (size prefix included).</summary>
    public static bool TryReadCorrelationId(in ReadOnlySequence<byte> frame, out int correlationId)
    {
        correlationId = 0;
        if (frame.Length < MinFrameLength)
        {
            return false;
        }

        var reader = new KafkaWireReader(frame);
        return reader.TrySkip(4) && reader.TryReadInt32(out correlationId);
    }

    /// <summary>
    /// True when the frame's size prefix matches its length, as frames from
    /// <see cref="Framing.KafkaFrameReader"/> always do. Rewriters check it so they never emit a
    /// frame whose prefix disagrees with its bytes.
    /// </summary>
    public static bool HasConsistentSize(in ReadOnlySequence<byte> frame)
    {
        var reader = new KafkaWireReader(frame);
        return reader.TryReadInt32(out var size) && size == frame.Length - KafkaWireConstants.SizePrefixLength;
    }
}
