using System.Net;

namespace BindProxy.Http;

/// <summary>
/// Kestrel's one endpoint for every Http route: bound by <see cref="HttpRouteConnections"/> to a
/// listener that hands over the connections the proxy accepted on the routes' own listeners.
/// </summary>
internal sealed class HttpRouteEndPoint : EndPoint
{
    public override string ToString() => "Http routes";
}
