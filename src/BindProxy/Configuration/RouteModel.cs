using System.Net.Sockets;
using BindProxy.Addressing;

namespace BindProxy.Configuration;

/// <summary>A validated route, ready to serve.</summary>
internal sealed class RouteModel
{
    public required string Name { get; init; }

    public required EndpointSpec Listen { get; init; }

    public required UpstreamSpec Upstream { get; init; }

    public required SourcePool Sources { get; init; }

    public RouteProtocol Protocol { get; init; } = RouteProtocol.Tcp;

    public TimeSpan ConnectTimeout { get; init; } = ProxyDefaults.ConnectTimeout;

    /// <summary>Most connections held at once; null: no limit but the process's file descriptors.</summary>
    public int? MaxConnections { get; init; }

    /// <summary>Kafka settings; null for Tcp routes.</summary>
    public KafkaRouteSettings? Kafka { get; init; }

    public AddressFamily Family => Sources.Addresses.Family;

    /// <summary>For a Kafka broker listener's route: the bootstrap route it was discovered through.</summary>
    public RouteModel? Parent { get; init; }

    /// <summary>The bootstrap route of a Kafka cluster: this route, or its parent.</summary>
    public RouteModel Root => Parent ?? this;

    /// <summary>
    /// The route of a Kafka broker listener: same sources and settings, its own listen endpoints
    /// and the broker's real address as upstream.
    /// </summary>
    public RouteModel ForBroker(int nodeId, EndpointSpec listen, UpstreamSpec upstream) => new()
    {
        Name = $"{Name}/broker-{nodeId}",
        Listen = listen,
        Upstream = upstream,
        Sources = Sources,
        Protocol = Protocol,
        ConnectTimeout = ConnectTimeout,
        MaxConnections = MaxConnections,
        Kafka = Kafka,
        Parent = this,
    };

    /// <summary>The Wireshark display filter that shows exactly this route's upstream traffic.</summary>
    public string WiresharkFilter => $"{Sources.Addresses.ToWiresharkFilter()} && tcp.port=={Upstream.Port}";
}

/// <summary>All routes of one validated configuration; immutable, swapped whole.</summary>
internal sealed class ProxyModel
{
    public ProxyModel(IReadOnlyList<RouteModel> routes)
    {
        Routes = routes;
        ByName = routes.ToDictionary(r => r.Name, StringComparer.Ordinal);
    }

    public IReadOnlyList<RouteModel> Routes { get; }

    public IReadOnlyDictionary<string, RouteModel> ByName { get; }

    /// <summary>The admin endpoint; null when it is off. Read once at startup.</summary>
    public AdminModel? Admin { get; init; }
}

/// <summary>What a Kafka route adds to a Tcp route.</summary>
internal sealed record KafkaRouteSettings
{
    /// <summary>Ports handed to brokers in discovery order; null: an automatic port per broker.</summary>
    public (int First, int Last)? BrokerPorts { get; init; }

    /// <summary>Host written into rewritten responses; null: the address the client connected to.</summary>
    public string? AdvertisedHost { get; init; }

    public int MaxFrameSize { get; init; } = ProxyDefaults.MaxFrameSize;
}

internal static class ProxyDefaults
{
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    public const int MaxFrameSize = 100 * 1024 * 1024;
}
