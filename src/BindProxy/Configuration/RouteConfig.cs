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

    /// <summary>Keys present in the route's section that no field above reads (typos).</summary>
    public IReadOnlyList<string> UnknownFields { get; init; } = [];
}

/// <summary>The whole proxy configuration as written.</summary>
internal sealed record ProxyConfig
{
    public IReadOnlyList<RouteConfig> Routes { get; init; } = [];
}
