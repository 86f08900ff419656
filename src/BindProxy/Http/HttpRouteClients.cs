using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Outbound;
using BindProxy.Transport;

namespace BindProxy.Http;

/// <summary>
/// One <see cref="HttpMessageInvoker"/> per Http route, whose every upstream connection comes from
/// <see cref="UpstreamConnector"/>: bound to the route's source pool with IP_BIND_ADDRESS_NO_PORT,
/// with its failover and connect timeout, exactly as for Tcp routes. Each upstream connection is a
/// proxied connection of the route in the registry and the metrics, as a Tcp route's is.
/// </summary>
internal sealed partial class HttpRouteClients(UpstreamConnector connector, ConnectionRegistry registry, ProxyMetrics metrics, ILogger<HttpRouteClients> logger)
    : IDisposable
{
    /// <summary>Set on each request by the forwarder: the client and listener an upstream connection opened for it is shown with.</summary>
    internal static readonly HttpRequestOptionsKey<HttpRequestOrigin> Origin = new("BindProxy.Origin");

    private static readonly IPEndPoint Unknown = new(IPAddress.Any, 0);

    private readonly ConcurrentDictionary<(string Route, IPAddress? Source), RouteClient> _clients = new();

    // Clients of definitions a reload replaced: their pooled connections close when idle, or when
    // the route is removed or the proxy stops.
    private readonly ConcurrentDictionary<RouteClient, byte> _replaced = new();

    /// <summary>
    /// The client for <paramref name="route"/>, or for one assigned source address of it (per-client
    /// assignment: each address gets its own connection pool, so no connection carries two clients);
    /// a new one when the route's model was replaced. Its connections are proxied connections of
    /// <paramref name="served"/>.
    /// </summary>
    public RouteClient For(ServedRoute served, RouteModel route, IPAddress? source = null)
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
                // connections close when idle.
                var replacement = Create(served, route, source);
                if (_clients.TryUpdate(key, replacement, existing))
                {
                    _replaced[existing] = 0;
                    return replacement;
                }

                replacement.Invoker.Dispose();
                continue;
            }

            var created = Create(served, route, source);
            if (_clients.TryAdd(key, created))
            {
                return created;
            }

            created.Invoker.Dispose();
        }
    }

    private RouteClient Create(ServedRoute served, RouteModel route, IPAddress? source)
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
            ConnectCallback = (context, cancellationToken) => ConnectAsync(served, route, source, context.InitialRequestMessage, cancellationToken),
        };

        // The route's Tls is the handler's own TLS over the connector's connection (https), not a second client.
        if (route.Tls is { } tls)
        {
            handler.SslOptions = Transport.TlsLeg.ClientOptions(tls, tls.ServerName ?? route.Upstream.Host);
        }

        return new RouteClient(route, new HttpMessageInvoker(handler, disposeHandler: true), DestinationPrefix(route.Upstream, https: route.Tls is not null));
    }

    private async ValueTask<Stream> ConnectAsync(ServedRoute served, RouteModel route, IPAddress? source, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var result = await connector.ConnectAsync(route, source, cancellationToken).ConfigureAwait(false);
        if (!result.IsConnected)
        {
            metrics.ConnectFailed(route.Name, result.Error, result.Elapsed);
            throw new UpstreamConnectException(route.Name, result);
        }

        var origin = request.Options.TryGetValue(Origin, out var known) ? known : null;
        var stream = new HttpUpstreamConnection(result.Connection!, origin?.Client ?? Unknown, origin?.Listener ?? Unknown, result.Upstream!, OnClosed);

        // Counted like a Tcp route's connection (no limit here: MaxConnections is the pool's own).
        served.TryEnterConnection(max: null);
        var live = registry.Add(served, route, stream);
        Log.UpstreamOpen(logger, route.Name, stream.Source, result.Upstream, result.Elapsed.TotalMilliseconds);
        metrics.Opened(live, result.Elapsed);
        stream.Attach(live);
        return stream;
    }

    private void OnClosed(HttpUpstreamConnection stream, ProxiedConnection live)
    {
        var reason = live.ProxyReason ?? stream.EndedByUpstream;
        if (reason is { } known)
        {
            metrics.Closed(live, known);
        }
        else
        {
            metrics.ClosedByPool(live);
        }

        registry.Remove(live);
        live.Served.LeaveConnection();
        Log.UpstreamClosed(logger, live.Route, stream.Source, stream.Upstream, reason?.Describe() ?? "closed by the proxy's connection pool",
            stream.BytesToUpstream, stream.BytesToClient, Stopwatch.GetElapsedTime(live.StartedTimestamp).TotalMilliseconds);
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

        foreach (var client in _replaced.Keys.Where(c => c.Route.Name == route))
        {
            if (_replaced.TryRemove(client, out _))
            {
                client.Invoker.Dispose();
            }
        }
    }

    /// <summary>
    /// The URI the requests are addressed to. Only its authority matters (it becomes the Host
    /// header): the connection itself is always made by the connector.
    /// </summary>
    internal static string DestinationPrefix(Addressing.UpstreamSpec upstream, bool https = false) =>
        (https ? "https" : "http") + (upstream.Host is { } host ? $"://{host}:{upstream.Port}/" : $"://{upstream.Endpoints![0]}/");

    public void Dispose() => CloseAll();

    /// <summary>Closes every pooled upstream connection (the proxy is stopping, and the clients' connections are drained).</summary>
    public void CloseAll()
    {
        foreach (var key in _clients.Keys)
        {
            if (_clients.TryRemove(key, out var client))
            {
                client.Invoker.Dispose();
            }
        }

        foreach (var client in _replaced.Keys)
        {
            if (_replaced.TryRemove(client, out _))
            {
                client.Invoker.Dispose();
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(600, LogLevel.Information, "{Route}: upstream connection {Source} → {Upstream} open (connect {ConnectMs:0.0} ms)")]
        public static partial void UpstreamOpen(ILogger logger, string route, EndPoint? source, IPEndPoint? upstream, double connectMs);

        [LoggerMessage(601, LogLevel.Debug, "{Route}: upstream connection {Source} → {Upstream} closed: {Reason}; {BytesToUpstream} B up, {BytesToClient} B down, {DurationMs:0} ms")]
        public static partial void UpstreamClosed(ILogger logger, string route, IPEndPoint source, IPEndPoint upstream, string reason, long bytesToUpstream, long bytesToClient, double durationMs);
    }
}
