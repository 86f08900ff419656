using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using BindProxy.Addressing;

namespace BindProxy.Configuration;

/// <summary>A validated route, ready to serve.</summary>
internal sealed class RouteModel
{
    private UpstreamSpec _upstream = null!;
    private InterceptSettings? _intercept;

    public required string Name { get; init; }

    public required EndpointSpec Listen { get; init; }

    public required UpstreamSpec Upstream
    {
        get => _upstream;
        init => _upstream = value;
    }

    public required SourcePool Sources { get; init; }

    public RouteProtocol Protocol { get; init; } = RouteProtocol.Tcp;

    public TimeSpan ConnectTimeout { get; init; } = ProxyDefaults.ConnectTimeout;

    /// <summary>Most connections one client address holds at once; null: no limit.</summary>
    public int? MaxConnectionsPerClient { get; init; }

    /// <summary>Connections with no byte either way for this long are closed; null: never.</summary>
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary>Most connections held at once; null: no limit but the process's file descriptors.</summary>
    public int? MaxConnections { get; init; }

    /// <summary>How source addresses are assigned to clients.</summary>
    public AssignmentSettings Assignment { get; init; } = AssignmentSettings.RoundRobin;

    /// <summary>Kafka settings; null for Tcp routes.</summary>
    public KafkaRouteSettings? Kafka { get; init; }

    /// <summary>Http settings; null for Tcp and Kafka routes.</summary>
    public HttpRouteSettings? Http { get; init; }

    /// <summary>
    /// Set when the route serves intercepted connections: each connection's upstream is then its
    /// original destination, and <see cref="Upstream"/> only describes that.
    /// </summary>
    public InterceptSettings? Intercept
    {
        get => _intercept;
        init => _intercept = value;
    }

    public AddressFamily Family => Sources.Addresses.Family;

    /// <summary>The route as written (null for routes made at run time).</summary>
    public RouteConfig? Config { get; init; }

    /// <summary>For a Kafka broker listener's route: the bootstrap route's definition it was made from.</summary>
    public RouteModel? Parent { get; init; }

    /// <summary>The bootstrap route of a Kafka cluster: this route, or its parent.</summary>
    public RouteModel Root => Parent ?? this;

    /// <summary>
    /// The route of a Kafka broker listener: same sources and settings, its own listen endpoints
    /// and the broker's real address as upstream. Its name (<c>kafka/broker-1</c>) is made here
    /// and nowhere else, for logs, metrics and the admin API; nothing reads a family from a name.
    /// </summary>
    public RouteModel ForBroker(int nodeId, EndpointSpec listen, UpstreamSpec upstream) => Member($"{Name}/broker-{nodeId}", listen, upstream);

    /// <summary>This member route with the settings of <paramref name="parent"/> (its root's new definition), keeping its own name, listen endpoints and upstream.</summary>
    public RouteModel WithParent(RouteModel parent) => Parent is null ? this : parent.Member(Name, Listen, Upstream);

    private RouteModel Member(string name, EndpointSpec listen, UpstreamSpec upstream) => new()
    {
        Name = name,
        Listen = listen,
        Upstream = upstream,
        Sources = Sources,
        Protocol = Protocol,
        ConnectTimeout = ConnectTimeout,
        MaxConnections = MaxConnections,
        MaxConnectionsPerClient = MaxConnectionsPerClient,
        IdleTimeout = IdleTimeout,
        Assignment = Assignment,
        Kafka = Kafka,
        Parent = this,
    };

    /// <summary>
    /// This route serving the connections <paramref name="intercept"/> selects, every other setting
    /// kept (a copy, so settings added to the route later are carried over too).
    /// </summary>
    public RouteModel WithIntercept(InterceptSettings intercept)
    {
        var copy = (RouteModel)MemberwiseClone();
        copy._intercept = intercept;
        copy._upstream = UpstreamSpec.OriginalDestination(intercept.Ports);
        return copy;
    }

    /// <summary>
    /// The Wireshark display filter that shows exactly this route's upstream traffic. A Kafka
    /// route's brokers listen on ports its configuration does not name (every broker the cluster
    /// advertises), so its filter is the source addresses alone: they carry nothing else.
    /// </summary>
    public string WiresharkFilter => Intercept is { } intercept
        ? $"{Sources.Addresses.ToWiresharkFilter()} && {intercept.Ports.ToWiresharkFilter()}"
        : Kafka is not null
            ? Sources.Addresses.ToWiresharkFilter()
            : $"{Sources.Addresses.ToWiresharkFilter()} && tcp.port=={Upstream.Port}";

    /// <summary>
    /// A tshark command that captures this route's upstream traffic live: a capture (BPF) filter
    /// for one source address, so nothing else is captured at all; the display filter for a pool
    /// (address ranges have no short capture-filter form).
    /// </summary>
    public string TsharkCommand
    {
        get
        {
            var addresses = Sources.Addresses;
            string device = System.Net.IPAddress.IsLoopback(addresses[0]) ? "lo" : "any";
            if (!addresses.IsSingle)
            {
                return $"tshark -i {device} -Y '{WiresharkFilter}'";
            }

            string ports = Intercept is { } intercept ? $" and {intercept.Ports.ToCaptureFilter()}"
                : Kafka is not null ? ""
                : $" and tcp port {Upstream.Port}";
            return $"tshark -i {device} -f 'host {addresses[0]}{ports}'";
        }
    }
}

/// <summary>All routes of one validated configuration; immutable, swapped whole.</summary>
internal sealed class ProxyModel
{
    public ProxyModel(IReadOnlyList<RouteModel> routes, TimeSpan? drainTimeout = null)
    {
        Routes = routes;
        ByName = routes.ToDictionary(r => r.Name, StringComparer.Ordinal);
        DrainTimeout = drainTimeout ?? ProxyDefaults.DrainTimeout;
    }

    /// <summary>How long connections may take to finish at shutdown or when their route is removed.</summary>
    public TimeSpan DrainTimeout { get; }

    public IReadOnlyList<RouteModel> Routes { get; }

    public IReadOnlyDictionary<string, RouteModel> ByName { get; }

    /// <summary>The admin endpoint; null when it is off. Read once at startup.</summary>
    public AdminModel? Admin { get; init; }

    /// <summary>The engine that forwards plain Tcp routes. Read once at startup.</summary>
    public ForwardingEngine Engine { get; init; } = ForwardingEngine.Select(EngineSetting.Auto, out _)!;
}

/// <summary>Broker hosts a Kafka route may connect to: host names (exact) and address sets.</summary>
internal sealed class BrokerAllowlist(IReadOnlyList<string> names, IReadOnlyList<AddressSet> addresses, string text)
{
    public bool Allows(string host) =>
        names.Contains(host, StringComparer.OrdinalIgnoreCase) ||
        (AddressSet.TryParseAddress(host, out var address) && addresses.Any(a => a.Contains(address)));

    public override string ToString() => text;

    public static bool TryParse(string text, [NotNullWhen(true)] out BrokerAllowlist? allowlist, out string error)
    {
        var names = new List<string>();
        var addresses = new List<AddressSet>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (AddressSet.TryParse(item, out var set, out _))
            {
                addresses.Add(set);
            }
            else if (Uri.CheckHostName(item) == UriHostNameType.Dns)
            {
                names.Add(item);
            }
            else
            {
                allowlist = null;
                error = $"'{item}' is neither a host name nor an address, range or CIDR block";
                return false;
            }
        }

        allowlist = new BrokerAllowlist(names, addresses, text);
        error = names.Count + addresses.Count == 0 ? "is empty" : "";
        return error.Length == 0;
    }
}

/// <summary>Per-client source assignment of a route.</summary>
internal sealed record AssignmentSettings
{
    public static readonly AssignmentSettings RoundRobin = new();

    public AssignPolicy Policy { get; init; } = AssignPolicy.RoundRobin;

    /// <summary>kafka-client-id: addresses fixed per client id; reserved for those clients.</summary>
    public IReadOnlyDictionary<string, System.Net.IPAddress> ClientIds { get; init; } = new Dictionary<string, System.Net.IPAddress>();

    public ExhaustedPolicy WhenExhausted { get; init; } = ExhaustedPolicy.Share;

    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(10);
}

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
}

/// <summary>What an Http route adds to a Tcp route.</summary>
internal sealed record HttpRouteSettings
{
    public bool XForwarded { get; init; } = true;

    public TimeSpan RequestTimeout { get; init; } = ProxyDefaults.RequestTimeout;
}

internal static class ProxyDefaults
{
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Idle time allowed within an HTTP request (YARP's default activity timeout).</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(100);

    public const int MaxFrameSize = 100 * 1024 * 1024;

    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    public static readonly TimeSpan FrameTimeout = TimeSpan.FromSeconds(30);
}
