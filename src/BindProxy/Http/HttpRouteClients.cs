using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BindProxy.Configuration;
using BindProxy.Outbound;
using Microsoft.Extensions.Logging;

namespace BindProxy.Http;

/// <summary>
/// One <see cref="HttpMessageInvoker"/> per Http route, whose every upstream connection comes from
/// <see cref="UpstreamConnector"/>: bound to the route's source pool with IP_BIND_ADDRESS_NO_PORT,
/// with its failover and connect timeout, exactly as for Tcp routes.
/// </summary>
internal sealed partial class HttpRouteClients(UpstreamConnector connector, ILogger<HttpRouteClients> logger) : IDisposable
{
    private readonly ConcurrentDictionary<(string Route, IPAddress? Source), RouteClient> _clients = new();

    /// <summary>
    /// The client for <paramref name="route"/>, or for one assigned source address of it (per-client
    /// assignment: each address gets its own connection pool, so no connection carries two clients);
    /// a new one when the route's model was replaced.
    /// </summary>
    public RouteClient For(RouteModel route, IPAddress? source = null)
    {
        var key = (route.Name, source);
        while (true)
        {
            if (_clients.TryGetValue(key, out var existing))
            {
                if (ReferenceEquals(existing.Route, route))
                {
                    return existing;
                }

                // The old invoker is not disposed: requests in flight on it would fail. Its pooled
                // connections close when idle, and the rest goes with the garbage collector.
                var replacement = Create(route, source);
                if (_clients.TryUpdate(key, replacement, existing))
                {
                    return replacement;
                }

                replacement.Invoker.Dispose();
                continue;
            }

            var created = Create(route, source);
            if (_clients.TryAdd(key, created))
            {
                return created;
            }

            created.Invoker.Dispose();
        }
    }

    private RouteClient Create(RouteModel route, IPAddress? source)
    {
        var handler = new SocketsHttpHandler
        {
            // A reverse proxy passes these through instead of acting on them.
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            EnableMultipleHttp2Connections = true,

            // Trace headers travel as the client sent them; the proxy adds no span of its own.
            ActivityHeadersPropagator = null,
            MaxConnectionsPerServer = route.MaxConnections ?? int.MaxValue,
            ConnectCallback = (context, cancellationToken) => ConnectAsync(route, source, cancellationToken),
        };

        return new RouteClient(route, new HttpMessageInvoker(handler, disposeHandler: true), DestinationPrefix(route.Upstream));
    }

    private async ValueTask<Stream> ConnectAsync(RouteModel route, IPAddress? source, CancellationToken cancellationToken)
    {
        var result = await connector.ConnectAsync(route, source, cancellationToken).ConfigureAwait(false);
        if (!result.IsConnected)
        {
            throw new UpstreamConnectException(route.Name, result);
        }

        var socket = result.Connection!;
        Log.UpstreamOpen(logger, route.Name, socket.LocalEndPoint, result.Upstream, result.Elapsed.TotalMilliseconds);
        return new UpstreamStream(socket, route.Name, logger);
    }

    /// <summary>
    /// Closes the pooled upstream connections of a removed route, once its clients' connections
    /// have been drained: nothing is left for them to carry.
    /// </summary>
    public void Remove(string route)
    {
        foreach (var key in _clients.Keys.Where(k => k.Route == route))
        {
            if (_clients.TryRemove(key, out var client))
            {
                client.Invoker.Dispose();
            }
        }
    }

    /// <summary>
    /// The URI the requests are addressed to. Only its authority matters (it becomes the Host
    /// header): the connection itself is always made by the connector.
    /// </summary>
    internal static string DestinationPrefix(Addressing.UpstreamSpec upstream) =>
        upstream.Host is { } host ? $"http://{host}:{upstream.Port}/" : $"http://{upstream.Endpoints![0]}/";

    public void Dispose()
    {
        foreach (var client in _clients.Values)
        {
            client.Invoker.Dispose();
        }

        _clients.Clear();
    }

    /// <summary>An upstream connection: logs its close with its lifetime, once.</summary>
    private sealed class UpstreamStream(Socket socket, string route, ILogger logger) : NetworkStream(socket, ownsSocket: true)
    {
        private readonly long _opened = Stopwatch.GetTimestamp();
        private readonly EndPoint? _source = socket.LocalEndPoint;
        private readonly EndPoint? _upstream = socket.RemoteEndPoint;
        private int _closed;

        protected override void Dispose(bool disposing)
        {
            if (disposing && Interlocked.Exchange(ref _closed, 1) == 0)
            {
                Log.UpstreamClosed(logger, route, _source, _upstream, Stopwatch.GetElapsedTime(_opened).TotalMilliseconds);
            }

            base.Dispose(disposing);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(600, LogLevel.Information, "{Route}: upstream connection {Source} → {Upstream} open (connect {ConnectMs:0.0} ms)")]
        public static partial void UpstreamOpen(ILogger logger, string route, EndPoint? source, IPEndPoint? upstream, double connectMs);

        [LoggerMessage(601, LogLevel.Debug, "{Route}: upstream connection {Source} → {Upstream} closed after {DurationMs:0} ms")]
        public static partial void UpstreamClosed(ILogger logger, string route, EndPoint? source, EndPoint? upstream, double durationMs);
    }
}

/// <summary>The invoker of one route model and the URI prefix its requests go to.</summary>
internal sealed record RouteClient(RouteModel Route, HttpMessageInvoker Invoker, string DestinationPrefix);
