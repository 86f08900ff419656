using System.Diagnostics;
using System.Net;
using BindProxy.Configuration;
using BindProxy.Outbound;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace BindProxy.Forwarding;

/// <summary>
/// Kestrel connection middleware for proxy listeners: connects the route's upstream from a
/// source address, forwards both ways, and logs one open and one close line per connection.
/// </summary>
internal sealed partial class ProxyConnectionHandler(
    RouteTable routes,
    UpstreamConnector connector,
    ConnectionRegistry registry,
    TransportOptions options,
    ILogger<ProxyConnectionHandler> logger) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var inbound = connection.Features.Get<IInboundSocketFeature>()
            ?? throw new InvalidOperationException("Proxy listeners must use the BindProxy socket transport.");
        var client = inbound.Socket;
        if (!routes.Current.ByName.TryGetValue(inbound.Route, out var route))
        {
            Log.RouteGone(logger, inbound.Route, client.RemoteEndPoint);
            client.Abort();
            return;
        }

        var connect = await connector.ConnectAsync(route, connection.ConnectionClosed).ConfigureAwait(false);
        if (!connect.IsConnected)
        {
            var reason = connect.Error switch
            {
                ConnectError.Timeout => CloseReason.ConnectTimeout,
                ConnectError.Refused => CloseReason.ConnectRefused,
                ConnectError.SourcesExhausted => CloseReason.SourcesExhausted,
                ConnectError.Cancelled => CloseReason.ProxyAborted,
                _ => CloseReason.ConnectFailed,
            };
            Log.ConnectFailed(logger, route.Name, client.RemoteEndPoint, reason.Describe(), connect.Detail, connect.Elapsed.TotalMilliseconds);
            client.Abort();
            return;
        }

        var upstream = new PipeSocket(connect.Socket!, options);
        await using (upstream.ConfigureAwait(false))
        {
            upstream.StartReceiving();
            var live = registry.Add(route.Name, client, upstream);
            Log.Opened(logger, route.Name, client.RemoteEndPoint, upstream.LocalEndPoint, upstream.RemoteEndPoint, connect.Elapsed.TotalMilliseconds);
            try
            {
                var reason = await Forwarder.ForwardAsync(client, upstream, connection.ConnectionClosed).ConfigureAwait(false);
                Log.Closed(logger, route.Name, client.RemoteEndPoint, upstream.LocalEndPoint, upstream.RemoteEndPoint,
                    upstream.BytesSent, client.BytesSent, Stopwatch.GetElapsedTime(live.StartedTimestamp).TotalMilliseconds, reason.Describe());
            }
            finally
            {
                registry.Remove(live);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(200, LogLevel.Information, "{Route}: {Client} → {Source} → {Upstream} open (connect {ConnectMs:0.0} ms)")]
        public static partial void Opened(ILogger logger, string route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, double connectMs);

        [LoggerMessage(201, LogLevel.Information, "{Route}: {Client} → {Source} → {Upstream} closed: {Reason}; {BytesToUpstream} B up, {BytesToClient} B down, {DurationMs:0} ms")]
        public static partial void Closed(ILogger logger, string route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, long bytesToUpstream, long bytesToClient, double durationMs, string reason);

        [LoggerMessage(202, LogLevel.Warning, "{Route}: {Client} closed: {Reason}: {Detail} (after {ElapsedMs:0} ms)")]
        public static partial void ConnectFailed(ILogger logger, string route, IPEndPoint client, string reason, string detail, double elapsedMs);

        [LoggerMessage(203, LogLevel.Warning, "Connection from {Client} arrived on route {Route}, which is no longer configured; closed")]
        public static partial void RouteGone(ILogger logger, string route, IPEndPoint client);
    }
}
