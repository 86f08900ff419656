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
