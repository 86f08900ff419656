namespace BindProxy.Configuration;

/// <summary>
/// One route as the user wrote it: raw strings, validated by <see cref="ConfigValidator"/>. Every
/// field of a route's section is a property here marked <see cref="ConfigFieldAttribute"/>, with
/// its definition, and nowhere else: a new field is a new property.
/// </summary>
internal sealed record RouteConfig
{
    /// <summary>The keys of a route's section.</summary>
    public static FieldTable Fields { get; } = FieldTable.Of<RouteConfig>("");

    /// <summary>The route's key under <c>BindProxy:Routes</c>.</summary>
    public required string Name { get; init; }

    [ConfigField("Listen endpoint(s); one listener per address. Port 0 picks a free port (logged).",
        Forms = "`127.0.0.1:19092`, `[::1]:19092`, `127.0.0.10-127.0.0.17:18080`, `127.0.1.0/29:18080`, a comma-separated list or a JSON array; IPv4 and IPv6 may be mixed",
        Shape = FieldShape.List)]
    public string? Listen { get; init; }

    [ConfigField("The real server. A host name is resolved at each connection, and only addresses of the source's family are used (`localhost` may resolve to `::1` first). An address range fans out round-robin over several server addresses.",
        Forms = "`localhost:9092`, `127.0.0.1:9092`, `[::1]:9092`, `127.0.0.1-127.0.0.8:9000`",
        Unset = "required, unless `Intercept` is set",
        Shape = FieldShape.List)]
    public string? Upstream { get; init; }

    [ConfigField("Source address pool, used round-robin.",
        Forms = "`127.0.0.2`, `127.0.0.2-127.0.0.40`, `127.0.0.2-40`, `127.0.1.0/24` (network and broadcast addresses left out), a list or JSON array",
        Shape = FieldShape.List)]
    public string? Source { get; init; }

    [ConfigField("`Tcp`: bytes pass untouched. `Kafka`: broker addresses in responses are rewritten so the client stays on the proxy. `Http`: an HTTP reverse proxy (see [HTTP routes](#http-routes)).",
        Forms = "`Tcp`, `Kafka`, `Http`", Default = "Tcp")]
    public string? Protocol { get; init; }

    [ConfigField("Upstream connect timeout; the client is closed when it passes (`Http`: the request gets 502).",
        Forms = "`00:00:10`", Default = "00:00:10")]
    public string? ConnectTimeout { get; init; }

    [ConfigField("Close a connection when no byte has moved either way for this long (checked once a second).",
        Forms = "`00:05:00`", Unset = "never")]
    public string? IdleTimeout { get; init; }

    [ConfigField("Most connections the route holds at once (connecting ones included). Past it new clients are closed at once, with one log line per 10 s giving the count refused.",
        Forms = "`5000`", Unset = "no limit")]
    public string? MaxConnections { get; init; }

    [ConfigField("Most connections one client address may hold on the route (a Kafka bootstrap and its broker listeners count together); more are closed at once, logged like `MaxConnections`.",
        Forms = "`100`", Unset = "no limit")]
    public string? MaxConnectionsPerClient { get; init; }

    [ConfigField("TLS toward the upstream (a Kafka route's brokers included, each by its advertised host): trust, a client certificate, the server name, the oldest version; see [TLS](#tls).",
        Forms = """`{ "CaFile": "/etc/bindproxy/cluster-ca.pem" }`, `{ "Enabled": true }` (the system's trust store)""",
        Unset = "none: plaintext to the upstream",
        Shape = FieldShape.Map, Keys = typeof(TlsConfig))]
    public IReadOnlyDictionary<string, string?>? Tls { get; init; }

    [ConfigField("TLS on the route's listeners (a Kafka route's broker listeners too), for clients that insist on it: the certificate and key, optionally a required client certificate; see [TLS](#tls).",
        Forms = """`{ "CertificateFile": "proxy.pem", "KeyFile": "proxy-key.pem" }`""",
        Unset = "none: clients connect in plaintext",
        Shape = FieldShape.Map, Keys = typeof(ListenTlsConfig))]
    public IReadOnlyDictionary<string, string?>? ListenTls { get; init; }

    [ConfigField("Instead of `Upstream`: redirect these destination ports of one cgroup's or one user's connections to this route, each going on to its original destination (Linux, root or CAP_NET_ADMIN); see [Intercepting from the configuration file](#intercepting-from-the-configuration-file).",
        Forms = """`{ "Ports": "9092-9094", "Cgroup": "/sys/fs/cgroup/clients" }`, `{ "Ports": "5432", "Uid": 1001 }`""",
        Unset = "none: connections go to `Upstream`",
        Shape = FieldShape.Map, Keys = typeof(InterceptConfig))]
    public IReadOnlyDictionary<string, string?>? Intercept { get; init; }

    [ConfigField("How a connection's source address is picked; see [One address per client](#one-address-per-client).",
        Forms = "`round-robin`, `client-address`, `process`, `kafka-client-id`", Default = "round-robin")]
    public string? Assign { get; init; }

    [ConfigField("`kafka-client-id` only: fixed addresses for known client ids (must be in `Source`; reserved for them).",
        Forms = """`{ "billing": "127.0.0.5" }`""", Unset = "none",
        Shape = FieldShape.Map)]
    public IReadOnlyDictionary<string, string?>? ClientIds { get; init; }

    [ConfigField("When every address of the pool already belongs to a client: `share` the least-used address, or `refuse` the new client.",
        Forms = "`share`, `refuse`", Default = "share")]
    public string? WhenExhausted { get; init; }

    [ConfigField("How long a client keeps its address after its last connection closed.",
        Forms = "`00:10:00`", Default = "00:10:00")]
    public string? AssignmentIdleTimeout { get; init; }

    /// <remarks>An edit applies to brokers discovered from then on; known brokers keep their ports.</remarks>
    [ConfigField("Proxy ports for brokers, handed out in discovery order (one per node id, stable for the proxy's lifetime).",
        Forms = "`19093-19120`", Unset = "automatic",
        Scope = FieldScope.KafkaOnly)]
    public string? BrokerPorts { get; init; }

    [ConfigField("The host written into rewritten broker addresses (e.g. for clients in containers).",
        Forms = "`kafka-proxy.internal`, `192.168.1.20`", Unset = "the address the client connected to",
        Scope = FieldScope.KafkaOnly)]
    public string? AdvertisedHost { get; init; }

    [ConfigField("The broker hosts the proxy may connect to when the cluster's metadata names them (host names, addresses, ranges, CIDRs). A broker outside it is never connected to: the client's connection is closed with a log line naming the broker.",
        Forms = "`kafka-1.internal, 10.20.0.0/16`, a list or JSON array", Unset = "any broker the configured cluster advertises",
        Shape = FieldShape.List, Scope = FieldScope.KafkaOnly)]
    public string? AllowedBrokers { get; init; }

    [ConfigField("Close a client that leaves a request incomplete (a partial header or frame) for this long.",
        Forms = "`00:00:30`", Default = "00:00:30",
        Scope = FieldScope.KafkaOnly)]
    public string? FrameTimeout { get; init; }

    [ConfigField("The largest request or response frame accepted, in bytes (the default is 100 MiB); larger ones close that connection with a log line.",
        Forms = "`1048576`", Default = "104857600",
        Scope = FieldScope.KafkaOnly)]
    public string? MaxFrameSize { get; init; }

    /// <remarks>Header fields (API, version, correlation id, sizes, timing) are recorded for every request either way.</remarks>
    [ConfigField("When request and response bodies are decoded for the conversation (topics, partitions, error codes, record counts): `watched`, only while someone watches that client (`bindproxy kafka tail`, `/api/kafka/requests?follow=true`, the status page's panel), or `always`.",
        Forms = "`watched`, `always`", Default = "watched",
        Scope = FieldScope.KafkaOnly)]
    public string? DecodeBodies { get; init; }

    [ConfigField("Add `X-Forwarded-For`, `-Proto`, `-Host`, `-Prefix` (`true`), or leave the client's headers as they are (`false`).",
        Forms = "`true`, `false`", Default = "true",
        Scope = FieldScope.HttpOnly)]
    public string? XForwarded { get; init; }

    [ConfigField("How long a request may make no progress (no response headers yet, no body bytes either way) before it fails with 504.",
        Forms = "`00:01:40`", Default = "00:01:40",
        Scope = FieldScope.HttpOnly)]
    public string? RequestTimeout { get; init; }

    /// <remarks>Checked by <see cref="IToxicCheck"/>, the fault API's own rules; applied by the host's <c>FileToxics</c>.</remarks>
    [ConfigField("Toxics the route carries from the start, each in toxiproxy's JSON shape (`name`, `type`, `stream`, `toxicity`, `attributes`, and `match`), so a fault scenario can live in a repository. A Kafka route's broker listeners get them too. A reload that changes them sets the route's toxics from the file to these and leaves those added through the fault API; see [Scenarios in the configuration file](#scenarios-in-the-configuration-file). Tcp and Kafka routes.",
        Forms = """`[{ "type": "latency", "attributes": { "latency": 100 } }]`, a JSON array of toxics""",
        Unset = "none",
        Shape = FieldShape.Objects)]
    public string? Faults { get; init; }

    /// <summary>Keys present in the route's section that no field reads (typos).</summary>
    public IReadOnlyList<string> UnknownFields { get; init; } = [];

    /// <summary>Fields written in another shape than theirs (an object where a value is expected, a value where an object is), with what was expected and found.</summary>
    public IReadOnlyList<(string Field, string Expected, string Found)> MisshapenFields { get; init; } = [];
}
