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

    public AddressFamily Family => Sources.Addresses.Family;

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
}

internal static class ProxyDefaults
{
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);
}
