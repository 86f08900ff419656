namespace BindProxy.Kafka.Protocol;

/// <summary>Kafka API keys the proxy refers to by name. Numbers are fixed by the protocol.</summary>
internal static class KafkaApiKeys
{
    public const short Produce = 0;
    public const short Fetch = 1;
    public const short ListOffsets = 2;
    public const short Metadata = 3;
    public const short ControlledShutdown = 7;
    public const short OffsetCommit = 8;
    public const short OffsetFetch = 9;
    public const short FindCoordinator = 10;
    public const short JoinGroup = 11;
    public const short Heartbeat = 12;
    public const short LeaveGroup = 13;
    public const short SyncGroup = 14;
    public const short SaslHandshake = 17;
    public const short ApiVersions = 18;
    public const short SaslAuthenticate = 36;
    public const short DescribeCluster = 60;
    public const short ShareFetch = 78;
    public const short ShareAcknowledge = 79;
}
