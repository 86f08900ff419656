using System.Buffers;

namespace BindProxy.Kafka.Protocol;

/// <summary>
/// The fields of a Kafka request header, parsed from a whole frame without copying the body.
/// </summary>
/// <remarks>
/// <code>
/// frame:  size int32 | api_key int16 | api_version int16 | correlation_id int32 | client_id | [tags] | body...
///                                                                                 (v1+)       (v2)
/// client_id keeps an int16 length even in header v2, so that any broker can read the header of an
/// ApiVersions request whose version it does not know.
/// </code>
/// </remarks>
internal readonly record struct KafkaRequestHeader(
    short ApiKey,
    short ApiVersion,
    int CorrelationId,
    string? ClientId,
    int HeaderVersion,
    int BodyOffset)
{
    /// <summary>Size prefix + api_key + api_version + correlation_id.</summary>
    private const int FixedLength = 4 + 2 + 2 + 4;

    /// <summary>True when the request body uses compact encodings.</summary>
    public bool IsFlexible => HeaderVersion >= 2;

    /// <summary>
    /// Parses the header of <paramref name="frame"/> (size prefix included).
    /// <see cref="BodyOffset"/> is the offset of the body from the start of the frame.
    /// </summary>
    public static MalformedReason TryParse(in ReadOnlySequence<byte> frame, out KafkaRequestHeader header)
    {
        header = default;
        if (frame.Length < FixedLength)
        {
            return MalformedReason.FrameTooShort;
        }

        var reader = new KafkaReader(frame);
        reader.Skip(4);
        reader.ReadInt16(out var apiKey);
        reader.ReadInt16(out var apiVersion);
        reader.ReadInt32(out var correlationId);

        var headerVersion = KafkaApis.Of(apiKey).RequestHeaderVersion(apiVersion);
        string? clientId = null;
        if (headerVersion >= 1 && !reader.ReadString(compact: false, nullable: true, out clientId))
        {
            return reader.Error;
        }

        if (headerVersion >= 2 && !reader.SkipTaggedFields())
        {
            return reader.Error;
        }

        header = new KafkaRequestHeader(apiKey, apiVersion, correlationId, clientId, headerVersion, checked((int)reader.Position));
        return MalformedReason.None;
    }
}
