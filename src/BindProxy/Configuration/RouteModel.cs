using System.Net.Sockets;
using BindProxy.Addressing;

namespace BindProxy.Configuration;

/// <summary>
/// A validated route, ready to serve. A member route (<see cref="ForBroker"/>) is a copy of its
/// root but for the properties marked <see cref="NotInheritedAttribute"/>.
/// </summary>
internal sealed class RouteModel
{
    private string _name = null!;
    private EndpointSpec _listen = null!;
    private UpstreamSpec _upstream = null!;
    private InterceptSettings? _intercept;
    private RouteConfig? _config;
    private RouteModel? _parent;

    [NotInherited("a member has its own name, made from its root's and the broker's (kafka/broker-1)")]
    public required string Name
    {
        get => _name;
        init => _name = value;
    }

    [NotInherited("a member listens on its own broker port")]
    public required EndpointSpec Listen
    {
        get => _listen;
        init => _listen = value;
    }

    [NotInherited("a member connects to its broker's real address")]
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

    /// <summary>TLS toward the upstream (a Kafka route's brokers too); null: plaintext.</summary>
    public TlsSettings? Tls { get; init; }

    /// <summary>TLS on the route's listeners (a Kafka route's broker listeners too); null: plaintext.</summary>
    public ListenTlsSettings? ListenTls { get; init; }

    /// <summary>The toxics the file gives the route (<c>Faults</c>), a checked JSON array; null when none. A member carries its root's.</summary>
    public string? Toxics { get; init; }

    /// <summary>
    /// Set when the route serves intercepted connections: each connection's upstream is then its
    /// original destination, and <see cref="Upstream"/> only describes that.
    /// </summary>
    [NotInherited("a member's connections come to its own broker port and go on to its broker; none is redirected to it, and brokers keep their addresses")]
    public InterceptSettings? Intercept
    {
        get => _intercept;
        init => _intercept = value;
    }

    public AddressFamily Family => Sources.Addresses.Family;

    /// <summary>The route as written (null for routes made at run time).</summary>
    [NotInherited("a member is made at run time, not written in the file; the reload compares roots' definitions")]
    public RouteConfig? Config
    {
        get => _config;
        init => _config = value;
    }

    /// <summary>For a Kafka broker listener's route: the bootstrap route's definition it was made from.</summary>
    [NotInherited("a member's parent is the root it was copied from")]
    public RouteModel? Parent
    {
        get => _parent;
        init => _parent = value;
    }

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

    /// <summary>A copy of this route: every setting inherited, and what is the member's own (<see cref="NotInheritedAttribute"/>) set here.</summary>
    private RouteModel Member(string name, EndpointSpec listen, UpstreamSpec upstream)
    {
        var member = (RouteModel)MemberwiseClone();
        member._name = name;
        member._listen = listen;
        member._upstream = upstream;
        member._intercept = null;
        member._config = null;
        member._parent = this;
        return member;
    }

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
}
