namespace BindProxy.Configuration;

/// <summary>What a Kafka route adds to a Tcp route.</summary>
internal sealed record KafkaRouteSettings
{
    /// <summary>Ports handed to brokers in discovery order; null: an automatic port per broker.</summary>
    public (int First, int Last)? BrokerPorts { get; init; }

    /// <summary>Host written into rewritten responses; null: the address the client connected to.</summary>
    public string? AdvertisedHost { get; init; }

    public int MaxFrameSize { get; init; } = ProxyDefaults.MaxFrameSize;

    /// <summary>Hosts the cluster's metadata may send the proxy to; null: any the cluster advertises.</summary>
    public BrokerAllowlist? AllowedBrokers { get; init; }

    /// <summary>A client that leaves a request incomplete this long is closed.</summary>
    public TimeSpan FrameTimeout { get; init; } = ProxyDefaults.FrameTimeout;

    /// <summary>Decode every request and response body for the conversation, not only while someone watches the client.</summary>
    public bool DecodeBodiesAlways { get; init; }
}
