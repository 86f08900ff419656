namespace BindProxy.Kafka.Protocol;

internal static class KafkaWireConstants
{
    /// <summary>Every frame starts with an int32 body length.</summary>
    public const int SizePrefixLength = 4;

    /// <summary>Error code UNSUPPORTED_VERSION.</summary>
    public const short UnsupportedVersion = 35;

    /// <summary>Bytes of a uuid field (topic ids).</summary>
    public const int UuidLength = 16;
}
