namespace BindProxy.Addressing;

/// <summary>How a route picks the source address of a connection.</summary>
internal enum AssignPolicy
{
    /// <summary>Spread connections over the pool; no stickiness.</summary>
    RoundRobin,

    /// <summary>Sticky by the client's IP address.</summary>
    ClientAddress,

    /// <summary>Sticky by the local process that owns the client socket (Linux, loopback clients).</summary>
    Process,

    /// <summary>Sticky by the Kafka client.id of the connection's first request (Kafka routes).</summary>
    KafkaClientId,
}

/// <summary>What to do when a new client finds every address of the pool taken.</summary>
internal enum ExhaustedPolicy
{
    /// <summary>Share the address with the fewest clients (logged once).</summary>
    Share,

    /// <summary>Refuse the new client's connections.</summary>
    Refuse,
}

/// <summary>Who a connection belongs to, for sticky source assignment.</summary>
/// <param name="Key">The stickiness key, unique per client (e.g. <c>pid:4242@1234567</c>).</param>
/// <param name="Display">How logs and the admin API name the client (e.g. <c>pid 4242 java</c>).</param>
internal sealed record ClientIdentity(string Key, string Display)
{
    public static ClientIdentity ForAddress(System.Net.IPAddress address) => new($"ip:{address}", $"client {address}");

    public static ClientIdentity ForKafkaClientId(string clientId) => new($"client.id:{clientId}", $"client '{clientId}'");
}
