using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using BindProxy.Configuration;
using BindProxy.Http;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>
/// Opens every proxy listener, at startup and while the proxy runs: the proxy's own transport for
/// Tcp and Kafka routes (Kafka broker listeners included), Kestrel's socket transport for Http
/// routes. Each listener goes into the <see cref="ListenerRegistry"/> and to the one accept loop
/// (<see cref="AcceptLoops"/>), which takes them from <see cref="Bound"/>.
/// </summary>
internal sealed partial class ListenerHost(
    RouteListenerFactory transport,
    HttpRouteConnections http,
    ListenerRegistry registry,
    ILogger<ListenerHost> logger)
{
    private readonly Channel<BoundListener> _bound = Channel.CreateUnbounded<BoundListener>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Listeners opened and not yet taken by the accept loop; complete once the proxy stops.</summary>
    public ChannelReader<BoundListener> Bound => _bound.Reader;

    /// <summary>Binds <paramref name="endpoint"/> for <paramref name="route"/> and starts accepting; the endpoint bound (the real port for port 0), or why not.</summary>
    public async ValueTask<BindResult> BindAsync(ServedRoute route, IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        bool isHttp = route.Model.Protocol == RouteProtocol.Http;
        IConnectionListener listener;
        IPEndPoint bound;
        try
        {
            if (isHttp)
            {
                listener = await http.ListenAsync(endpoint, cancellationToken).ConfigureAwait(false);
                bound = (IPEndPoint)listener.EndPoint;
                registry.Add(new RouteEndPoint(route, bound), listener);
                Log.HttpListening(logger, route.Name, bound);
            }
            else
            {
                // The proxy's transport puts its listeners into the registry and logs them itself.
                listener = await transport.BindAsync(new RouteEndPoint(route, endpoint), cancellationToken).ConfigureAwait(false);
                bound = ((RouteEndPoint)listener.EndPoint).Address;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException or AddressInUseException)
        {
            var reason = e is IOException { InnerException: SocketException inner } ? inner.Message : e.Message;
            return BindResult.Failed($"route '{route.Name}': cannot listen on {endpoint}: {reason}");
        }

        if (!_bound.Writer.TryWrite(new BoundListener(route, listener, isHttp)))
        {
            registry.Remove(new RouteEndPoint(route, bound));
            await listener.UnbindAsync(CancellationToken.None).ConfigureAwait(false);
            await listener.DisposeAsync().ConfigureAwait(false);
            return BindResult.Failed($"route '{route.Name}': cannot listen on {endpoint}: the proxy is stopping");
        }

        return BindResult.Listening(bound);
    }

    /// <summary>No listener is opened from here on (the proxy is stopping).</summary>
    public void Complete() => _bound.Writer.TryComplete();

    private static partial class Log
    {
        [LoggerMessage(620, LogLevel.Information, "Route {Route} listening on {Endpoint} (HTTP/1.1 and HTTP/2)")]
        public static partial void HttpListening(ILogger logger, string route, IPEndPoint endpoint);
    }
}
