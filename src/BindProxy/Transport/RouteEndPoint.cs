using System.Net;
using System.Net.Sockets;
using BindProxy.Configuration;

namespace BindProxy.Transport;

/// <summary>
/// A listen endpoint that belongs to a proxy route. Not an <see cref="IPEndPoint"/> on purpose:
/// Kestrel hands it only to <see cref="RouteListenerFactory"/>, so proxy ports get the
/// project's transport while HTTP endpoints keep Kestrel's own.
/// </summary>
internal sealed class RouteEndPoint(ServedRoute route, IPEndPoint address) : EndPoint
{
    public ServedRoute Route { get; } = route;

    public IPEndPoint Address { get; } = address;

    public override AddressFamily AddressFamily => Address.AddressFamily;

    public override string ToString() => Address.ToString();
}
