namespace BindProxy.Configuration;

/// <summary>The wire protocol of a route.</summary>
internal enum RouteProtocol
{
    /// <summary>Bytes pass through untouched.</summary>
    Tcp,

    /// <summary>Kafka: broker addresses in responses are rewritten to the proxy's own.</summary>
    Kafka,
}

/// <summary>One route as the user wrote it: raw strings, validated by <see cref="ConfigValidator"/>.</summary>
internal sealed record RouteConfig
{
    public required string Name { get; init; }

    public string? Listen { get; init; }

    public string? Upstream { get; init; }

    public string? Source { get; init; }

    public string? Protocol { get; init; }

    public string? ConnectTimeout { get; init; }

    /// <summary>Most connections the route holds at once; more are refused.</summary>
    public string? MaxConnections { get; init; }

    /// <summary>Kafka: proxy ports for brokers, in discovery order (<c>19093-19120</c>); automatic when absent.</summary>
    public string? BrokerPorts { get; init; }

    /// <summary>Kafka: the host written into rewritten responses; the address the client connected to when absent.</summary>
    public string? AdvertisedHost { get; init; }

    /// <summary>Kafka: the largest frame accepted, in bytes (default 100 MiB).</summary>
    public string? MaxFrameSize { get; init; }

    /// <summary>Keys present in the route's section that no field above reads (typos).</summary>
    public IReadOnlyList<string> UnknownFields { get; init; } = [];
}

/// <summary>The whole proxy configuration as written.</summary>
internal sealed record ProxyConfig
{
    public IReadOnlyList<RouteConfig> Routes { get; init; } = [];

    /// <summary>The admin endpoint; null when the file has no <c>Admin</c> section.</summary>
    public AdminConfig? Admin { get; init; }
}
