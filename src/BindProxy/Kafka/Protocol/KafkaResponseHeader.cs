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
}
