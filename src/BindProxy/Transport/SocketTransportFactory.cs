using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace BindProxy.Transport;

/// <summary>
/// Kestrel transport for proxy listeners: binds <see cref="RouteEndPoint"/>s only, and hands out
/// <see cref="InboundConnection"/>s whose sockets support half-close and large receives.
/// </summary>
internal sealed partial class SocketTransportFactory(TransportOptions options, ListenerRegistry registry, ILogger<SocketTransportFactory> logger)
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
            throw new IOException($"route '{routeEndPoint.Route}': cannot listen on {routeEndPoint.Address}: {e.Message}", e);
        }

        var bound = new RouteEndPoint(routeEndPoint.Route, (IPEndPoint)socket.LocalEndPoint!);
        var listener = new SocketListener(socket, bound, options, registry, logger);
        registry.Add(bound, listener);
        Log.Listening(logger, bound.Route, bound.Address);
        return new ValueTask<IConnectionListener>(listener);
    }

    private sealed class SocketListener(Socket socket, RouteEndPoint endpoint, TransportOptions options, ListenerRegistry registry, ILogger logger)
        : IConnectionListener
    {
        // Bound to one address (not a wildcard): every accepted socket's local end is this one.
        private readonly IPEndPoint? _specificAddress =
            endpoint.Address.Address.Equals(IPAddress.Any) || endpoint.Address.Address.Equals(IPAddress.IPv6Any) ? null : endpoint.Address;

        public EndPoint EndPoint => endpoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (ObjectDisposedException)
                {
                    return null;
                }
                catch (OperationCanceledException)
                {
                    return null;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted)
                {
                    return null;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
                {
                    continue; // the client gave up while queued
                }
                catch (SocketException e)
                {
                    // Out of file descriptors or buffers: keep the listener, wait a moment, try again.
                    Log.AcceptFailed(logger, endpoint.Route, endpoint.Address, e.SocketErrorCode, e.Message);
                    await Task.Delay(100, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                accepted.NoDelay = true;
                return new InboundConnection(accepted, endpoint.Route, _specificAddress, options);
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Dispose();
            registry.Remove(endpoint);
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            registry.Remove(endpoint);
            return ValueTask.CompletedTask;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Information, "Route {Route} listening on {Endpoint}")]
        public static partial void Listening(ILogger logger, string route, IPEndPoint endpoint);

        [LoggerMessage(101, LogLevel.Warning, "Route {Route} on {Endpoint}: accept failed ({Error}: {Message}); retrying")]
        public static partial void AcceptFailed(ILogger logger, string route, IPEndPoint endpoint, SocketError error, string message);
    }
}
