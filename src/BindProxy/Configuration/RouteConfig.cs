namespace BindProxy.Configuration;

/// <summary>The wire protocol of a route.</summary>
internal enum RouteProtocol
{
    /// <summary>Bytes pass through untouched.</summary>
    Tcp,

    /// <summary>Kafka: broker addresses in responses are rewritten to the proxy's own.</summary>
    Kafka,

    /// <summary>HTTP/1.1 and HTTP/2: requests are forwarded by YARP over source-bound upstream connections.</summary>
    Http,
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

    /// <summary>Close connections with no byte either way for this long (default: never).</summary>
    public string? IdleTimeout { get; init; }

    /// <summary>Kafka: close a client that leaves a request incomplete this long (default 00:00:30).</summary>
    public string? FrameTimeout { get; init; }

    /// <summary>Most connections one client address may hold on the route (and its Kafka brokers).</summary>
    public string? MaxConnectionsPerClient { get; init; }

    /// <summary>Most connections the route holds at once; more are refused.</summary>
    public string? MaxConnections { get; init; }

    /// <summary>How a source address is picked: round-robin, client-address, process or kafka-client-id.</summary>
    public string? Assign { get; init; }

    /// <summary>kafka-client-id: fixed addresses for known client ids.</summary>
    public IReadOnlyDictionary<string, string?>? ClientIds { get; init; }

    /// <summary>When every address is taken by a client: share (default) or refuse.</summary>
    public string? WhenExhausted { get; init; }

    /// <summary>How long an assignment outlives its client's last connection (default 00:10:00).</summary>
    public string? AssignmentIdleTimeout { get; init; }

    /// <summary>Kafka: proxy ports for brokers, in discovery order (<c>19093-19120</c>); automatic when absent.</summary>
    public string? BrokerPorts { get; init; }

    /// <summary>Kafka: the host written into rewritten responses; the address the client connected to when absent.</summary>
    public string? AdvertisedHost { get; init; }

    /// <summary>Kafka: broker hosts the proxy may connect to (names, addresses, ranges, CIDRs); default: any the cluster advertises.</summary>
    public string? AllowedBrokers { get; init; }

    /// <summary>Kafka: the largest frame accepted, in bytes (default 100 MiB).</summary>
    public string? MaxFrameSize { get; init; }

    /// <summary>Http: add X-Forwarded-For/-Proto/-Host/-Prefix (true, the default) or leave the headers as the client sent them.</summary>
    public string? XForwarded { get; init; }

    /// <summary>Http: the longest a request may sit idle (no headers, no body bytes either way) before it fails with 504.</summary>
    public string? RequestTimeout { get; init; }

    /// <summary>Keys present in the route's section that no field above reads (typos).</summary>
    public IReadOnlyList<string> UnknownFields { get; init; } = [];

    /// <summary>The fields as written, for telling a changed route from an unchanged one on reload.</summary>
    public IReadOnlyList<(string Field, string? Value)> Fields() =>
    [
        ("Listen", Listen), ("Upstream", Upstream), ("Source", Source), ("Protocol", Protocol), ("ConnectTimeout", ConnectTimeout),
        ("MaxConnections", MaxConnections), ("MaxConnectionsPerClient", MaxConnectionsPerClient), ("IdleTimeout", IdleTimeout), ("FrameTimeout", FrameTimeout), ("Assign", Assign),
        ("ClientIds", ClientIds is null ? null : string.Join(",", ClientIds.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"))),
        ("WhenExhausted", WhenExhausted), ("AssignmentIdleTimeout", AssignmentIdleTimeout),
        ("BrokerPorts", BrokerPorts), ("AdvertisedHost", AdvertisedHost), ("MaxFrameSize", MaxFrameSize), ("AllowedBrokers", AllowedBrokers),
    ];
}

/// <summary>The whole proxy configuration as written.</summary>
internal sealed record ProxyConfig
{
    public IReadOnlyList<RouteConfig> Routes { get; init; } = [];

    /// <summary>How long connections may take to finish at shutdown or when their route is removed.</summary>
    public string? DrainTimeout { get; init; }

    /// <summary>The admin endpoint; null when the file has no <c>Admin</c> section.</summary>
    public AdminConfig? Admin { get; init; }
}
