namespace BindProxy.Configuration;

/// <summary>
/// One route as the user wrote it: raw strings, validated by <see cref="ConfigValidator"/>. Every
/// field of a route's section is a property here marked <see cref="RouteFieldAttribute"/>, and
/// nowhere else: a new field is a new property.
/// </summary>
internal sealed record RouteConfig
{
    /// <summary>The route's key under <c>BindProxy:Routes</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Where clients connect: endpoints, ranges, CIDR blocks or a list.</summary>
    [RouteField(Shape = FieldShape.List)]
    public string? Listen { get; init; }

    /// <summary>The real server: HOST:PORT, or an address range with a port.</summary>
    [RouteField(Shape = FieldShape.List)]
    public string? Upstream { get; init; }

    /// <summary>The source address pool of upstream connections.</summary>
    [RouteField(Shape = FieldShape.List)]
    public string? Source { get; init; }

    /// <summary>Tcp (default), Kafka or Http.</summary>
    [RouteField]
    public string? Protocol { get; init; }

    [RouteField]
    public string? ConnectTimeout { get; init; }

    /// <summary>Close connections with no byte either way for this long (default: never).</summary>
    [RouteField]
    public string? IdleTimeout { get; init; }

    /// <summary>Most connections the route holds at once; more are refused.</summary>
    [RouteField]
    public string? MaxConnections { get; init; }

    /// <summary>Most connections one client address may hold on the route (and its Kafka brokers).</summary>
    [RouteField]
    public string? MaxConnectionsPerClient { get; init; }

    /// <summary>
    /// Transparent interception instead of <see cref="Upstream"/>: <c>Ports</c> (the destination
    /// ports redirected) and one selector of whose connections, <c>Cgroup</c> (a cgroup v2
    /// directory) or <c>Uid</c>; each redirected connection goes on to its original destination.
    /// </summary>
    [RouteField(Shape = FieldShape.Map)]
    public IReadOnlyDictionary<string, string?>? Intercept { get; init; }

    /// <summary>How a source address is picked: round-robin, client-address, process or kafka-client-id.</summary>
    [RouteField]
    public string? Assign { get; init; }

    /// <summary>kafka-client-id: fixed addresses for known client ids.</summary>
    [RouteField(Shape = FieldShape.Map)]
    public IReadOnlyDictionary<string, string?>? ClientIds { get; init; }

    /// <summary>When every address is taken by a client: share (default) or refuse.</summary>
    [RouteField]
    public string? WhenExhausted { get; init; }

    /// <summary>How long an assignment outlives its client's last connection (default 00:10:00).</summary>
    [RouteField]
    public string? AssignmentIdleTimeout { get; init; }

    /// <summary>Kafka: proxy ports for brokers, in discovery order (<c>19093-19120</c>); automatic when absent.</summary>
    /// <remarks>An edit applies to brokers discovered from then on; known brokers keep their ports.</remarks>
    [RouteField(Scope = FieldScope.KafkaOnly)]
    public string? BrokerPorts { get; init; }

    /// <summary>Kafka: the host written into rewritten responses; the address the client connected to when absent.</summary>
    [RouteField(Scope = FieldScope.KafkaOnly)]
    public string? AdvertisedHost { get; init; }

    /// <summary>Kafka: broker hosts the proxy may connect to (names, addresses, ranges, CIDRs); default: any the cluster advertises.</summary>
    [RouteField(Shape = FieldShape.List, Scope = FieldScope.KafkaOnly)]
    public string? AllowedBrokers { get; init; }

    /// <summary>Kafka: close a client that leaves a request incomplete this long (default 00:00:30).</summary>
    [RouteField(Scope = FieldScope.KafkaOnly)]
    public string? FrameTimeout { get; init; }

    /// <summary>Kafka: the largest frame accepted, in bytes (default 100 MiB).</summary>
    [RouteField(Scope = FieldScope.KafkaOnly)]
    public string? MaxFrameSize { get; init; }

    /// <summary>Http: add X-Forwarded-For/-Proto/-Host/-Prefix (true, the default) or leave the headers as the client sent them.</summary>
    [RouteField(Scope = FieldScope.HttpOnly)]
    public string? XForwarded { get; init; }

    /// <summary>Http: the longest a request may sit idle (no headers, no body bytes either way) before it fails with 504.</summary>
    [RouteField(Scope = FieldScope.HttpOnly)]
    public string? RequestTimeout { get; init; }

    /// <summary>Keys present in the route's section that no field reads (typos).</summary>
    public IReadOnlyList<string> UnknownFields { get; init; } = [];

    /// <summary>Fields written in another shape than theirs (an object where a value is expected, a value where an object is), with what was expected and found.</summary>
    public IReadOnlyList<(string Field, string Expected, string Found)> MisshapenFields { get; init; } = [];
}
