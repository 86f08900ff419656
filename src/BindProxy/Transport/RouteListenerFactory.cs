using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace BindProxy.Transport;

/// <summary>
/// Makes the listeners of proxy routes (Kestrel's listener factory for <see cref="RouteEndPoint"/>s
/// only): binds and listens, then has the engine's <see cref="IEngineListeners"/> accept, which hand
/// out <see cref="InboundConnection"/>s in that engine's form. Every listener and accepted
/// connection takes its descriptors from the <see cref="DescriptorBudget"/>; a client that does not
/// fit is reset at once.
/// </summary>
internal sealed partial class RouteListenerFactory(
    TransportOptions options,
    ListenerRegistry registry,
    IEngineListeners engine,
    DescriptorBudget budget,
    ILogger<RouteListenerFactory> logger)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{

    public bool CanBind(EndPoint endpoint) => endpoint is RouteEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not RouteEndPoint routeEndPoint)
        {
            throw new NotSupportedException($"{endpoint.GetType().Name} is not a proxy route endpoint.");
        }

        var socket = new Socket(routeEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (routeEndPoint.AddressFamily == AddressFamily.InterNetworkV6)
            {
                socket.DualMode = false;
            }

            socket.Bind(routeEndPoint.Address);
            socket.Listen(options.ListenBacklog);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"route '{routeEndPoint.Route.Name}': cannot listen on {routeEndPoint.Address}: {e.Message}", e);
        }

        var bound = new RouteEndPoint(routeEndPoint.Route, (IPEndPoint)socket.LocalEndPoint!);
        var context = new ListenerContext(bound, options, registry, budget, logger);
        ProxyListener listener;
        try
        {
            listener = engine.Listen(socket, context);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        registry.Add(bound, listener);
        Log.Listening(logger, bound.Route.Name, bound.Address);
        return new ValueTask<IConnectionListener>(listener);
    }

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Information, "Route {Route} listening on {Endpoint}")]
        public static partial void Listening(ILogger logger, string route, IPEndPoint endpoint);
    }
}
